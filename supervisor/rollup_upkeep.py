"""Keeping the rollup table small (models/rollup.py): its minute rows older than two hours
are folded into hour rows, and rows older than eight days are pruned, once a minute.

An object of its own, called from the loop (STYLE.md: a feature's state in one place, not
in the ``Upkeep`` mixin). Folding takes its minute rows with DELETE … RETURNING, so any
number of supervisors may fold at once: a row is folded by whichever takes it first.
"""

from __future__ import annotations

import logging

import peewee

from jobtui.models.clock import utcnow
from jobtui.models.errors import StoreError
from jobtui.models.rollup import fold_rollup, prune_rollup

log = logging.getLogger(__name__)

ROLLUP_UPKEEP_INTERVAL_S = 60.0


class RollupKeeper:
    """Folds and prunes the rollup every ``interval_s`` (at once again while a fold found
    rows: after downtime there may be hours of minute rows to fold)."""

    def __init__(self, db: peewee.Database, now_mono: float,
                 interval_s: float = ROLLUP_UPKEEP_INTERVAL_S) -> None:  # fmt: skip
        self.db = db
        self.interval_s = interval_s
        self.next_mono = now_mono + interval_s / 10

    def tick(self, now_mono: float) -> None:
        if now_mono < self.next_mono:
            return
        self.next_mono = now_mono + self.interval_s
        try:
            now = utcnow()
            folded = fold_rollup(self.db, now)
            pruned = prune_rollup(self.db, now)
        except (peewee.PeeweeException, StoreError) as exc:
            log.debug("rollup upkeep postponed: %s", exc)
            return
        if folded:
            log.debug("folded %d rollup minute row(s) into hours", folded)
            self.next_mono = now_mono  # more may be left: again next turn
        if pruned:
            log.info("pruned %d rollup row(s) older than 8 days", pruned)
