"""Notifications on final failure: a webhook POST, an e-mail, a task's ``on_failure`` hook,
the global ``--notify-hook module:function`` (any channel: Slack's SDK, a pager, a metric);
with ``--notify-retries``, the webhook, the e-mail and the global hook also hear of each
failed attempt that will be retried (``"event": "retrying"``; final failures say ``"failed"``).
Queue alerts (supervisor/alerts.py) go the same ways, as ``"event": "alert"`` when an
episode begins and ``"recovered"`` when it ends (``kind``, ``queue``, ``value``,
``threshold``, ``since``, ``episode``); a task's ``on_failure`` hook hears only of jobs.

They run in a small notifier process forked at start (so a slow HTTP or SMTP server never
blocks the dispatch loop or a worker, and the loop stays thread-free). The supervisor
writes one JSON line per final failure to a non-blocking pipe; when the notifier falls so
far behind that the pipe is full, the notification is dropped and logged — the failure
itself is always in the database and the log.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from jobtui.registry import TaskRegistry

from . import linux

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any

log = logging.getLogger(__name__)

HTTP_TIMEOUT_S = 5.0
SMTP_TIMEOUT_S = 10.0
ATTEMPTS = 3
BACKOFF_S = (0.5, 2.0)


@dataclass(frozen=True)
class NotifySettings:
    webhook: str | None = None
    email_to: tuple[str, ...] = ()
    smtp_url: str | None = None
    smtp_from: str = "jobtui@localhost"
    retries: bool = False  # each failed attempt that will be retried, too
    hook: str | None = None  # "module:function", called with every payload

    @property
    def enabled(self) -> bool:
        return bool(self.webhook or (self.email_to and self.smtp_url) or self.hook)


def load_hook(spec: str, option: str = "--notify-hook"):
    """The function named by ``module:function`` (imported, as task modules are: the
    supervisor checks it at start, the notifier finds it imported already). A name that
    does not resolve to a callable is a ConfigurationError naming ``option``."""
    import importlib

    from jobtui.models.errors import ConfigurationError

    module_name, _, attr = spec.partition(":")
    try:
        target = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except Exception as exc:  # noqa: BLE001 - any import error is a configuration error
        raise ConfigurationError(f"{option} {spec}: {type(exc).__name__}: {exc}") from exc
    if not callable(target):
        raise ConfigurationError(f"{option} {spec}: not a function")
    return target


def _retrying(what: str, action) -> None:
    import smtplib
    import urllib.error

    for attempt in range(ATTEMPTS):
        try:
            action()
            return
        except (OSError, urllib.error.URLError, smtplib.SMTPException) as exc:
            if attempt + 1 == ATTEMPTS:
                log.warning("%s failed after %d attempts: %s", what, ATTEMPTS, exc)
                return
            time.sleep(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])


def summary(payload: dict[str, Any]) -> str:
    """One line for people: the webhook's ``text`` (what Slack and Mattermost incoming
    webhooks show; other receivers read the fields beside it). Job text in it is shown
    with its control characters visible; the fields beside it stay exact."""
    from jobtui.models.visible import visible_line

    return visible_line(_summary(payload))


def is_alert(payload: dict[str, Any]) -> bool:
    return payload.get("event") in ("alert", "recovered")


def _subject(payload: dict[str, Any]) -> str:
    """What a payload is about, for log lines: "job ID" or "alert wait on queue Q"."""
    if is_alert(payload):
        return f"{payload.get('event')} {payload.get('kind')} on queue {payload.get('queue')}"
    return f"job {payload.get('job_id')}"


def _alert_summary(payload: dict[str, Any]) -> str:
    from .alerts import describe

    what = describe(payload.get("kind") or "", float(payload.get("value") or 0),
                    float(payload.get("threshold") or 0))  # fmt: skip
    if payload.get("event") == "alert":
        return f"jobtui: queue {payload.get('queue')} in alert: {what}"
    return f"jobtui: queue {payload.get('queue')} recovered: {what}"


def _summary(payload: dict[str, Any]) -> str:
    if is_alert(payload):
        return _alert_summary(payload)
    attempts = payload.get("attempts")
    where = f"on {payload['queue']} " if payload.get("queue") else ""
    if payload.get("event") == "retrying":
        return (f"jobtui: {payload.get('task')} failed {where}(attempt {attempts}), will retry: "
                f"{payload.get('error')} (job {payload.get('job_id')})")  # fmt: skip
    tries = f"after {attempts} attempt{'' if attempts == 1 else 's'}" if attempts else ""
    return (f"jobtui: {payload.get('task')} failed {where}{tries}: {payload.get('error')} "
            f"(job {payload.get('job_id')})")  # fmt: skip


def post_webhook(url: str, payload: dict[str, Any]) -> None:
    """POST ``payload`` as JSON; raises on a network error or a non-2xx answer."""
    import urllib.request

    body = json.dumps(payload).encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json",
                                              "User-Agent": "jobtui"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
        if not 200 <= response.status < 300:
            raise OSError(f"webhook answered {response.status}")


def send_email(settings: NotifySettings, payload: dict[str, Any]) -> None:
    """Send the failure by SMTP (``smtp://[user:pass@]host[:port]``, or ``smtps://``)."""
    import smtplib
    from email.message import EmailMessage

    from jobtui.models.visible import visible_line

    parts = urlsplit(settings.smtp_url or "")
    message = EmailMessage()
    again = (
        f" (attempt {payload['attempts']}), will retry"
        if payload.get("event") == "retrying"
        else ""
    )
    # A header must be one line (EmailMessage refuses CR/LF) and a mail client may show it
    # in a terminal: the job's error is shown, never emitted.
    if is_alert(payload):
        subject = "[jobtui] " + _alert_summary(payload).removeprefix("jobtui: ")
    else:
        subject = f"[jobtui] job {payload['task']} failed{again}: {payload['error']}"
    message["Subject"] = visible_line(subject)[:200]
    message["From"] = settings.smtp_from
    message["To"] = ", ".join(settings.email_to)
    message.set_content(json.dumps(payload, indent=2))
    smtp_class = smtplib.SMTP_SSL if parts.scheme == "smtps" else smtplib.SMTP
    port = parts.port or (465 if parts.scheme == "smtps" else 25)
    with smtp_class(parts.hostname or "localhost", port, timeout=SMTP_TIMEOUT_S) as smtp:
        if parts.username:
            smtp.login(unquote(parts.username), unquote(parts.password or ""))
        smtp.send_message(message)


def deliver(settings: NotifySettings, registry: TaskRegistry, payload: dict[str, Any]) -> None:
    """Every channel for one failure (a task's hook: final failures only; the global hook:
    every payload it is sent); each failing channel is logged, never raised."""
    about = _subject(payload)
    if settings.webhook:
        _retrying(f"webhook for {about}",
                  lambda: post_webhook(settings.webhook, {**payload, "text": summary(payload)}))  # fmt: skip
    if settings.email_to and settings.smtp_url:
        _retrying(f"e-mail for {about}", lambda: send_email(settings, payload))
    task = None if is_alert(payload) else registry.get(payload.get("task") or "")
    if payload.get("event") != "retrying" and task is not None and task.on_failure is not None:
        try:
            task.on_failure(payload)
        except Exception:  # noqa: BLE001 - a user's hook must not stop the others
            log.exception("on_failure hook of %s raised", task.name)
    if settings.hook:
        try:
            load_hook(settings.hook)(payload)
        except Exception:  # noqa: BLE001 - a user's hook must not stop the notifier
            log.exception("--notify-hook %s raised for %s", settings.hook, about)


def notifier_main(read_fd: int, settings: NotifySettings, registry: TaskRegistry) -> None:
    """The notifier process: one JSON line per failure until the supervisor closes the pipe."""
    os.setpgid(0, 0)  # out of the supervisor's group: a group signal is the supervisor's
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGTSTP, signal.SIGCONT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)  # not the supervisor's recording handlers
    signal.set_wakeup_fd(-1)  # nor its wake-up pipe (closed in this process)
    linux.die_with_parent()
    with os.fdopen(read_fd, "r", encoding="utf-8") as lines:
        for line in lines:
            try:
                payload = json.loads(line)
            except ValueError:
                continue
            deliver(settings, registry, payload)
    os._exit(0)


