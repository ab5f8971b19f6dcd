"""``jobtui serve`` without a browser: the token guard over HTTP and the websocket, and its
one-line errors (a port in use, textual-serve missing)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("textual_serve", reason="jobtui[serve] not installed")

JOBTUI = str(Path(sys.executable).parent / "jobtui")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


@pytest.fixture
def served(tmp_path):
    env = dict(os.environ, JOBTUI_DATABASE=f"sqlite:///{tmp_path / 'jobs.db'}")
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([JOBTUI, "serve", "--port", str(port)], stdout=out,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not (found := re.search(r"http://\S+\?token=(\S+)", log.read_text())):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        while True:  # the URL is printed as the server starts: wait until it answers
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/", found.group(1)
    finally:
        proc.terminate()
        proc.wait(10)


def test_only_requests_with_the_token_get_through(served):
    base, token = served
    assert get(base)[0] == 403
    assert get(base + "?token=" + token[:-1])[0] == 403
    assert get(base + "static/js/textual.js")[0] == 403
    assert get(base + "static/js/textual.js", {"Cookie": "jobtui_token=nope"})[0] == 403
    status, headers = get(base + "?token=" + token)
    assert status == 200
    cookie = headers["Set-Cookie"]
    assert f"jobtui_token={token}" in cookie and "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert get(base + "static/js/textual.js", {"Cookie": f"jobtui_token={token}"})[0] == 200
    upgrade = {"Cookie": f"jobtui_token={token}", "Connection": "Upgrade",
               "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}  # fmt: skip
    host = base.split("//")[1].rstrip("/")
    assert get(base + "ws", {**upgrade, "Origin": "http://evil.example"})[0] == 403
    assert get(base + "ws", {**upgrade, "Cookie": "jobtui_token=nope",
                             "Origin": f"http://{host}"})[0] == 403  # fmt: skip


def test_a_port_in_use_is_one_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([JOBTUI, "serve", "--port", str(port)], capture_output=True,
                              text=True, timeout=30)  # fmt: skip
    assert done.returncode == 1
    assert done.stdout == ""  # no URL printed for a server that never listened
    assert done.stderr.startswith(f"jobtui: cannot listen on 127.0.0.1:{port}: ")
    assert len(done.stderr.splitlines()) == 1


def test_without_textual_serve_is_one_line(tmp_path):
    code = ("import sys; sys.modules['textual_serve'] = None\n"
            "from jobtui.cli import main; sys.exit(main(['serve']))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1
    assert done.stderr == "jobtui: jobtui serve needs textual-serve: pip install 'jobtui[serve]'\n"
