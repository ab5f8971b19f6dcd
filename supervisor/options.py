"""The options of ``jobtui-supervisor``: the command line, each option's environment
variable, and the parse that drops argparse before the daemon loads the rest (main.py)."""

from __future__ import annotations

import gc
import os
import sys
import types

from jobtui import __version__

from .config import (
    DEFAULT_HEARTBEAT_INTERVAL_S,
    DEFAULT_KILL_GRACE_S,
    DEFAULT_LEASE_S,
    DEFAULT_MAX_CRASHES,
    DEFAULT_MAX_LOG_BYTES,
    DEFAULT_MAX_RESULT_BYTES,
    DEFAULT_POLL_INTERVAL_S,
    DEFAULT_RETENTION_DAYS,
    DEFAULT_SHUTDOWN_GRACE_S,
)
from .prefetch import DEEP_MAX

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    import argparse


def _help_formatter(prog: str) -> argparse.HelpFormatter:
    """argparse's formatter, told the width: asked for none, it imports shutil (and with
    it bz2 and lzma) to measure the terminal, and every module the daemon imports stays in
    the memory its workers share."""
    import argparse

    try:
        width = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        try:
            width = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            width = 80
    return argparse.HelpFormatter(prog, width=width - 2)


def build_parser() -> argparse.ArgumentParser:
    import argparse

    p = argparse.ArgumentParser(
        prog="jobtui-supervisor",
        description="Run jobtui workers: fork a pool of processes that run the jobs of the "
        "tasks in the imported modules.",
        epilog="Every option may also come from the environment, the command line winning: "
        "--workers as JOBTUI_WORKERS, --heartbeat-interval as JOBTUI_HEARTBEAT_INTERVAL; "
        "repeatable ones as a comma- or space-separated list (JOBTUI_IMPORT=app.tasks,"
        "app.reports).",
        formatter_class=_help_formatter,
    )
    p.add_argument(
        "--import",
        dest="imports",
        action="append",
        required=True,
        metavar="MODULE",
        help="a module whose @task functions this supervisor runs (repeatable; or JOBTUI_IMPORT)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="workers serving every queue (or the bare --queue names); default 2",
    )
    p.add_argument(
        "--queue",
        dest="queues",
        action="append",
        default=[],
        metavar="NAME[=N]",
        help="NAME=N: N workers for NAME alone; NAME: a queue the shared workers serve",
    )
    p.add_argument("--name", help="this supervisor's name (default HOST-PID)")
    p.add_argument("--database", metavar="URL",
                   help="sqlite:////abs/path.db or postgresql://user@host/db (default: "
                        "$JOBTUI_DATABASE, then ~/.local/share/jobtui/jobtui.db)")  # fmt: skip
    p.add_argument("--notify-webhook", metavar="URL", help="POST a JSON body on each final failure")
    p.add_argument(
        "--notify-email",
        action="append",
        default=[],
        metavar="TO",
        help="e-mail each final failure to TO (repeatable; needs --smtp-url)",
    )
    p.add_argument(
        "--notify-retries",
        action="store_true",
        help="also notify each failed attempt that will be retried (webhook and e-mail; "
        "on_failure hooks stay for final failures)",
    )
    p.add_argument(
        "--notify-hook",
        metavar="MODULE:FUNCTION",
        help="call FUNCTION(payload) in the notifier process for every "
        "notification (final failures; retries too with --notify-retries)",
    )
    p.add_argument(
        "--alert-wait",
        action="append",
        default=[],
        metavar="QUEUE=SECONDS",
        help="alert (webhook, e-mail, --notify-hook) when the oldest due job of QUEUE has "
        "waited longer than SECONDS, once per episode, and again when it recovers; * for "
        "every queue (repeatable)",
    )
    p.add_argument(
        "--alert-failure-rate",
        action="append",
        default=[],
        metavar="QUEUE=PERCENT",
        help="alert when more than PERCENT of the runs of QUEUE that ended in the last 5 "
        "minutes failed, and again when it recovers; * for every queue (repeatable)",
    )
    p.add_argument(
        "--otel",
        metavar="MODULE:FUNCTION",
        help="OpenTelemetry: call FUNCTION() in each worker right after it starts, to set "
        "up its tracer provider and exporter; jobs then run in CONSUMER spans that continue "
        "their enqueuer's trace (needs jobtui[otel])",
    )
    p.add_argument("--smtp-url", metavar="URL", help="smtp://[user:pass@]host[:port] or smtps://")
    p.add_argument("--smtp-from", default="jobtui@localhost", metavar="ADDR")
    p.add_argument(
        "--heartbeat-interval", type=float, default=DEFAULT_HEARTBEAT_INTERVAL_S, metavar="S"
    )
    p.add_argument(
        "--lease",
        type=float,
        default=DEFAULT_LEASE_S,
        metavar="S",
        help="a run whose heartbeat stops this long is recovered by others",
    )
    p.add_argument(
        "--kill-grace",
        type=float,
        default=DEFAULT_KILL_GRACE_S,
        metavar="S",
        help="between SIGTERM and SIGKILL when a job is stopped",
    )
    p.add_argument(
        "--shutdown-grace",
        type=float,
        default=DEFAULT_SHUTDOWN_GRACE_S,
        metavar="S",
        help="how long a warm shutdown lets running jobs finish",
    )
    p.add_argument(
        "--default-timeout",
        type=float,
        default=0,
        metavar="S",
        help="the timeout of jobs whose own and task's are unset (0: none, the default)",
    )
    p.add_argument(
        "--default-max-retries",
        type=int,
        default=None,
        metavar="N",
        help="max_retries of jobs whose own and task's are unset (default 3)",
    )
    p.add_argument(
        "--default-retry-delay",
        type=float,
        default=None,
        metavar="S",
        help="retry_delay of jobs whose own and task's are unset (default 10)",
    )
    p.add_argument(
        "--max-crashes",
        type=int,
        default=DEFAULT_MAX_CRASHES,
        metavar="N",
        help="quarantine a job (failed, retries or not) once its runs killed their worker N "
        "times: a signal, an OOM kill, an exit mid-job, a hang (tasks' max_crashes wins; "
        f"0: never; default {DEFAULT_MAX_CRASHES})",
    )
    p.add_argument(
        "--autoscale",
        action="append",
        default=[],
        metavar="QUEUE=MIN:MAX",
        help="grow QUEUE's own workers up to MAX while its next job waits "
        "--autoscale-wait, shrink them to MIN once idle; --workers is then the most "
        "workers in all (repeatable)",
    )
    p.add_argument(
        "--autoscale-wait",
        type=float,
        default=5.0,
        metavar="S",
        help="how long a queue's next due job waits before its workers grow (default 5)",
    )
    p.add_argument(
        "--autoscale-idle",
        type=float,
        default=30.0,
        metavar="S",
        help="how long an autoscaled worker idles before it stops (default 30)",
    )
    p.add_argument("--max-result-bytes", type=int, default=DEFAULT_MAX_RESULT_BYTES, metavar="N")
    p.add_argument(
        "--max-log-bytes",
        type=int,
        default=DEFAULT_MAX_LOG_BYTES,
        metavar="N",
        help="what one run of a job may keep of its stdout, stderr and logging; the rest "
        "is counted as dropped (default 1 MB)",
    )
    p.add_argument(
        "--max-jobs-per-worker",
        type=int,
        default=0,
        metavar="N",
        help="replace a worker after N jobs (0: never)",
    )
    p.add_argument(
        "--max-memory-per-worker",
        type=float,
        default=0,
        metavar="MB",
        help="replace a worker between jobs once its RSS exceeds MB (0: never)",
    )
    p.add_argument("--retention-days", type=float, default=DEFAULT_RETENTION_DAYS, metavar="D")
    p.add_argument("--audit-retention-days", type=float, default=90.0, metavar="D",
                   help="prune audit log rows older than D days (0 keeps them all)")  # fmt: skip
    p.add_argument(
        "--priority-aging",
        default=None,
        metavar="PERIOD",
        help="a job waiting longer than PERIOD (e.g. 10m, 90s, 1h) gains one priority step "
        "per PERIOD, in the queues this supervisor serves (default off; a queue's own "
        "setting, jobtui queue NAME --priority-aging, wins)",
    )
    p.add_argument(
        "--poll-interval",
        type=float,
        default=DEFAULT_POLL_INTERVAL_S,
        metavar="S",
        help="the safety poll when no wake-up arrives (SQLite: skipped while no other "
        "connection has committed; in full at least every 10 s)",
    )
    p.add_argument(
        "--prefetch",
        type=_prefetch_option,
        default=None,
        metavar="N|auto",
        help=f"jobs queued per busy worker, 0-{DEEP_MAX} (default auto: 1, deeper while "
        "every recent job ran under a millisecond)",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve Prometheus metrics on http://0.0.0.0:PORT/metrics (needs jobtui[metrics])",
    )
    p.add_argument(
        "--metrics-buckets",
        default=None,
        metavar="S,S,...",
        help="upper bounds (seconds) of the wait and run time histograms",
    )
    p.add_argument(
        "--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
    )
    p.add_argument(
        "--log-format",
        default="text",
        choices=("text", "json"),
        help="json: one JSON object per log line (time, level, logger, message, and "
        "job_id, task, queue, attempt, worker where they apply)",
    )
    p.add_argument("--version", action="version", version=f"jobtui {__version__}")
    return p


