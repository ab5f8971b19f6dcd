"""The console's keys in one table: the help screen, the palette and README read it.

``MUTATING`` names the actions that write; ``--read-only`` hides every one of them (from
the footer, the palette and the help) and refuses to run them.
"""

from __future__ import annotations

#: Actions that change the database.
MUTATING = frozenset({
    "cancel", "kill", "retry", "delete", "priority_up", "priority_down", "toggle_pause",
    "enqueue", "toggle_schedule", "run_schedule_now", "edit_retry",
    "scale",
})  # fmt: skip

#: (scope, keys, what, action or "" when not an action of its own)
KEYMAP: tuple[tuple[str, str, str, str], ...] = (
    ("global", "1 … 7", "views: Jobs, Queues, Workers, Failures, Scheduled, Metrics, Audit", ""),
    ("global", "?", "this help", "help"),
    ("global", "ctrl+p", "command palette (every action is there too)", ""),
    ("global", "ctrl+r", "refresh now", "refresh"),
    ("global", "Z", "freeze / unfreeze updates", "toggle_freeze"),
    ("global", "q", "back; quit at the root", "back"),
    ("global", "esc", "clear the marks or the filter, else back; never quits", "back"),
    ("tables", "↑ ↓ / j k", "move; past the last row loads the next page", ""),
    ("tables", "g / G, home / end", "first / last row (first / last page)", ""),
    ("tables", "pgup / pgdn", "page", ""),
    ("tables", "enter", "open the row", ""),
    (
        "tables",
        "/",
        "filter: jobs by the grammar below, other views by words (enter applies, esc clears)",
        "filter",
    ),
    ("tables", "s", "sort by the next column (jobs: newest / oldest first)", ""),
    ("tables", "space", "mark the row", "toggle_mark"),
    ("tables", "*", "mark all jobs matching the filter", "mark_all"),
    ("jobs", "c", "cancel (running jobs are asked to stop)", "cancel"),
    ("jobs", "R", "retry a failed or cancelled job", "retry"),
    (
        "jobs",
        "E",
        "edit and retry: a failed or cancelled job's arguments, priority, queue",
        "edit_retry",
    ),
    ("jobs", "K", "kill a running job now, after y/n (SIGTERM to its process tree)", "kill"),
    ("jobs", "D", "delete", "delete"),
    ("jobs", "+ / -", "priority up / down", "priority_up"),
    (
        "jobs",
        "e",
        "enqueue a job (the task field completes the names in the task catalog: → accepts)",
        "enqueue",
    ),
    ("jobs", "w", "go to the job's worker", "goto_worker"),
    ("queues", "p", "pause / resume the queue", "toggle_pause"),
    ("queues", "enter", "the queue's jobs (esc comes back)", ""),
    ("failures", "E", "edit and retry the group's newest job", "edit_retry"),
    ("queues", "W", "set the queue's workers on its supervisor, live (a form)", "scale"),
    ("scheduled", "p", "pause / resume the highlighted schedule", "toggle_schedule"),
    ("scheduled", "n", "run the highlighted schedule's job now", "run_schedule_now"),
    ("scheduled", "enter", "the schedule's last job, or the delayed job", ""),
    ("workers", "enter", "worker detail", ""),
    ("workers", "o", "its current job", "open_job"),
    ("workers", "W", "set the workers of the highlighted queue group, live (a form)", "scale"),
    ("job detail", "[ / ]", "previous / next tab", ""),
    ("job detail", "t / a", "traceback / attempts tab", ""),
    ("job detail", "l", "logs tab: stdout, stderr and logging, tailed while it runs", ""),
    ("job detail", "S", "the running job's live stack (Stack tab)", ""),
    ("job detail", "esc", "back", ""),
    (
        "filter",
        "state:failed queue:email task:send_* worker:w-3 pri:>5 age:>10m !queue:low",
        "user:42 tag:urgent ref:order:7 and free text; comma lists, quotes, ! negates",
        "",
    ),
)

#: What a confirmation asks for, by blast radius.
CONFIRMATIONS = (
    "retry, priority, pause of one job or queue: none (a toast reports it)",
    "cancel, kill, delete of one job: y/n with the job's summary (focus starts on No)",
    "2–99 marked jobs: a modal with the counts by state",
    "100+ jobs or all matching: type the count to confirm",
)


def keymap_rows(read_only: bool = False) -> list[tuple[str, str, str]]:
    """The keymap, without the writing actions when ``read_only``."""
    return [(scope, keys, what) for scope, keys, what, action in KEYMAP
            if not (read_only and action in MUTATING)]  # fmt: skip


def keymap_markdown() -> str:
    """The keymap as a Markdown table (README)."""
    lines = ["| scope | keys | what |", "|---|---|---|"]
    for scope, keys, what in keymap_rows():
        lines.append(f"| {scope} | `{keys}` | {what} |")
    return "\n".join(lines)
