"""Loading Peewee without what a SQLite process never uses, before anything imports it.

Peewee imports every PostgreSQL driver it finds when it is first imported (psycopg2 and
psycopg 3, each with libpq and OpenSSL). A process on SQLite (the supervisor, its workers,
the console) never uses them, yet would carry their memory: ~8 MB of the console's RSS
with both installed. Nor is hashlib needed: Peewee only hashes long index names with MD5,
and hashlib maps OpenSSL (3.5 MB resident) or, without it, loads six hash modules; it gets
a module holding the built-in MD5 alone. Once Peewee is in, the drivers and hashlib import
again, in full (a task may use PostgreSQL or ``hashlib.pbkdf2_hmac``).

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
    else ``JOBTUI_DATABASE``, else the default file) is SQLite; as usual otherwise, or when
    Peewee is already in."""
    url = url or os.environ.get("JOBTUI_DATABASE") or "sqlite://"  # not models.db: no peewee yet
    if not url.lower().startswith("sqlite") or "peewee" in sys.modules:
        return
    hidden = [name for name in ("psycopg2", "psycopg") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    stand_in = "hashlib" not in sys.modules
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
