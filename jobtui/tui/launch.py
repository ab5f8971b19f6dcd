"""Open the console: resolve the database, build the app, run it, clean up after it."""

from __future__ import annotations

import argparse
import sys

import peewee

from jobtui.models.errors import JobtuiError
from jobtui.models.visible import visible_line


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


def run(database_url: str | None, *, demo: bool = False, read_only: bool = False) -> int:
    from jobtui.models.store import classify_error

    session = None
    try:
        if demo:
            from .demo_session import DemoSession

            session = DemoSession.start(database_url)
            database_url = session.url
        app = build_app(database_url, read_only=read_only)
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
