"""Loading Peewee without what a SQLite process never uses, before anything imports it.

Peewee imports every PostgreSQL driver it finds when it is first imported (psycopg2 and
psycopg 3, each with libpq and OpenSSL). A process on SQLite (the supervisor, its workers,
the console) never uses them, yet would carry their memory: ~8 MB of the console's RSS
with both installed. Nor is hashlib needed: Peewee only hashes long index names with MD5,
and hashlib maps OpenSSL (3.5 MB resident) or, without it, loads six hash modules; it gets
a module holding the built-in MD5 alone. Once Peewee is in, the drivers and hashlib import
again, in full (a task may use PostgreSQL or ``hashlib.pbkdf2_hmac``). A process on
PostgreSQL loads psycopg2, the driver it uses, and not psycopg 3 beside it.

This module imports nothing of jobtui's and no Peewee: the entry points call it first.
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Sequence


def database_flag(argv: Sequence[str]) -> str | None:
    """The URL of a ``--database URL`` (or ``--database=URL``) on a command line; None
    without one. A look before argparse runs: a wrong guess only loads the drivers."""
    for index, word in enumerate(argv):
        if word == "--database" and index + 1 < len(argv):
            return argv[index + 1]
        if word.startswith("--database="):
            return word.partition("=")[2]
    return None


def load_peewee_for(url: str | None) -> None:
    """Import Peewee without the PostgreSQL drivers and hashlib when the database (``url``,
    else ``JOBTUI_DATABASE``, else the default file) is SQLite; on PostgreSQL without
    psycopg 3 when psycopg2 is there; as usual when Peewee is already in.

    On PostgreSQL jobtui's connections are psycopg2's (models/db.py), and Peewee prefers
    psycopg2 when both are installed. psycopg 3, which Peewee imports too when it finds it
    (Django 4.2 and later bring it), only costs the process: 55-60 ms of start-up and
    13 MB of RSS measured here, each supervisor start paying it before its first job.
    Hidden only while Peewee loads: a task may import psycopg 3 and use it (Peewee itself
    then keeps to psycopg2, as a SQLite process keeps to no driver)."""
    url = url or os.environ.get("JOBTUI_DATABASE") or "sqlite://"  # not models.db: no peewee yet
    if "peewee" in sys.modules:
        return
    sqlite = url.lower().startswith("sqlite")
    if sqlite:
        drivers: tuple[str, ...] = ("psycopg2", "psycopg")
    else:
        from importlib.util import find_spec

        drivers = ("psycopg",) if find_spec("psycopg2") is not None else ()
    hidden = [name for name in drivers if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    stand_in = sqlite and "hashlib" not in sys.modules
    if stand_in:
        import _md5

        md5_only = types.ModuleType("hashlib", "MD5 alone, for Peewee's index names")
        md5_only.md5 = _md5.md5  # type: ignore[attr-defined]
        sys.modules["hashlib"] = md5_only
    try:
        import peewee  # noqa: F401
    finally:
        for name in hidden:
            sys.modules.pop(name, None)
        if stand_in:
            sys.modules.pop("hashlib", None)  # Peewee keeps its MD5; the next import is whole
