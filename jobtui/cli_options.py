"""Checks on the command line made before any database is opened, and which commands
only read.

A mistake in the options is one line on stderr and exit 1, with nothing opened or
written: ``--limit -5`` (a negative SQL LIMIT means "no limit" on SQLite and an error on
PostgreSQL), ``--delay`` with ``--at`` (one would silently win), an empty ``--queue``
(it meant "default" for enqueue and "any queue" for ``jobs``).
"""

from __future__ import annotations

import argparse

from jobtui.models.errors import JobtuiError

#: commands (and batch/schedule actions) that never write: they must not create a
#: database or its tables where there is none (``--database sqlite:///typo.db status``)
READ_ONLY_COMMANDS = frozenset({"status", "jobs", "show", "workers", "audit", "metrics", "logs"})
READ_ONLY_ACTIONS = {"batch": frozenset({"list", "show"}), "schedule": frozenset({"list"})}


class OptionError(JobtuiError):
    """Bad command-line options."""


def reads_only(args: argparse.Namespace) -> bool:
    """Whether the command only reads (so it must find a database, not create one)."""
    if args.command in READ_ONLY_COMMANDS:
        return True
    action = getattr(args, f"{args.command}_command", None)
    return action in READ_ONLY_ACTIONS.get(args.command, ())


def check_options(args: argparse.Namespace) -> None:
    """Refuse option values no command can mean, before the database is touched."""
    limit = getattr(args, "limit", None)
    if isinstance(limit, int) and not isinstance(limit, bool) and limit < 1:
        raise OptionError(f"--limit must be at least 1, got {limit}")
    queue = getattr(args, "queue", None)
    if queue is not None and not queue.strip():
        raise OptionError("a queue name cannot be empty (leave --queue out for the default)")
    if getattr(args, "delay", None) is not None and getattr(args, "at", None) is not None:
        raise OptionError("--delay and --at both say when: give one")
    given = getattr(args, "args", None) is not None or getattr(args, "kwargs", None) is not None
    if getattr(args, "stdin", False) and given:
        raise OptionError("--stdin takes args and kwargs from each line, not --args/--kwargs")


def statuses_option(text: str | None) -> list[str] | None:
    """``--status``: statuses, comma-separated, each a full name, a unique prefix or one
    of the console's aliases (``dead``, ``done``, ...). The console's resolver is used
    as is, so the CLI and the ``/`` filter accept the same words."""
    if not text:
        return None
    from jobtui.models.status import ALL_STATUSES
    from jobtui.tui.filters import STATE_ALIASES, FilterError, resolve_state

    statuses = []
    for word in (w for w in text.split(",") if w.strip()):
        try:
            statuses.append(resolve_state(word))
        except FilterError:
            aliases = ", ".join(sorted(STATE_ALIASES))
            raise OptionError(
                f"unknown status {word.strip()!r}: one of {', '.join(ALL_STATUSES)} "
                f"(or an alias: {aliases})"
            ) from None
    return list(dict.fromkeys(statuses))


__all__ = ["check_options", "reads_only", "statuses_option"]
