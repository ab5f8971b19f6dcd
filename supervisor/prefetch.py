"""How many jobs a busy worker may hold beyond the one it runs: the prefetch.

DESIGN.md recommends one, "so priorities stay honest": a job claimed later, of a higher
priority, never waits behind more than one job a worker already holds. For jobs far
shorter than a commit that caps the daemon: one turn (one transaction) can hand a worker
only two jobs, and the turn costs more than the jobs (bench/supervisor.py: 2 workers,
no-op jobs, 1 queued per worker ~6,000 jobs/s, 4 ~11,500, 16 ~16,000-17,700, 32
~17,500-19,300, alternated on one calm machine).

The depth is bounded twice, by ``DEEP_MAX`` jobs and by ``BUDGET_S`` of their run time;
raising either alone gained ~1.04x (a no-op job measures ~30-60 µs, so 2 ms held ~32),
raising both from 32 jobs and 2 ms to 64 and 4 ms turned a 20,000-job drain from ~13,300
into ~16,500 jobs/s (bench/supervisor.py, 5 alternating rounds: 1.20x huey's to 1.47x):
twice the jobs per turn, so the turn's fixed cost (BEGIN, COMMIT, the claim's and the
rollup's statements, the loop's Python) is spread over twice as many jobs. On a slower
machine 256 jobs and 16 ms gave ~1.18x more again (three runs of 4-5 alternating
rounds: ~8,600 against ~10,100 jobs/s), where 256 within 4 ms or 128 within 16 ms gave
nothing and 512 within 32 ms no more: a worker holds enough to run through the
supervisor's longest turns instead of waiting for the next claim.

So by default the depth adapts. It stays 1 until a streak of ``STREAK`` jobs has ended
with fewer than ``SLOW_SHARE`` of them at or over ``SHORT_JOB_S`` (as their workers
measured them: a no-op job preempted for a few milliseconds on a busy machine is not a
long job, and resetting on each cost ~7 % on loaded runs); then the depth is what fits in
``BUDGET_S`` of the longest recent short one (a maximum that decays by ``DECAY`` a job,
so one slow moment does not pin it), at most ``DEEP_MAX``. A job held back by the deeper
queue thus waits about ``BUDGET_S`` longer than with a depth of 1, plus the rare slower
job among them. A job that runs ``STALLED_S`` or more, or ends without a measurement (a
crash, a timeout), ends the streak, as does a share of slower jobs above ``SLOW_SHARE``;
a job seen running for ``STALLED_S`` makes the next claim's depth 1 at once. What a
surprise costs: the jobs already queued behind a job that suddenly runs long wait for it
(up to ``DEEP_MAX`` of them, where a depth of 1 risks one).
"""

from __future__ import annotations

from collections.abc import Iterable

DEEP_MAX = 256
SHORT_JOB_S = 0.001
STREAK = 256
BUDGET_S = 0.016
STALLED_S = 0.02
DECAY = 0.99  # per job: the longest recent run time forgets an outlier in a few hundred
SLOW_SHARE = 0.02  # of recent jobs may take SHORT_JOB_S to STALLED_S, the deep queue kept


class PrefetchDepth:
    """``fixed``: always that depth (``--prefetch N``); None: adapt (see the module)."""

    def __init__(self, fixed: int | None = None) -> None:
        self.fixed = fixed
        self.streak = 0  # jobs ended since the last long, unmeasured or too-slow-share one
        self.longest_s = 0.0  # the longest recent short one (decaying)
        self.slow_share = 0.0  # recent share of jobs that took SHORT_JOB_S to STALLED_S

    def job_ran(self, ran_s: float | None) -> None:
        """A job ended; ``ran_s`` is its run time as its worker measured it (None: not
        measured, e.g. its worker died)."""
        if ran_s is None or ran_s >= STALLED_S:
            self.streak, self.longest_s, self.slow_share = 0, 0.0, 0.0
            return
        slow = ran_s >= SHORT_JOB_S
        self.slow_share += ((1.0 if slow else 0.0) - self.slow_share) / STREAK
        if slow and self.slow_share > SLOW_SHARE:
            self.streak, self.longest_s = 0, 0.0
            return
        self.streak += 1
        if not slow:
            self.longest_s = max(ran_s, self.longest_s * DECAY)

    def depth(self, running_for_s: Iterable[float] = ()) -> int:
        """The depth for the next claim; ``running_for_s``: how long each worker's current
        job has been running."""
        if self.fixed is not None:
            return self.fixed
        if self.streak < STREAK or any(s >= STALLED_S for s in running_for_s):
            return 1
        return max(1, min(DEEP_MAX, int(BUDGET_S / max(self.longest_s, BUDGET_S / DEEP_MAX))))
