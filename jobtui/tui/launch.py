"""Open the console: resolve the database, build the app, run it, clean up after it."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import threading

import peewee

from jobtui.models.errors import JobtuiError
from jobtui.models.visible import visible_line

#: What closing the terminal (SIGHUP) or a plain ``kill`` (SIGTERM) sends the console.
CLOSING_SIGNALS = (signal.SIGHUP, signal.SIGTERM)
#: How long the app may take to return once the demo is stopped after such a signal.
EXIT_GRACE_S = 3.0


def build_app(database_url: str | None, *, read_only: bool = False, refresh_interval: float = 1.0):
    """The console app on ``database_url`` (opened and migrated here)."""
    from jobtui.models import store
    from jobtui.models.db import resolve_database_url

    from .app import JobtuiApp
    from .operations import Operations
    from .source import DataSource

    url = resolve_database_url(database_url)
    db = store.use_database(url)
    store.close_database()  # the UI thread never reads: workers open their own connections
    source = DataSource(db, url=url)
    operations = None if read_only else Operations(db)
    return JobtuiApp(source, operations=operations, read_only=read_only,
                     refresh_interval=refresh_interval)  # fmt: skip


def _leave(signum: int, frame: object) -> None:
    """Before the app runs (the demo being set up), SIGHUP or SIGTERM unwinds ``run`` at
    once so that its ``finally`` stops what was started (SystemExit: as ``q`` would exit).
    Later ones are ignored: nothing may cut that stop short."""
    for closing in CLOSING_SIGNALS:
        signal.signal(closing, signal.SIG_IGN)
    raise SystemExit(128 + signum)


class ClosableRun:
    """Runs the demo's app so that SIGHUP (its terminal closed: the window shut, tmux
    kill-session) and SIGTERM end it as ``q`` does: the supervisor is stopped and the
    folder removed, and the exit code is 128 + the signal. Without it the default action
    killed the console outright and the supervisor, in its own session, lived on.

    The handlers belong to the app's event loop (``add_signal_handler``), so they run as
    a plain callback, never inside the interrupted code. They ask the app to exit, which
    puts the terminal back when there still is one, and stop the session at once in a
    thread: with its terminal gone Textual's exit can hang (seen once in testing, its main
    thread blocked on one of its own threads), so if the app has not returned
    ``EXIT_GRACE_S`` after the stop, the process ends there (the stop itself is bounded,
    see ``DemoSession.stop``).
    """

    def __init__(self, app, session) -> None:
        self.app = app
        self.session = session
        self.signum: int | None = None
        self.returned = threading.Event()

    def run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            for signum in CLOSING_SIGNALS:
                loop.add_signal_handler(signum, self._closing, signum)
            self.app.run(loop=loop)
        finally:
            self.returned.set()
            for signum in CLOSING_SIGNALS:
                loop.remove_signal_handler(signum)  # back to the default action: so
                signal.signal(signum, signal.SIG_IGN)  # ignore them while the stop runs
            loop.close()

    def _closing(self, signum: int) -> None:
        if self.signum is not None:
            return
        self.signum = signum
        threading.Thread(target=self._stop_then_leave, name="demo-stop", daemon=True).start()
        self.app.exit(return_code=128 + signum)

    def _stop_then_leave(self) -> None:
        try:
            self.session.stop()
        finally:
            if not self.returned.wait(EXIT_GRACE_S):
                os._exit(128 + (self.signum or 0))


def run(database_url: str | None, *, demo: bool = False, read_only: bool = False) -> int:
    from jobtui.models.store import classify_error

    session = None
    try:
        if demo:
            from .demo_session import DemoSession

            for signum in CLOSING_SIGNALS:
                signal.signal(signum, _leave)
            session = DemoSession.start(database_url)
            database_url = session.url
        app = build_app(database_url, read_only=read_only)
        if session is not None:
            ClosableRun(app, session).run()
        else:
            app.run()
        return app.return_code or 0
    except JobtuiError as exc:
        print(f"jobtui: {visible_line(exc)}", file=sys.stderr)
        return 1
    except peewee.PeeweeException as exc:
        print(f"jobtui: {visible_line(classify_error(exc))}", file=sys.stderr)
        return 1
    finally:
        if session is not None:
            for signum in CLOSING_SIGNALS:  # the stop is bounded: let nothing cut it short
                signal.signal(signum, signal.SIG_IGN)
            session.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobtui.tui",
                                     description="The jobtui console.")  # fmt: skip
    parser.add_argument("--database", metavar="URL", help="database URL (default: as jobtui)")
    parser.add_argument("--demo", action="store_true", help="run the self-contained demo")
    parser.add_argument("--read-only", action="store_true", help="hide every writing action")
    args = parser.parse_args(argv)
    try:
        return run(args.database, demo=args.demo, read_only=args.read_only)
    except KeyboardInterrupt:
        return 130