ENV_PREFIX = "JOBTUI_"
#: Options given more than once on the command line: a list in the environment.
REPEATABLE = frozenset({"imports", "queues", "notify_email", "autoscale", "alert_wait",
                        "alert_failure_rate"})  # fmt: skip


def env_name(option: str) -> str:
    """The environment variable of an option: ``--heartbeat-interval`` is
    ``JOBTUI_HEARTBEAT_INTERVAL``."""
    return ENV_PREFIX + option.lstrip("-").upper().replace("-", "_")


def _environment_defaults(parser: argparse.ArgumentParser) -> tuple[dict[str, list], list[str]]:
    """Every option may come from the environment (a systemd unit's ``Environment=``, a
    container's settings): the command line wins, then the environment, then the built-in
    default. A bad value is refused naming its variable. Returns the lists of repeatable
    options (comma- or space-separated; used when the command line gives none) and the
    variables taken. ``JOBTUI_DATABASE`` is read where the database is opened."""
    import argparse

    lists: dict[str, list] = {}
    taken = []
    for action in parser._actions:  # argparse has no public walk of its options
        if not action.option_strings or action.dest in ("help", "version", "database"):
            continue
        name = env_name(action.option_strings[-1])
        raw = os.environ.get(name, "").strip()
        if not raw:
            continue
        items = raw.replace(",", " ").split() if action.dest in REPEATABLE else [raw]
        try:
            if action.nargs == 0:  # a switch (--notify-retries): yes or no
                values = [_switch(raw)]
            else:
                values = [action.type(item) if action.type else item for item in items]
        except (TypeError, ValueError, argparse.ArgumentTypeError) as exc:
            parser.error(f"{name}={raw!r}: {exc or 'invalid value'}")
        if action.choices is not None and values[0] not in action.choices:
            parser.error(f"{name}={raw!r}: choose from {', '.join(map(str, action.choices))}")
        if action.dest in REPEATABLE:
            lists[action.dest] = values
            action.required = False
        else:
            action.default = values[0]
        taken.append(name)
    return lists, taken


