"""The jobtui console (Textual). Imported lazily: only ``jobtui`` with no subcommand loads it.

``run_console`` is the entry point the CLI calls; ``python -m jobtui.tui`` runs it too.
Nothing in ``jobtui.models`` or ``jobtui.supervisor`` imports this package.
"""

from __future__ import annotations


def run_console(database_url: str | None, *, demo: bool = False, read_only: bool = False) -> int:
    """Open the console on ``database_url`` (None: the configured database). With ``demo``,
    run the self-contained demo (its own database unless one is given, a child supervisor
    with the demo tasks, seeded jobs and a cron schedule). Returns the exit status."""
    from .launch import run

    return run(database_url, demo=demo, read_only=read_only)


__all__ = ["run_console"]
