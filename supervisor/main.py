"""``jobtui-supervisor``: parse the options, import the task modules, run the loop.

Only entry points configure logging. The daemon never imports the console (Textual), so an
idle supervisor with two workers stays small.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import socket
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
    SupervisorConfig,
    autoscaled_groups,
    parse_alert_options,
    parse_autoscale,
    parse_queue_options,
)

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    import argparse

log = logging.getLogger("jobtui.supervisor")


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
        help="the safety poll when no wake-up arrives",
    )
    p.add_argument(
        "--prefetch",
        type=_prefetch_option,
        default=None,
        metavar="N|auto",
        help="jobs queued per busy worker, 0-64 (default auto: 1, deeper while every "
        "recent job ran under a millisecond)",
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


def _load_peewee_for(url: str | None) -> None:
    """Import Peewee without a PostgreSQL driver when the database is SQLite: the driver
    and libpq cost every process of the daemon memory it never uses. Nor with hashlib:
    Peewee only hashes long index names with MD5, and hashlib would map OpenSSL (3.5 MB
    resident) or, without it, load six hash modules; it gets a module holding the
    built-in MD5 alone. Once Peewee is in, the driver and hashlib import again, in full
    (a task may use PostgreSQL or ``hashlib.pbkdf2_hmac``)."""
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
    if not 0 <= value <= 64:
        import argparse

        raise argparse.ArgumentTypeError(f"{text!r}: a number of jobs from 0 to 64, or auto")
    return value


def config_from_args(args: argparse.Namespace | types.SimpleNamespace) -> SupervisorConfig:
    from jobtui.models.errors import ConfigurationError

    for name in ("heartbeat_interval", "lease", "poll_interval"):
        if getattr(args, name) <= 0:
            raise ConfigurationError(f"--{name.replace('_', '-')} must be > 0")
    if args.lease < 2 * args.heartbeat_interval:  # a lease must outlive a late heartbeat
        raise ConfigurationError(
            f"--lease ({args.lease:g} s) must be at least twice --heartbeat-interval "
            f"({args.heartbeat_interval:g} s): other supervisors would take running jobs "
            "from a healthy supervisor between two of its heartbeats"
        )
    for name in ("kill_grace", "shutdown_grace", "default_timeout"):
        if getattr(args, name) < 0:
            raise ConfigurationError(f"--{name.replace('_', '-')} must be >= 0")
    if args.default_max_retries is not None and args.default_max_retries < 0:
        raise ConfigurationError("--default-max-retries must be >= 0")
    if args.default_retry_delay is not None and args.default_retry_delay < 0:
        raise ConfigurationError("--default-retry-delay must be >= 0")
    if args.notify_hook is not None and ":" not in args.notify_hook:
        raise ConfigurationError(f"--notify-hook takes MODULE:FUNCTION, got {args.notify_hook!r}")
    if args.otel is not None and ":" not in args.otel:
        raise ConfigurationError(f"--otel takes MODULE:FUNCTION, got {args.otel!r}")
    if args.notify_email and not args.smtp_url:
        raise ConfigurationError("--notify-email needs --smtp-url")
    for name in ("max_jobs_per_worker", "max_memory_per_worker"):
        if getattr(args, name) is not None and getattr(args, name) < 0:
            raise ConfigurationError(f"--{name.replace('_', '-')} must be >= 0 (0: no limit)")
    if args.retention_days < 0:
        raise ConfigurationError("--retention-days must be >= 0 (0 keeps everything)")
    if args.audit_retention_days < 0:
        raise ConfigurationError("--audit-retention-days must be >= 0 (0 keeps everything)")
    if args.max_result_bytes <= 0:
        raise ConfigurationError("--max-result-bytes must be > 0")
    if args.max_crashes < 0:
        raise ConfigurationError("--max-crashes must be >= 0 (0: never quarantine)")
    if args.autoscale_wait < 0 or args.autoscale_idle < 0:
        raise ConfigurationError("--autoscale-wait and --autoscale-idle must be >= 0")
    buckets = None
    if args.metrics_port is not None and not 0 < args.metrics_port < 65536:
        raise ConfigurationError(f"--metrics-port {args.metrics_port}: a port from 1 to 65535")
    if args.metrics_buckets is not None:
        if args.metrics_port is None:
            raise ConfigurationError("--metrics-buckets needs --metrics-port")
        from .metrics import parse_buckets

        try:
            buckets = parse_buckets(args.metrics_buckets)
        except ValueError as exc:
            raise ConfigurationError(f"--metrics-buckets {exc}") from None
    if args.max_log_bytes < 0:
        raise ConfigurationError("--max-log-bytes must be >= 0 (0 keeps no output)")
    aging_s = None
    if args.priority_aging is not None:
        from jobtui.models.aging import parse_period

        try:
            aging_s = parse_period(args.priority_aging) or None
        except ValueError as exc:
            raise ConfigurationError(f"--priority-aging: {exc}") from None
    try:
        autoscale = parse_autoscale(args.autoscale)
        if autoscale:
            groups, ceiling = autoscaled_groups(args.queues, args.workers, autoscale)
        else:
            groups, ceiling = parse_queue_options(args.queues, args.workers), 0
        alerts = (parse_alert_options(args.alert_wait, "wait")
                  + parse_alert_options(args.alert_failure_rate, "failure_rate"))  # fmt: skip
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    host = socket.gethostname()
    return SupervisorConfig(
        imports=tuple(args.imports), groups=groups, name=args.name or f"{host}-{os.getpid()}",
        database_url=args.database, host=host, heartbeat_interval_s=args.heartbeat_interval,
        lease_s=args.lease, kill_grace_s=args.kill_grace, shutdown_grace_s=args.shutdown_grace,
        max_result_bytes=args.max_result_bytes, max_log_bytes=args.max_log_bytes,
        max_jobs_per_worker=args.max_jobs_per_worker,
        max_memory_per_worker_mb=args.max_memory_per_worker, retention_days=args.retention_days,
        audit_retention_days=args.audit_retention_days,
        poll_interval_s=args.poll_interval, prefetch=args.prefetch,
        notify_webhook=args.notify_webhook, notify_email=tuple(args.notify_email),
        notify_retries=args.notify_retries,
        smtp_url=args.smtp_url, smtp_from=args.smtp_from,
        default_timeout_s=args.default_timeout, default_max_retries=args.default_max_retries,
        default_retry_delay_s=args.default_retry_delay, notify_hook=args.notify_hook,
        max_crashes=args.max_crashes, autoscale=autoscale, max_workers=ceiling,
        autoscale_wait_s=args.autoscale_wait, autoscale_idle_s=args.autoscale_idle,
        otel=args.otel, alerts=alerts,
        metrics_port=args.metrics_port, metrics_buckets=buckets,
        priority_aging_s=aging_s,
    )  # fmt: skip


def import_tasks(modules: tuple[str, ...]) -> None:
    """Import the task modules; a failure names the module and the reason in one line."""
    from jobtui.models.errors import ConfigurationError
    from jobtui.registry import registry

    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # like `python -m`: modules beside the caller import
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - any import error is a configuration error
            raise ConfigurationError(
                f"cannot import {module}: {type(exc).__name__}: {exc}"
            ) from exc
    if not len(registry):
        raise ConfigurationError(f"no @task found in {', '.join(modules)}")
    _warn_about_threads()


def _warn_about_threads() -> None:
    """Workers are forked from this process; a thread a task module started at import
    (an SDK's flusher, a metrics client) may hold a lock at the fork that no worker can
    ever take again (RELIABILITY.md, fact 3). Say so, naming them."""
    import threading

    others = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if others:
        log.warning("the task modules started thread(s) %s in the supervisor; workers are "
                    "forked from it and may deadlock: start them inside the tasks instead",
                    ", ".join(sorted(others)))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_options(argv)
    _load_peewee_for(args.database)  # first: the log's formatter imports jobtui.models
    from .logline import name_process, visible_handler

    logging.basicConfig(level=args.log_level,
                        handlers=[visible_handler(sys.stderr, args.log_format)])  # fmt: skip
    if args.from_environment:
        log.info("options from the environment: %s", ", ".join(args.from_environment))
    from jobtui.models.errors import JobtuiError
    from jobtui.models.visible import visible_line
    from jobtui.registry import registry

    from . import linux
    from .signals import SignalInbox

    try:
        config = config_from_args(args)
        name_process(supervisor=config.name)
        import_tasks(config.imports)
        if config.notify_hook:
            from .notify import load_hook

            load_hook(config.notify_hook)  # a hook that does not import fails the start
        if config.otel:
            from .notify import load_hook

            load_hook(config.otel, "--otel")  # imported here once; called in each worker
        metrics = None
        if config.metrics_port is not None:
            from .metrics import DEFAULT_BUCKETS, SupervisorMetrics

            metrics = SupervisorMetrics(config.name, config.metrics_buckets or DEFAULT_BUCKETS)
            metrics.serve(config.metrics_port)
        from .startup import open_and_register

        # Signals are ours before the row that makes us visible is written: a SIGTSTP or
        # SIGTERM sent as soon as we appear must not meet the default action (stop, die).
        inbox = SignalInbox()
        inbox.install()
        db, wake = open_and_register(config, registry)
    except JobtuiError as exc:
        print(f"jobtui-supervisor: {visible_line(exc)}", file=sys.stderr)
        return 1
    if not linux.IS_LINUX:
        log.warning("not on Linux: no subreaper or parent-death signal; a killed supervisor "
                    "may leave workers and grandchildren behind")  # fmt: skip
    else:
        linux.become_subreaper()
    from .loop import Supervisor

    supervisor = Supervisor(config, registry, db, wake=wake, inbox=inbox, metrics=metrics)
    try:
        code = supervisor.run()
    finally:
        if metrics is not None:
            metrics.close()
    if supervisor.reload_requested:  # SIGHUP, and the new code imports
        from .reload import execute_again

        try:
            execute_again()
        except OSError as exc:
            print(f"jobtui-supervisor: cannot start again after SIGHUP: {exc}", file=sys.stderr)
            return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
