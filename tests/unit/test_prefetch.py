"""The adaptive prefetch depth (supervisor/prefetch.py): 1 unless jobs are far shorter than
a commit, deeper then within a time budget, and 1 again at the first sign of a long job."""

from __future__ import annotations

from jobtui.supervisor.prefetch import (
    BUDGET_S,
    DEEP_MAX,
    STALLED_S,
    STREAK,
    PrefetchDepth,
)


def _streak(depth: PrefetchDepth, ran_s: float, count: int = STREAK) -> None:
    for _ in range(count):
        depth.job_ran(ran_s)


def test_one_until_a_streak_of_short_jobs_then_what_fits_the_budget():
    depth = PrefetchDepth()
    _streak(depth, 0.00002, STREAK - 1)
    assert depth.depth() == 1  # not yet: a streak proves the jobs are short
    depth.job_ran(0.00002)
    assert depth.depth() == DEEP_MAX  # 20 µs jobs: the cap
    slower = PrefetchDepth()
    _streak(slower, 0.0005)
    assert slower.depth() == int(BUDGET_S / 0.0005)  # 0.5 ms jobs: 32 fit the budget


def test_a_long_or_unmeasured_job_ends_the_streak():
    for ending in (0.25, None):  # ran long; or no measurement (its worker died)
        depth = PrefetchDepth()
        _streak(depth, 0.00002)
        depth.job_ran(ending)
        assert depth.depth() == 1
        _streak(depth, 0.00002)
        assert depth.depth() == DEEP_MAX


def test_a_rare_slower_job_keeps_the_deep_queue_but_slow_jobs_never_get_one():
    depth = PrefetchDepth()
    _streak(depth, 0.00002)
    for _ in range(3):  # a no-op preempted on a busy machine: a few ms, now and then
        depth.job_ran(0.003)
        _streak(depth, 0.00002, 50)
    assert depth.depth() == DEEP_MAX
    steady = PrefetchDepth()
    _streak(steady, 0.005, 2000)  # jobs of 5 ms: past the budget, always one
    assert steady.depth() == 1
    mixed = PrefetchDepth()
    for _ in range(200):  # one job in ten takes 5 ms: too many to queue deep behind
        _streak(mixed, 0.00002, 9)
        mixed.job_ran(0.005)
    assert mixed.depth() == 1


def test_a_job_running_long_now_drops_the_depth_at_once():
    depth = PrefetchDepth()
    _streak(depth, 0.00002)
    assert depth.depth([0.0001, 0.003]) == DEEP_MAX
    assert depth.depth([0.0001, STALLED_S]) == 1


def test_one_slow_moment_is_forgotten():
    depth = PrefetchDepth()
    _streak(depth, 0.00002)
    depth.job_ran(0.0009)  # short enough to keep the streak, but it narrows the depth
    assert depth.depth() == int(BUDGET_S / 0.0009)
    _streak(depth, 0.00002, 400)
    assert depth.depth() == DEEP_MAX


def test_a_fixed_depth_is_kept():
    depth = PrefetchDepth(fixed=0)
    _streak(depth, 0.00002)
    assert depth.depth([STALLED_S * 10]) == 0
