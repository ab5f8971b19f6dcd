"""Helpers of the workflow end-to-end tests: real ``jobtui-supervisor`` processes, polling
with deadlines, and small local servers (HTTP webhook, SMTP sink) on 127.0.0.1."""

from __future__ import annotations

import http.server
import json
import os
import signal
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from supervisor_harness import wait_until

HERE = Path(__file__).parent
FAST = ["--heartbeat-interval", "0.2", "--lease", "2", "--kill-grace", "0.3",
        "--shutdown-grace", "2", "--log-level", "INFO"]  # fmt: skip
T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 15.0, interval: float = 0.02,
             what: str = "condition") -> T:  # fmt: skip
    """Poll ``predicate`` until it returns a true value (returned), or fail at the deadline
    (supervisor_harness.wait_until, with the interval before the description)."""
    return wait_until(predicate, timeout, what, interval=interval)


class Supervisors:
    """Real ``jobtui-supervisor`` processes on one database; logs under ``tmp_path``."""

    def __init__(self, db_url: str, tmp_path: Path, env: dict[str, str] | None = None) -> None:
        self.db_url, self.tmp_path = db_url, tmp_path
        self.env = dict(os.environ, JOBTUI_DATABASE=db_url, PYTHONPATH=str(HERE),
                        **(env or {}))  # fmt: skip
        self.procs: list[tuple[subprocess.Popen, Path]] = []
        self.exe = str(Path(sys.executable).parent / "jobtui-supervisor")  # the venv's, PATH or not

    def start(self, *args: str, count: int = 1, wait: bool = True) -> list[subprocess.Popen]:
        from jobtui.models import Supervisor as SupervisorRow

        started = []
        for _ in range(count):
            log = self.tmp_path / f"supervisor-{len(self.procs)}.log"
            with open(log, "w") as out:
                proc = subprocess.Popen([self.exe, *args], env=self.env, stdout=out,
                                        stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
            self.procs.append((proc, log))
            started.append(proc)
        if wait:
            want = {str(p.pid) for p in started}

            def up() -> bool:
                for proc in started:
                    assert proc.poll() is None, self.logs()
                pids = {str(r.pid) for r in SupervisorRow.select(SupervisorRow.pid)}
                return want <= pids

            wait_for(up, 30, what="supervisors registered")
        return started

    def logs(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()}" for _, log in self.procs)

    def stop(self) -> None:
        for proc, _ in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _ in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


@contextmanager
def supervisors(db_url: str, tmp_path: Path, env: dict[str, str] | None = None
                ) -> Iterator[Supervisors]:  # fmt: skip
    group = Supervisors(db_url, tmp_path, env)
    try:
        yield group
    finally:
        group.stop()


def job_rows(**where: Any) -> list:
    from jobtui.models import Job

    query = Job.select()
    for name, value in where.items():
        query = query.where(getattr(Job, name) == value)
    return list(query)


# ------------------------------------------------------------------ local servers


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


@contextmanager
def webhook_server(delay: float = 0.0) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """An HTTP server on 127.0.0.1 recording the JSON bodies POSTed to it; answers after
    ``delay`` seconds. Yields (url, bodies)."""
    bodies: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length))
            time.sleep(delay)
            bodies.append({"path": self.path, "type": self.headers.get("Content-Type"), **body})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", bodies
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def smtp_sink() -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """A minimal SMTP responder on 127.0.0.1 recording each message. Yields (port, mails)."""
    mails: list[dict[str, Any]] = []

    class Handler(socketserver.StreamRequestHandler):
        def reply(self, line: str) -> None:
            self.wfile.write(line.encode() + b"\r\n")

        def handle(self) -> None:
            self.reply("220 sink ESMTP")
            mail: dict[str, Any] = {"rcpt": []}
            while line := self.rfile.readline():
                command = line.decode(errors="replace").strip()
                verb = command[:4].upper()
                if verb in ("EHLO", "HELO"):
                    self.reply("250 sink")
                elif verb == "MAIL":
                    mail = {"from": command[10:], "rcpt": []}
                    self.reply("250 OK")
                elif verb == "RCPT":
                    mail["rcpt"].append(command[8:])
                    self.reply("250 OK")
                elif verb == "DATA":
                    self.reply("354 end with <CRLF>.<CRLF>")
                    data = []
                    while (chunk := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                        data.append(chunk.decode(errors="replace"))
                    mails.append({**mail, "data": "".join(data)})
                    self.reply("250 OK queued")
                elif verb == "QUIT":
                    self.reply("221 bye")
                    return
                else:
                    self.reply("250 OK")

    server = _Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], mails
    finally:
        server.shutdown()
        server.server_close()
