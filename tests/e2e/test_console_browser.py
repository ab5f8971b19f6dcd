"""``jobtui serve``: the console in a real headless Chromium, through textual-serve, behind
its token. What the browser receives over the page's websocket is the console's screen
(the terminal's escape sequences): the test reads it with the escapes stripped, and saves
a screenshot in its output folder.

Needs Debian's ``chromium`` and the ``playwright`` package (its driver only: the browser is
the system's); without either it skips, saying which is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from supervisor_harness import never, wait_until

import jobtui
from jobtui.models import Job

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"))
                 if p), None)  # fmt: skip
JOBTUI = str(Path(sys.executable).parent / "jobtui")
ESCAPES = re.compile(r"\x1b(\[[0-9;?$]*[a-zA-Z~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][A-Z0-9]|[=>])")

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine "
                                "(apt-get install chromium)")  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


class Served:
    """``jobtui serve`` in a subprocess; ``url`` is the one it printed, with its token."""

    def __init__(self, tmp_path: Path, *options: str) -> None:
        self.port = free_port()
        self.log = tmp_path / "serve.log"
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen([JOBTUI, "serve", "--port", str(self.port), *options],
                                         stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        found = wait_until(lambda: re.search(r"http://\S+\?token=\S+", self.log.read_text()),
                           20, "jobtui serve printed its URL", explain=self.log.read_text)  # fmt: skip
        self.url = found.group(0)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(5)


class Screen:
    """What the page's websocket brought, as text."""

    def __init__(self, page) -> None:
        self.page = page
        self.frames: list[str] = []
        page.on(
            "websocket", lambda ws: ws.on("framereceived", lambda data: self.frames.append(data))
        )

    def text(self, since: int = 0) -> str:
        raw = "".join(f if isinstance(f, str) else f.decode("utf-8", "replace")
                      for f in self.frames[since:])  # fmt: skip
        return ESCAPES.sub("", raw)

    def seen(self, words: str, since: int) -> bool:
        self.page.wait_for_timeout(50)  # playwright's sync API delivers events in its calls
        return words in self.text(since)

    def wait_for(self, words: str, since: int = 0, timeout: float = 20.0) -> None:
        wait_until(lambda: self.seen(words, since), timeout, f"{words!r} on the page",
                   explain=lambda: f"{len(self.frames)} frames: " + self.text(since)[-3000:])  # fmt: skip


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed (pip install playwright)")  # fmt: skip
    with sync_api.sync_playwright() as driver:
        try:
            chromium = driver.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=["--no-sandbox"])  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - any launch failure means no browser here
            pytest.skip(f"chromium does not start: {str(exc).splitlines()[0]}")
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.mark.parametrize("read_only", [False, True], ids=["read-write", "read-only"])
def test_the_console_in_a_browser(sqlite_db, tmp_path, browser, read_only):
    job = jobtui.enqueue("browser_probe.visible_task", title="seen in the browser")
    served = Served(tmp_path, *(["--read-only"] if read_only else []))
    try:
        base = served.url.split("?")[0]
        assert status_of(base) == 403  # no token
        assert status_of(base + "?token=wrong") == 403
        assert status_of(base + "static/js/textual.js") == 403
        page = browser.new_page(viewport={"width": 1400, "height": 800})
        screen = Screen(page)
        page.goto(served.url)
        screen.wait_for("browser_probe.visible_task")  # the Jobs view shows the job
        assert ("read-only" in screen.text()) is read_only  # the header says so
        page.locator(".xterm-screen").click()
        shot = tmp_path / "browser-console.png"
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
        mark = len(screen.frames)
        page.keyboard.press("2")  # a key switches views: the Queues view
        screen.wait_for("2 Queues", since=mark)
        mark = len(screen.frames)
        page.keyboard.press("?")
        screen.wait_for("this help", since=mark)
        help_text = screen.text(mark)
        writing = "retry a failed or cancelled job"
        assert (writing in help_text) is not read_only, help_text[-3000:]
        page.keyboard.press("Escape")
        page.wait_for_timeout(400)  # a lone escape is told from a sequence by a pause
        mark = len(screen.frames)
        page.keyboard.press("1")
        screen.wait_for("newest first", since=mark)  # the Jobs view again, its job selected
        mark = len(screen.frames)
        page.keyboard.press("c")  # cancel, after y/n: a writing action
        if read_only:
            page.wait_for_timeout(1000)
        else:
            screen.wait_for("(y)", since=mark)  # the question's yes button
        page.keyboard.press("y")
        cancelled = lambda: Job.get_by_id(job.id).status == "cancelled"  # noqa: E731
        if read_only:
            never(lambda: page.wait_for_timeout(50) or cancelled(), 2.0,
                  "a read-only console cancelled a job")  # fmt: skip
        else:
            wait_until(lambda: page.wait_for_timeout(50) or cancelled(), 15,
                       "the job cancelled from the browser")  # fmt: skip
        page.screenshot(path=str(tmp_path / "browser-console-after.png"))
    finally:
        served.stop()
    assert served.proc.returncode is not None
