"""Which statements lose their index under a proposed SQLite schema change.

An index on the job table costs every enqueue a page write (issue 17); dropping one, or
making it partial, is safe for results (a plan never changes an answer) but can turn an
index walk into a scan of 1,000,000 rows. This tool says which statements that happens to,
from the statements jobtui really runs:

1. ``capture -- CMD …`` runs CMD (a test run, a benchmark) with every ``sqlite3``
   connection of every Python process it starts tracing its statements to a folder (a
   ``sitecustomize`` module on ``PYTHONPATH``; processes started with ``-I``/``-S``, or
   whose ``PYTHONPATH`` is replaced, are not traced);
2. ``diff --change SQL …`` builds jobtui's schema twice, applies the change to one, runs
   ``EXPLAIN QUERY PLAN`` for each distinct statement on both, and prints the statements
   whose plan read a named index before and reads differently after, grouped by shape.

    python -m bench.plan_diff capture --into /tmp/trace -- python -m pytest -q -n 4 tests
    python -m bench.plan_diff diff --from /tmp/trace --watch jobs_status_id \\
        --change "DROP INDEX jobs_status_id" \\
        --change "CREATE INDEX jobs_status_id ON jobs (status, id) WHERE status = 'failed'"

SQLite alone: PostgreSQL's planner proves partial-index predicates more generally, and
its plans depend on statistics this tool cannot reproduce.
"""

from __future__ import annotations

import argparse
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

#: Written into a folder put first on PYTHONPATH: Python imports it at start-up.
SITECUSTOMIZE = """import os, sqlite3
_connect = sqlite3.connect
def _traced(*args, **kwargs):
    conn = _connect(*args, **kwargs)
    out = open(os.path.join({folder!r}, f"{{os.getpid()}}.sql"), "a", buffering=1)
    def write(statement, out=out):
        try:
            out.write(statement.replace("\\n", " ") + "\\n")
        except (OSError, ValueError):
            pass
    conn.set_trace_callback(write)
    return conn
sqlite3.connect = _traced
"""

_STATEMENT = re.compile(r"\s*(WITH|SELECT|UPDATE|DELETE)\b", re.IGNORECASE)
_SHAPES = (
    # long literals (ids, times, JSON): the traced statements' bound values; short ones
    # stay, since a partial index's use turns on them (status = 'pending' or 'failed')
    (re.compile(r"'[^']{13,}'"), "'…'"),
    (re.compile(r"\b\d+(\.\d+)?\b"), "N"),
    (re.compile(r"IN \([^()]*\)"), "IN (…)"),
)


@dataclass
class Change:
    """One statement shape whose plan moved: an example, and its plan before and after."""

    shape: str
    example: str
    before: str
    after: str


def shape_of(statement: str) -> str:
    """The statement with its ids, times and numbers masked: statements that differ only
    in those share one plan (the traced text has its parameters inlined)."""
    for pattern, mask in _SHAPES:
        statement = pattern.sub(mask, statement)
    return statement


def read_statements(folder: Path) -> dict[str, str]:
    """One example per shape of the traced statements that read or write ``jobs``."""
    examples: dict[str, str] = {}
    for path in sorted(folder.glob("*.sql")):
        for line in path.read_text(errors="replace").splitlines():
            if "jobs" in line and _STATEMENT.match(line):
                examples.setdefault(shape_of(line), line)
    return examples


def plan(conn: sqlite3.Connection, statement: str) -> str:
    try:
        rows = conn.execute("EXPLAIN QUERY PLAN " + statement).fetchall()
    except sqlite3.Error as exc:
        return f"(cannot plan: {exc})"
    return " | ".join(row[3] for row in rows)


def diff_plans(
    before: sqlite3.Connection,
    after: sqlite3.Connection,
    statements: dict[str, str],
    watch: Sequence[str],
) -> list[Change]:
    """The statements whose plan named a watched index before and differs after (every
    changed plan when ``watch`` is empty)."""
    changes: list[Change] = []
    for shape, example in statements.items():
        old = plan(before, example)
        if watch and not any(re.search(rf"\b{re.escape(n)}\b", old) for n in watch):
            continue
        new = plan(after, example)
        if new != old:
            changes.append(Change(shape, example, old, new))
    return changes


def jobtui_schema(path: str) -> None:
    """A file with jobtui's current schema (every migration applied)."""
    from jobtui.models import store

    store.reset()
    store.use_database(f"sqlite:///{path}")
    store.reset()


def capture(folder: Path, command: Sequence[str]) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    hook = Path(tempfile.mkdtemp(prefix="plan-diff-"))
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE.format(folder=str(folder.resolve())))
    path = os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH")) if p)
    return subprocess.call(list(command), env={**os.environ, "PYTHONPATH": path})


def diff(folder: Path, changes: Iterable[str], watch: Sequence[str]) -> list[Change]:
    work = Path(tempfile.mkdtemp(prefix="plan-diff-"))
    before_path, after_path = str(work / "before.db"), str(work / "after.db")
    jobtui_schema(before_path)
    jobtui_schema(after_path)
    after = sqlite3.connect(after_path)
    for statement in changes:
        after.execute(statement)
    return diff_plans(sqlite3.connect(before_path), after, read_statements(folder), watch)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.plan_diff", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("capture", help="run a command, tracing its SQLite statements")
    run.add_argument("--into", type=Path, required=True, help="folder for the traces")
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="-- then the command")
    compare = commands.add_parser("diff", help="plans before and after a schema change")
    compare.add_argument("--from", dest="folder", type=Path, required=True)
    compare.add_argument("--change", action="append", default=[], help="DDL to apply")
    compare.add_argument("--watch", action="append", default=[], help="an index name")
    args = parser.parse_args(argv)
    if args.command == "capture":
        command = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        if not command:
            parser.error("capture needs a command after --")
        return capture(args.into, command)
    found = diff(args.folder, args.change, args.watch)
    for change in found:
        print(f"{change.shape[:300]}\n  before: {change.before}\n  after:  {change.after}\n")
    print(f"{len(found)} statement shape(s) plan differently", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
