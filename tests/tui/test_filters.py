"""The filter grammar: a pure parser, tested without a database or Textual."""

from __future__ import annotations

import pytest

from jobtui.tui.filters import (
    STATES,
    Comparison,
    FilterError,
    JobFilter,
    escape_like,
    format_duration,
    glob_to_like,
    parse_duration,
    parse_filter,
)


def test_the_example_from_the_spec():
    f = parse_filter("state:failed queue:email task:send_* worker:w-3 pri:>5 age:>10m "
                     "!queue:low smtp")  # fmt: skip
    assert f.states == ("failed",)
    assert f.queues == ("email",) and f.not_queues == ("low",)
    assert f.tasks == ("send_*",)
    assert f.workers == ("w-3",)
    assert f.priority == (Comparison(">", 5),)
    assert f.age_s == (Comparison(">", 600),)
    assert f.text == ("smtp",)


def test_empty_filter():
    for text in ("", "   ", None):
        f = parse_filter(text)
        assert f.is_empty and f.effective_states() == STATES and f.describe() == ""


@pytest.mark.parametrize(("value", "state"), [
    ("failed", "failed"), ("FAILED", "failed"), ("fail", "failed"), ("dead", "failed"),
    ("done", "completed"), ("canceled", "cancelled"), ("queued", "pending"), ("run", "running"),
    ("wait", "waiting"), ("ret", "retrying"),
])  # fmt: skip
def test_states_by_name_alias_or_unique_prefix(value, state):
    assert parse_filter(f"state:{value}").states == (state,)


@pytest.mark.parametrize("value", ["bogus", "c"])  # "c": completed or cancelled
def test_unknown_or_ambiguous_states_are_refused(value):
    with pytest.raises(FilterError, match="unknown state"):
        parse_filter(f"state:{value}")


def test_lists_repeats_and_negation_of_states():
    f = parse_filter("status:failed,cancelled state:failed !state:cancelled")
    assert f.states == ("failed", "cancelled") and f.not_states == ("cancelled",)
    assert f.effective_states() == ("failed",)
    assert parse_filter("!state:completed").effective_states() == tuple(
        s for s in STATES if s != "completed"
    )


def test_key_aliases():
    f = parse_filter("q:emails t:send w:w1 p:<0 s:run")
    assert (f.queues, f.tasks, f.workers, f.priority, f.states) == (
        ("emails",),
        ("send",),
        ("w1",),
        (Comparison("<", 0),),
        ("running",),
    )


@pytest.mark.parametrize(("text", "expected"), [
    ("pri:5", (Comparison("=", 5),)), ("pri:=5", (Comparison("=", 5),)),
    ("pri:>=10", (Comparison(">=", 10),)), ("pri:<=-3", (Comparison("<=", -3),)),
    ("pri:1..5", (Comparison(">=", 1), Comparison("<=", 5))),
    ("pri:>=high", (Comparison(">=", 10),)), ("pri:CRITICAL", (Comparison("=", 20),)),
    ("pri:low..normal", (Comparison(">=", -10), Comparison("<=", 0))),
])  # fmt: skip
def test_priority_comparisons(text, expected):
    assert parse_filter(text).priority == expected


def test_user_tag_and_reference_keys():
    f = parse_filter("user:42 tag:urgent,eu ref:order:1001 !tag:test !ref:invoice")
    assert (f.users, f.tags, f.not_tags, f.refs, f.not_refs) == (
        ("42",), ("urgent", "eu"), ("test",), ("order:1001",), ("invoice",))  # fmt: skip
    assert parse_filter(f.describe()) == f
    with pytest.raises(FilterError, match="use state, queue, task, worker, user, tag, ref"):
        parse_filter("colour:red")


def test_priority_must_be_an_integer_or_a_level_name():
    with pytest.raises(FilterError, match="an integer or one of low, normal, high, critical"):
        parse_filter("pri:>urgent")


@pytest.mark.parametrize(("text", "seconds"), [
    ("10m", 600), ("1h30m", 5400), ("2d", 172800), ("45", 45), ("1w", 604800), ("1.5h", 5400),
])  # fmt: skip
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_bad_durations():
    for text in ("", "ten minutes", "10x"):
        with pytest.raises(FilterError):
            parse_duration(text)


def test_age_without_an_operator_means_newer_than():
    assert parse_filter("age:10m").age_s == (Comparison("<", 600),)
    assert parse_filter("age:>1h").age_s == (Comparison(">", 3600),)
    with pytest.raises(FilterError):
        parse_filter("age:=10m")


def test_negating_a_comparison_is_refused_with_advice():
    with pytest.raises(FilterError, match="flipping"):
        parse_filter("!pri:>5")


def test_quotes_keep_spaces_and_colons():
    f = parse_filter('queue:"big jobs" "SMTP: refused" !"dry run"')
    assert f.queues == ("big jobs",)
    assert f.text == ("SMTP: refused",) and f.not_text == ("dry run",)


def test_unknown_key_is_an_error_but_other_colons_are_text():
    with pytest.raises(FilterError, match="unknown key 'colour'"):
        parse_filter("colour:red")
    assert parse_filter("10:30").text == ("10:30",)


def test_missing_value_and_unbalanced_quotes():
    with pytest.raises(FilterError, match="needs a value"):
        parse_filter("queue:")
    with pytest.raises(FilterError, match="quotes"):
        parse_filter('queue:"emails')


def test_backslashes_are_literal():
    assert parse_filter(r'"C:\temp\x.csv"').text == (r"C:\temp\x.csv",)


def test_describe_round_trips():
    text = 'state:failed,cancelled queue:"big jobs" !queue:low task:send_* pri:>5 age:>1h30m x'
    f = parse_filter(text)
    again = parse_filter(f.describe())
    assert again == f
    assert f.describe() == ('state:failed,cancelled queue:"big jobs" !queue:low task:send_* '
                            "pri:>5 age:>1h30m x")  # fmt: skip


def test_with_terms_narrows():
    f = parse_filter("state:failed").with_terms("queue:emails")
    assert f.states == ("failed",) and f.queues == ("emails",)
    assert isinstance(f, JobFilter)


def test_globs_become_like_patterns_with_escapes():
    assert glob_to_like("send_*") == "send\\_%"
    assert glob_to_like("a?c%") == "a_c\\%"
    assert glob_to_like("plain") is None
    assert escape_like("100%_a\\b") == "100\\%\\_a\\\\b"


def test_format_duration():
    assert [format_duration(s) for s in (0, 45, 90, 3600, 5400, 90061)] == [
        "0s",
        "45s",
        "1m30s",
        "1h",
        "1h30m",
        "1d1h1m1s",
    ]


def test_comparison_matches():
    assert Comparison(">", 5).matches(6) and not Comparison(">", 5).matches(5)
    assert Comparison("<=", 5).matches(5) and Comparison("=", 5).matches(5)
