"""The rollup's histogram math (models/rollup.py): buckets √2 apart from 1 ms, and
percentiles read back from bucket counts within a bucket's width of the exact ones."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from jobtui.models.rollup import (
    BUCKET_BOUNDS_S,
    HIST_BUCKETS,
    Tally,
    bucket_of,
    histogram_percentile,
)


def test_buckets_are_sqrt2_apart_and_bounds_are_inclusive():
    assert bucket_of(0) == 0 and bucket_of(0.001) == 0
    assert bucket_of(0.0011) == 1 and bucket_of(0.002) == 2 and bucket_of(0.00201) == 3
    assert bucket_of(10.0) == 27  # (8.192 s, 11.585 s]
    assert BUCKET_BOUNDS_S[26] < 10.0 <= BUCKET_BOUNDS_S[27]
    assert bucket_of(10**9) == HIST_BUCKETS - 1  # everything longer: the last bucket
    for value in (0.0015, 0.7, 3.3, 95.0, 4000.0):
        index = bucket_of(value)
        assert BUCKET_BOUNDS_S[index - 1] < value <= BUCKET_BOUNDS_S[index]


def _hist(values):
    counts = [0] * HIST_BUCKETS
    for value in values:
        counts[bucket_of(value)] += 1
    return counts


def exact(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("fraction", [0.5, 0.95, 0.99])
def test_percentiles_are_within_a_bucket_of_the_exact_ones(seed, fraction):
    rng = random.Random(seed)
    values = [rng.lognormvariate(0, 1.5) for _ in range(20_000)]
    estimate = histogram_percentile(_hist(values), fraction)
    assert exact(values, fraction) / 2**0.5 <= estimate <= exact(values, fraction) * 2**0.5
    assert estimate == pytest.approx(exact(values, fraction), rel=0.12)


def test_edge_cases():
    assert histogram_percentile([0] * HIST_BUCKETS, 0.5) is None
    one = _hist([10.0] * 7)
    assert histogram_percentile(one, 0.95, total_s=70.0) == pytest.approx(10.0)  # the mean
    assert BUCKET_BOUNDS_S[26] < histogram_percentile(one, 0.95) <= BUCKET_BOUNDS_S[27]
    assert histogram_percentile(_hist([0.0] * 3 + [1.0]), 0.5) <= 0.001
    assert histogram_percentile(_hist([10**6]), 0.5) == BUCKET_BOUNDS_S[-1]  # past the range


def test_a_tally_aggregates_a_turn_by_queue_and_task():
    now = datetime(2026, 12, 4, 12, 30, 59, 999)
    tally = Tally(now)
    started, due = now - timedelta(seconds=2), now - timedelta(seconds=5)
    tally.add("q", "a", "completed", started, due)
    tally.add("q", "a", "retried", started, due)
    tally.add("q", "b", "cancelled")  # never ran: counted, no histogram entry
    rows = tally.rows()
    assert [row[:4] for row in rows] == [("2026-12-04 12:30:00.000000", 60, "q", "a"),
                                         ("2026-12-04 12:30:00.000000", 60, "q", "b")]  # fmt: skip
    a = rows[0][4:]
    assert a[:4] == (1, 0, 1, 0) and a[4] == pytest.approx(6.0) and a[5] == pytest.approx(4.0)
    assert sum(a[6 : 6 + HIST_BUCKETS]) == 2 and sum(a[6 + HIST_BUCKETS :]) == 2
    assert rows[1][4:8] == (0, 0, 0, 1) and sum(rows[1][8:]) == 0
