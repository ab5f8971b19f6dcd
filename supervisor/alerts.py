"""Long-wait and failure-rate alerts (``--alert-wait``, ``--alert-failure-rate``).

An object of its own, called from the loop (STYLE.md): every heartbeat interval it
measures the queues its rules cover — the oldest due job's wait (a few index probes per
queue) and the failure rate of the last five minutes (the rollup, models/rollup.py, never
the job table) — and moves each (kind, queue) between ok and firing with
``models.alert.change_alert``. That statement changes the row for exactly one supervisor
however many see the crossing, and only that one notifies: once when an episode begins,
once when it recovers. Notifications go through the notifier process (webhook, e-mail,
``--notify-hook``), so a slow receiver never holds the loop.
"""

from __future__ import annotations

import logging

import peewee

from jobtui.models.alert import (
    FAILURE_RATE,
    WAIT,
    change_alert,
    failure_rates,
    firing_alerts,
    queue_waits,
)
from jobtui.models.clock import iso_utc, utcnow
from jobtui.models.errors import StoreError

from .config import AlertRule

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime
    from typing import Any

log = logging.getLogger(__name__)


def describe(kind: str, value: float, threshold: float) -> str:
    """The measure against its threshold, for people: "oldest due job waited 42 s (alert
    over 30 s)", "40% of the runs in the last 5 minutes failed (alert over 10%)"."""
    if kind == WAIT:
        return f"oldest due job waited {value:.0f} s (alert over {threshold:g} s)"
    return f"{value:.0f}% of the runs in the last 5 minutes failed (alert over {threshold:g}%)"


class AlertWatch:
    """The alert rules of one supervisor and when to check them next."""

    def __init__(self, db: peewee.Database, rules: tuple[AlertRule, ...], interval_s: float,
                 supervisor: str, send: Callable[[dict[str, Any]], None]) -> None:  # fmt: skip
        self.db = db
        self.interval_s = interval_s
        self.supervisor = supervisor
        self.send = send  # hands a payload to the notifier
        self.rules = {kind: {r.queue: r.threshold for r in rules if r.kind == kind}
                      for kind in (WAIT, FAILURE_RATE)}  # fmt: skip
        self.next_mono = 0.0

    def __bool__(self) -> bool:
        return bool(self.rules[WAIT] or self.rules[FAILURE_RATE])

    def tick(self, now_mono: float) -> None:
        if not self or now_mono < self.next_mono:
            return
        self.next_mono = now_mono + self.interval_s
        try:
            self.check(utcnow())
        except (peewee.PeeweeException, StoreError) as exc:
            log.debug("alert check postponed: %s", exc)

    def threshold(self, kind: str, queue: str) -> float | None:
        rules = self.rules[kind]
        return rules.get(queue, rules.get("*"))

    def check(self, now: datetime) -> None:
        """Measure every queue a rule covers (and every queue in alert, so it can
        recover), and change the alerts whose state no longer matches."""
        firing = firing_alerts(self.db)
        if self.rules[WAIT]:
            named = [q for q in self.rules[WAIT] if q != "*"]
            in_alert = [q for q, kinds in firing.items() if WAIT in kinds]
            waits = queue_waits(self.db, None if "*" in self.rules[WAIT] else named, now)
            missing = [q for q in (*named, *in_alert) if q not in waits]
            waits.update(queue_waits(self.db, missing, now) if missing else {})
            for queue, waited in sorted(waits.items()):
                self.settle(WAIT, queue, waited, firing, now)
        if self.rules[FAILURE_RATE]:
            rates = failure_rates(self.db, now)
            queues = set(rates) | {q for q, kinds in firing.items() if FAILURE_RATE in kinds}
            queues |= {q for q in self.rules[FAILURE_RATE] if q != "*"}
            for queue in sorted(queues):
                self.settle(FAILURE_RATE, queue, rates.get(queue, (0.0, 0))[0], firing, now)

    def settle(self, kind: str, queue: str, value: float,
               firing: dict[str, dict[str, dict[str, Any]]], now: datetime) -> None:  # fmt: skip
        threshold = self.threshold(kind, queue)
        if threshold is None:
            return  # no rule of ours covers it (another supervisor's, or one removed)
        want = value > threshold
        if want == (kind in firing.get(queue, {})):
            return
        changed = change_alert(self.db, kind, queue, want, value, threshold, now)
        if changed is None:
            return  # another supervisor changed it first: it notifies
        episode, since = changed
        what = describe(kind, value, threshold)
        if want:
            log.warning("queue %s in alert: %s", queue, what, extra={"queue": queue})
        else:
            lasted = "" if since is None else f" after {(now - since).total_seconds():.0f} s"
            log.info("queue %s recovered%s: %s", queue, lasted, what, extra={"queue": queue})
        self.send({"event": "alert" if want else "recovered", "kind": kind, "queue": queue,
                   "value": round(value, 3), "threshold": threshold, "episode": episode,
                   "since": iso_utc(since), "at": iso_utc(now),
                   "supervisor": self.supervisor})  # fmt: skip
