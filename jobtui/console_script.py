"""The ``jobtui`` command (and ``python -m jobtui``): Peewee loaded for the database the
command line names (jobtui.lean_import: no PostgreSQL driver on SQLite), then the CLI."""

from __future__ import annotations

import sys


def main() -> int:
    from jobtui.lean_import import database_flag, load_peewee_for

    load_peewee_for(database_flag(sys.argv[1:]))
    from jobtui.cli import main as cli_main

    return cli_main()
