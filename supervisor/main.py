"""``jobtui-supervisor``: parse the options, import the task modules, run the loop.

Only entry points configure logging. The daemon never imports the console (Textual), so an
idle supervisor with two workers stays small.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import sys
import types

from jobtui.lean_import import load_peewee_for as _load_peewee_for

from .config import (
    SupervisorConfig,
    autoscaled_groups,
    parse_alert_options,
    parse_autoscale,
    parse_queue_options,
)
from .options import env_name, parse_options

__all__ = ["config_from_args", "env_name", "import_tasks", "main", "parse_options"]

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    import argparse

log = logging.getLogger("jobtui.supervisor")


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