def _switch(text: str) -> bool:
    words = {"1": True, "true": True, "yes": True, "on": True,
             "0": False, "false": False, "no": False, "off": False}  # fmt: skip
    try:
        return words[text.lower()]
    except KeyError:
        raise ValueError("expected 1/0, true/false, yes/no or on/off") from None


def parse_options(argv: list[str] | None) -> types.SimpleNamespace:
    """The options as plain values (command line, then environment, then defaults), with
    argparse (and gettext) dropped before the rest of the daemon loads: kept, their classes
    would stay in the memory the workers share; freed this early, that memory is reused by
    the imports that follow."""
    ours = [name for name in ("argparse", "gettext") if name not in sys.modules]
    parser = build_parser()
    lists, taken = _environment_defaults(parser)
    options = types.SimpleNamespace(**vars(parser.parse_args(argv)))
    for dest, values in lists.items():
        if not getattr(options, dest):
            setattr(options, dest, values)
    options.from_environment = taken
    del parser
    for name in ours:  # only what this call loaded: a host process (a test) keeps its own
        sys.modules.pop(name, None)
    gc.collect()
    return options


def _prefetch_option(text: str) -> int | None:
    if text.strip().lower() == "auto":
        return None
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= DEEP_MAX:
        import argparse

        raise argparse.ArgumentTypeError(
            f"{text!r}: a number of jobs from 0 to {DEEP_MAX}, or auto"
        )
    return value
