"""How many jobs a busy worker may hold beyond the one it runs: the prefetch.

DESIGN.md recommends one, "so priorities stay honest": a job claimed later, of a higher
priority, never waits behind more than one job a worker already holds. For jobs far
shorter than a commit that caps the daemon: one turn (one transaction) can hand a worker
only two jobs, and the turn costs more than the jobs (bench/supervisor.py: 2 workers,
no-op jobs, 1 queued per worker ~6,000 jobs/s, 4 ~11,500, 16 ~16,000-17,700, 32
~17,500-19,300, alternated on one calm machine).

So by default the depth adapts. It stays 1 until a streak of ``STREAK`` jobs in a row each
ran under ``SHORT_JOB_S`` (as their workers measured them); then it is what fits in
``BUDGET_S`` of the longest recent one (a maximum that decays by ``DECAY`` a job, so one
slow moment does not pin it), at most ``DEEP_MAX``. A job held back by the deeper
queue thus waits at most about ``BUDGET_S`` longer than with a depth of 1. One job that
runs longer (or ends without a measurement: a crash, a timeout) ends the streak, and so
does any job seen running for ``STALLED_S``: the depth is 1 again at the next claim. What
a surprise costs: the jobs already queued behind a job that suddenly runs long wait for
it (up to ``DEEP_MAX`` of them, where a depth of 1 risks one).
"""

from __future__ import annotations

from collections.abc import Iterable

DEEP_MAX = 32
SHORT_JOB_S = 0.001
STREAK = 256
BUDGET_S = 0.002
STALLED_S = 0.02
DECAY = 0.99  # per job: the longest recent run time forgets an outlier in a few hundred


class PrefetchDepth:
    """``fixed``: always that depth (``--prefetch N``); None: adapt (see the module)."""

    def __init__(self, fixed: int | None = None) -> None:
        self.fixed = fixed
        self.streak = 0  # jobs in a row that ran under SHORT_JOB_S
        self.longest_s = 0.0  # the longest recent one (decaying)

    def job_ran(self, ran_s: float | None) -> None:
        """A job ended; ``ran_s`` is its run time as its worker measured it (None: not
        measured, e.g. its worker died)."""
        if ran_s is not None and ran_s < SHORT_JOB_S:
            self.streak += 1
            self.longest_s = max(ran_s, self.longest_s * DECAY)
        else:
            self.streak, self.longest_s = 0, 0.0

    def depth(self, running_for_s: Iterable[float] = ()) -> int:
        """The depth for the next claim; ``running_for_s``: how long each worker's current
        job has been running."""
        if self.fixed is not None:
            return self.fixed
        if self.streak < STREAK or any(s >= STALLED_S for s in running_for_s):
            return 1
        return max(1, min(DEEP_MAX, int(BUDGET_S / max(self.longest_s, BUDGET_S / DEEP_MAX))))