def _line(payload: dict[str, Any]) -> bytes:
    """One JSON line no longer than PIPE_BUF: a write that size to a pipe is atomic (all or
    EAGAIN), so a full pipe never leaves half a line for the next one to corrupt. A long
    error message is cut to fit (the job row has it whole)."""

    def encoded(error: str | None) -> bytes:
        return (json.dumps({**payload, "error": error}, ensure_ascii=False) + "\n").encode()

    error = payload.get("error")
    data = encoded(error)
    if len(data) <= select.PIPE_BUF or not error:
        return data
    low, high = 0, len(error)  # the longest prefix that fits (escapes make it uneven)
    while low < high:
        mid = (low + high + 1) // 2
        if len(encoded(error[:mid] + "…")) <= select.PIPE_BUF:
            low = mid
        else:
            high = mid - 1
    return encoded(error[:low] + "…")


class Notifier:
    """The supervisor's side: fork the notifier, hand it failures without ever blocking."""

    def __init__(self, settings: NotifySettings, registry: TaskRegistry) -> None:
        self.settings = settings
        self.registry = registry
        self.pid: int | None = None
        self.write_fd: int | None = None

    @property
    def wanted(self) -> bool:
        return self.settings.enabled or any(
            (t := self.registry.get(n)) is not None and t.on_failure is not None
            for n in self.registry.names()
        )

    def start(self, close_in_child) -> None:
        if not self.wanted:
            return
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(write_fd)
                close_in_child()
                notifier_main(read_fd, self.settings, self.registry)
            finally:
                os._exit(1)
        os.close(read_fd)
        os.set_blocking(write_fd, False)
        self.pid, self.write_fd = pid, write_fd

    def send(self, payload: dict[str, Any]) -> None:
        if self.write_fd is None:
            return
        data = _line(payload)
        try:
            os.write(self.write_fd, data)  # at most PIPE_BUF bytes: all of it, or none
        except BlockingIOError:
            log.warning("notifier is behind: dropped the notification for %s",
                        _subject(payload))  # fmt: skip
        except OSError as exc:
            log.warning("notifier gone (%s): dropped the notification for %s", exc,
                        _subject(payload))  # fmt: skip

    def close_in_child(self) -> None:
        if self.write_fd is not None:
            os.close(self.write_fd)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Close the pipe; the notifier delivers what it has, then exits (bounded)."""
        if self.write_fd is not None:
            os.close(self.write_fd)
            self.write_fd = None
        if self.pid is None:
            return
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                done, _ = os.waitpid(self.pid, os.WNOHANG)
                if done:
                    break
                time.sleep(0.02)
            else:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass  # reaped already by the loop
        self.pid = None

    def exited(self) -> None:
        """The loop reaped the notifier: forget it (it is restarted on the next turn)."""
        log.warning("notifier process %s exited; restarting it", self.pid)
        if self.write_fd is not None:
            os.close(self.write_fd)
        self.pid = self.write_fd = None
