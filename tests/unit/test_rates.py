"""The rate arithmetic (models/rates.py): parsing, and the window's exact bound."""

from __future__ import annotations

import random

import pytest

from jobtui.models.key_limits import KeyRules
from jobtui.models.rates import LOG_MAX, Window, format_rate, parse_rate


@pytest.mark.parametrize(("text", "parsed", "shown"), [
    ("10/s", (10, 1.0), "10/s"), ("100/m", (100, 60.0), "100/m"), (" 5 / h ", (5, 3600.0), "5/h"),
    ("3/10s", (3, 10.0), "3/10s"), ("1/d", (1, 86400.0), "1/d"), ("7/2m", (7, 120.0), "7/2m"),
])  # fmt: skip
def test_rates_parse_and_print_back(text, parsed, shown):
    assert parse_rate(text) == parsed
    assert format_rate(*parsed) == shown


@pytest.mark.parametrize("bad", ["", "10", "0/s", "x/s", "10/y", "10/0s", "-3/s", None])
def test_bad_rates_are_refused(bad):
    with pytest.raises(ValueError):
        parse_rate(bad)


def _run(count: int, period: float, next_claim) -> list[float]:
    """Claims at the moments ``next_claim(window, now, rng)`` picks, each taking what it
    may (up to a random demand), the window kept through its stored form."""
    rng = random.Random(count)
    window = Window.load(count, period, None)
    now, starts = 1_000_000.0, []
    end = now + period * 5
    while now < end:
        take = min(window.allowance(now), rng.randint(1, 50))
        if take:
            window.spend(now, take)
            starts += [now] * take
        window = Window.load(count, period, window.dumps())
        assert len(window.log) <= LOG_MAX
        now = next_claim(window, now, rng)
    return sorted(starts)


def _most_in_a_period(starts: list[float], period: float) -> int:
    best, j = 0, 0
    for i, t in enumerate(starts):
        while starts[j] <= t - period:
            j += 1
        best = max(best, i - j + 1)
    return best


RATES = [(10, 1.0), (3, 1.0), (100, 60.0), (1000, 1.0)]


@pytest.mark.parametrize(("count", "period"), RATES)
def test_no_window_of_one_period_ever_holds_more_than_the_rate(count, period):
    """Claims at random moments, late and early, greedy: never more than ``count`` starts
    in any half-open window of one period."""

    def anytime(window, now, rng):
        return now + rng.random() * period / count * rng.choice([0.1, 0.5, 1.0, 3.0])

    assert _most_in_a_period(_run(count, period, anytime), period) <= count


@pytest.mark.parametrize(("count", "period"), RATES)
def test_claims_on_the_rates_timer_use_it(count, period):
    """Claims when the rate frees (a supervisor's timer), up to 20 ms late: the rate is
    used (at least 95 %) and never passed."""

    def on_timer(window, now, rng):
        return max(now + 1e-4, window.free_at(now)) + rng.random() * 0.02

    starts = _run(count, period, on_timer)
    assert _most_in_a_period(starts, period) <= count
    assert len(starts) >= count * 5 * 0.95


def test_a_held_rate_says_when_it_frees():
    window = Window.load(2, 1.0, None)
    assert window.allowance(100.0) == 1
    window.spend(100.0, 1)
    assert window.allowance(100.2) == 0 and window.free_at(100.2) == pytest.approx(100.5)
    assert window.allowance(100.5) == 1


def test_key_rules_take_the_tightest_matching_limit():
    rules = KeyRules([("key:customer:*", 3), ("key:customer:vip", 5), ("task:report", 1)])
    assert rules.limit("customer:42", "t") == 3
    assert rules.limit("customer:vip", "t") == 3  # the pattern matches it too: tightest
    assert rules.limit("customer:42", "report") == 1
    assert rules.limit("vendor:1", "t") is None and rules.limit("vendor:1", "report") == 1
    queued = KeyRules([("queue:emails", 2), ("key:vip", 5)])
    assert queued.limit("vip", "t", "emails") == 2 and queued.limit("vip", "t", "other") == 5
    assert queued.limit("x", "t", "other") is None


@pytest.mark.parametrize("state", ["{", "[]", '{"log": [["x", 1]]}', '{"log": 5}', '{"next": "z"}'])
def test_a_damaged_state_costs_one_window_never_the_claim(state):
    window = Window.load(3, 1.0, state)
    assert window.allowance(100.0) == 1 and window.log == []
