"""Drive a real terminal program in tmux: start it, read the screen, send keys, wait for
what must appear (to a deadline; never a fixed sleep)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence


class Tmux:
    def __init__(self, command: Sequence[str], *, env: dict[str, str] | None = None,
                 size: tuple[int, int] = (120, 40), cwd: str | None = None) -> None:  # fmt: skip
        if shutil.which("tmux") is None:
            raise RuntimeError("tmux is not installed")
        self.socket = f"jobtui-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.session = "console"
        shell = f"{shlex.join(command)}; echo EXITED $?; sleep 600"
        full_env = {**os.environ, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", **(env or {})}
        full_env.pop("TMUX", None)
        self._tmux("new-session", "-d", "-s", self.session, "-x", str(size[0]), "-y",
                   str(size[1]), "-c", cwd or os.getcwd(), shell, env=full_env)  # fmt: skip

    def _tmux(self, *args: str, env: dict[str, str] | None = None) -> str:
        out = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True,
                             env=env, timeout=10, check=True)  # fmt: skip
        return out.stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", self.session)

    def send(self, *keys: str) -> None:
        """tmux key names: ``q``, ``Enter``, ``Escape``, ``Down``, ``C-r``; ``-l`` text."""
        for key in keys:
            self._tmux("send-keys", "-t", self.session, key)

    def type(self, text: str) -> None:
        self._tmux("send-keys", "-t", self.session, "-l", text)

    def wait_for(self, what: str | Callable[[str], bool], timeout: float = 20.0,
                 describe: str = "") -> str:  # fmt: skip
        """Poll the screen until ``what`` (text, or a predicate on the screen) holds."""
        check = (lambda s: what in s) if isinstance(what, str) else what
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if check(screen):
                return screen
            time.sleep(0.1)  # a polling interval towards a deadline, not a fixed wait
        raise AssertionError(f"timed out waiting for {describe or what!r}; screen:\n{screen}")

    def exit_code(self, timeout: float = 30.0) -> int:
        screen = self.wait_for("EXITED", timeout, "the program to exit")
        line = next(line for line in screen.splitlines() if line.startswith("EXITED"))
        return int(line.split()[1])

    def kill_session(self) -> None:
        """Close the terminal as a user closing its window would: the programs in it get
        SIGHUP (the server goes too: the session is its only one)."""
        self._tmux("kill-session", "-t", self.session)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True,
                       timeout=10)  # fmt: skip

    def pane_title(self) -> str:
        """The title the program in the pane set (OSC 0/2), or tmux's default."""
        return self._tmux("display-message", "-p", "-t", self.session, "#{pane_title}").strip()
