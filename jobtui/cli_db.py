"""``jobtui db upgrade | downgrade VERSION | status``: the schema, by hand.

Every other command migrates the schema forward on its own; these open the database
without doing so. ``upgrade`` is that forward step as a command (it creates a database
where there is none). ``downgrade`` rolls back a deploy (seed 001's ``alembic downgrade
-1``): run it with the *newer* jobtui, which knows how to undo its steps, after stopping
its supervisors — it refuses while a live one runs a schema newer than the target, and
offers no ``--force`` (a supervisor whose heartbeat went stale no longer counts).
``status`` only reads: it never creates, migrates or writes.
"""

from __future__ import annotations

import argparse
import sys

import peewee

from jobtui import __version__
from jobtui.cli_format import age, table, to_json
from jobtui.models.errors import JobtuiError, NoDatabase


def add_db_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("db", help="the database schema: upgrade, downgrade, status")
    actions = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    a = actions.add_parser("upgrade", help="migrate the schema forward to this jobtui's version "
                           "(what every command and supervisor does on start)")  # fmt: skip
    a.set_defaults(func=cmd_db_upgrade)
    a = actions.add_parser(
        "downgrade",
        help="take the schema back to VERSION (data in dropped columns and tables is lost)",
        description="Take the schema back to VERSION, or -N steps back (-1: one step). "
        "Lists what will be dropped and asks first unless --yes. Refuses while a live "
        "supervisor (fresh heartbeat) runs a newer schema than VERSION; there is no "
        "--force: stop those supervisors first.",
    )
    a.add_argument("version", metavar="VERSION", type=int, help="a schema version, or -N")
    a.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    a.set_defaults(func=cmd_db_downgrade)
    a = actions.add_parser("status", help="the schema version, this jobtui's, live supervisors'")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_db_status)
    #: main() opens no database for these: they open it themselves, unmigrated
    p.set_defaults(opens_database_itself=True)


def _open(args: argparse.Namespace, create: bool) -> tuple[peewee.Database, str]:
    from jobtui.models.db import connect, default_database_url, open_database
    from jobtui.models.db import resolve_database_url as resolve

    url = resolve(args.database)
    db = open_database(url, create_dirs=create and url == default_database_url(), create=create)
    connect(db, url)
    return db, url


def _no_schema(url: str) -> NoDatabase:
    from jobtui.models.db import redact_url

    return NoDatabase(f"no jobtui database at {redact_url(url)} (nothing was created): "
                      "jobtui db upgrade creates it")  # fmt: skip


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from jobtui.models.migrations import ensure_schema, read_schema_version

    db, _ = _open(args, create=True)
    try:
        before = read_schema_version(db)
        after = ensure_schema(db)
    finally:
        db.close()
    if before is None:
        print(f"created the schema at version {after}")
    elif before == after:
        print(f"already at schema version {after}: nothing to do")
    else:
        print(f"upgraded the schema from version {before} to {after}")
    return 0


class SupervisorsAlive(JobtuiError):
    """Live supervisors run a newer schema than the downgrade's target."""


def _refuse_newer_supervisors(target: int):  # noqa: ANN202 - a closure for downgrade_schema
    from jobtui.models.schema_status import live_supervisors

    def check(db: peewee.Database, current: int) -> None:
        newer = [s for s in live_supervisors(db, current) if s["assumed_schema_version"] > target]
        if newer:
            names = ", ".join(
                f"{s['name']} (pid {s['pid']} on {s['host']}, schema {s['assumed_schema_version']})"
                for s in newer
            )
            raise SupervisorsAlive(
                f"refusing to downgrade to schema {target}: live supervisor(s) run a newer "
                f"schema: {names}; stop them first (nothing was changed)"
            )

    return check


def cmd_db_downgrade(args: argparse.Namespace) -> int:
    from jobtui.models.db import redact_url
    from jobtui.models.downgrade import downgrade_plan, downgrade_schema
    from jobtui.models.migrations import read_schema_version

    db, url = _open(args, create=False)
    try:
        current = read_schema_version(db)
        if current is None:
            raise _no_schema(url)
        target = current + args.version if args.version < 0 else args.version
        if target == current:
            print(f"already at schema version {current}: nothing to do")
            return 0
        steps = downgrade_plan(current, target)
        check = _refuse_newer_supervisors(target)
        check(db, current)  # before asking; again under the lock, as it runs
        print(f"downgrade {redact_url(url)} from schema version {current} to {target}:")
        for version, step in steps:
            print(f"  {version} -> {version - 1}: {step.describe()}")
        print("data in dropped columns and tables is lost")
        if not args.yes and not _confirmed():
            print("jobtui: not confirmed; nothing was changed (--yes skips the question)",
                  file=sys.stderr)  # fmt: skip
            return 1
        downgrade_schema(db, target, check)
    finally:
        db.close()
    print(f"downgraded the schema from version {current} to {target}")
    return 0


def _confirmed() -> bool:
    try:
        answer = input("proceed? [y/N] ")
    except EOFError:
        print()
        return False
    return answer.strip().lower() in ("y", "yes")


def cmd_db_status(args: argparse.Namespace) -> int:
    from jobtui.models.db import redact_url
    from jobtui.models.schema_status import schema_status

    db, url = _open(args, create=False)
    try:
        status = schema_status(db)
    finally:
        db.close()
    if status["schema_version"] is None:
        raise _no_schema(url)
    status = {"database": redact_url(url), "jobtui_version": __version__, **status}
    if args.json:
        print(to_json(status))
        return 0
    version, mine = status["schema_version"], status["jobtui_schema_version"]
    note = ""
    if status["upgrade_pending"]:
        note = " — upgrade pending: jobtui db upgrade (or any command or supervisor start)"
    elif status["newer_than_this_jobtui"]:
        note = " — written by a newer jobtui: upgrade jobtui"
    print(f"database      {status['database']}")
    print(f"schema        {version}{note}")
    print(f"this jobtui   {__version__} (schema {mine})")
    supervisors = status["supervisors"]
    if not supervisors:
        print("supervisors   none alive")
        return 0
    print()
    from jobtui.models.clock import utcnow

    now = utcnow()
    table(["supervisor", "host", "pid", "jobtui", "schema", "beat"], [
        [s["name"], s["host"], s["pid"], s["jobtui_version"] or "?",
         "?" if s["schema_version"] is None else s["schema_version"],
         age(s["heartbeat_at"], now)]
        for s in supervisors
    ])  # fmt: skip
    return 0
