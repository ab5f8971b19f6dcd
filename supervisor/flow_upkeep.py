"""Upkeep for fairness and priority aging (models/fairness.py, models/aging.py).

Objects of their own, called from the loop (STYLE.md): ``FairKeeper`` tidies the table of
fair keys every few seconds, ``PriorityAger`` raises the priority of jobs waiting past
their queue's aging period. Neither touches the claim: both run in their own short
transactions between turns, and their failures are retried on a later turn.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import peewee

from jobtui.models.aging import age_queue, aging_periods, any_queue_aging, check_interval_s
from jobtui.models.clock import utcnow
from jobtui.models.dialect import dialect_for
from jobtui.models.errors import StoreError
from jobtui.models.fairness import tidy_fair_keys

log = logging.getLogger(__name__)

FAIR_TIDY_INTERVAL_S = 5.0
#: How often a supervisor without a period of its own looks for queues that have one.
AGING_LOOK_INTERVAL_S = 10.0


class FairKeeper:
    """Forgets fair keys with nothing claimable and finds claimable ones without a row,
    every ``interval_s`` (two probes of empty indexes while no job has a fair key)."""

    def __init__(self, db: peewee.Database, now_mono: float,
                 interval_s: float = FAIR_TIDY_INTERVAL_S) -> None:  # fmt: skip
        self.db = db
        self.interval_s = interval_s
        self.next_mono = now_mono + interval_s / 5

    def tick(self, now_mono: float) -> None:
        if now_mono < self.next_mono:
            return
        self.next_mono = now_mono + self.interval_s
        try:
            with dialect_for(self.db).write_transaction(self.db):
                forgotten, added = tidy_fair_keys(self.db)
        except (peewee.PeeweeException, StoreError) as exc:
            log.debug("fair key upkeep postponed: %s", exc)
            return
        if added:
            log.info("found %d fair key(s) with claimable jobs and no turn: added", added)
        if forgotten:
            log.debug("forgot %d fair key(s) with nothing claimable", forgotten)


class PriorityAger:
    """Ages the queues this supervisor serves (``--priority-aging``) and every queue with
    a period of its own (``jobtui queue NAME --priority-aging``)."""

    def __init__(self, db: peewee.Database, now_mono: float, default_s: float | None,
                 served: Sequence[str] | None) -> None:  # fmt: skip
        self.db = db
        self.default_s = default_s or None
        self.served = None if served is None else tuple(served)
        self.next_mono = now_mono
        self.aged = 0  # jobs raised so far (for tests and logs)

    def tick(self, now_mono: float) -> None:
        if now_mono < self.next_mono:
            return
        self.next_mono = now_mono + AGING_LOOK_INTERVAL_S
        try:
            if self.default_s is None and not any_queue_aging(self.db):
                return  # off everywhere: one probe per interval
            periods = aging_periods(self.db, self.served, self.default_s)
            now = utcnow()
            for queue, period in sorted(periods.items()):
                interval = check_interval_s(period)
                self.next_mono = min(self.next_mono, now_mono + interval)
                with dialect_for(self.db).write_transaction(self.db):
                    raised = age_queue(self.db, queue, period, now, interval_s=interval * 0.9)
                if raised:
                    self.aged += raised
                    log.info("queue %s: %d job(s) waited past %g s and gained priority",
                             queue, raised, period)  # fmt: skip
        except (peewee.PeeweeException, StoreError) as exc:
            log.debug("priority aging postponed: %s", exc)
