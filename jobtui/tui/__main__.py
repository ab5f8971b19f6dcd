"""``python -m jobtui.tui [--database URL] [--demo] [--read-only]``: the console alone."""

from __future__ import annotations

import sys


def _main() -> int:
    from jobtui.lean_import import database_flag, load_peewee_for

    load_peewee_for(database_flag(sys.argv[1:]))  # before launch imports Peewee
    from .launch import main

    return main()


sys.exit(_main())
