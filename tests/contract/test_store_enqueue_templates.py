"""The enqueue fast path (issue 13, item 11): a job of a (task, options) shape seen before
is copied from that shape's row template and built into a Job without reading it back.
Whatever the path, the job written and the Job returned are what ``build_row`` and a
fresh read would give, on SQLite and PostgreSQL."""

from __future__ import annotations

import enum
from datetime import timedelta

import pytest

import jobtui
from jobtui import InvalidJob
from jobtui.models import enqueueing
from jobtui.models.catalog import catalog_row, publish_tasks
from jobtui.models.dialect import dialect_for

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Colour(enum.IntEnum):
    RED = 1


class Name(str):
    pass


def _publish(db, **defaults: Any) -> None:
    with dialect_for(db).write_transaction(db):
        publish_tasks(db, "sup-a", "h1", [catalog_row("app.t", defaults, "app")])


SHAPES = [
    {},
    {"queue": "q", "priority": 5},
    {"max_retries": 0, "timeout": 2.5, "retry_delay": 1, "retry_jitter": False},
    {"retry_backoff": 3.0, "retry_max_delay": 60},
    {"delay": 30},
    {"title": "Receipt", "user_id": 7, "reference": ("order", 42)},
    {"tags": ["a"], "metadata": {"k": [1]}},
    {"priority": Colour.RED},
]
ARGUMENTS = [
    ([1, "two", 3.5, None, True], {"k": "v", "n": -0.0}),
    ([(1, 2), [3, {"x": 4}]], {}),
    ([Name("sub"), Colour.RED], {Name("key"): Name("value")}),
    ([], {"nested": {"a": [1, 2]}}),
]


@pytest.mark.parametrize("options", SHAPES)
def test_the_returned_job_is_the_row_written(db, options):
    for args, kwargs in ARGUMENTS * 2:  # the second round takes the templates the first made
        job = jobtui.enqueue("app.t", args=args, kwargs=kwargs, **options)
        read = jobtui.poll(job.id)
        assert job.to_dict() == read.to_dict()
        assert type(job.parameters["args"]) is list and job.parameters == read.parameters
        for value in [*job.args, *job.kwargs, *job.kwargs.values()]:
            assert type(value) in (int, float, str, bool, type(None), list, dict)


def test_a_shape_is_built_once_then_copied(db, monkeypatch):
    built = []
    real = enqueueing.build_row
    monkeypatch.setattr(enqueueing, "build_row", lambda *a: built.append(a[0]) or real(*a))
    monkeypatch.setattr(enqueueing, "_templates", {})
    ids = {jobtui.enqueue("app.t", args=[n], queue="q").id for n in range(5)}
    assert built == ["app.t"] and len(ids) == 5
    jobtui.enqueue("app.t", args=[9], queue="other")  # another shape: built, once
    jobtui.enqueue("app.t", args=[9], queue="q", delay=5)  # the moment's: always built
    jobtui.enqueue("app.t", args=[9], queue="q", delay=5)
    assert len(built) == 4
    jobs = jobtui.enqueue_many("app.t", [{"args": [n]} for n in range(3)], queue="q")
    assert len(built) == 4 and [j.args for j in jobs] == [[0], [1], [2]]


@pytest.mark.parametrize(
    ("good", "bad"),
    [({"priority": 1}, {"priority": True}), ({"max_retries": 1}, {"max_retries": 1.0})],
)
def test_an_option_equal_in_value_but_not_in_type_is_checked_again(db, good, bad):
    jobtui.enqueue("app.t", **good)
    jobtui.enqueue("app.t", **good)
    with pytest.raises(InvalidJob):  # True == 1, but not as a priority
        jobtui.enqueue("app.t", **bad)


def test_an_unknown_option_is_refused_after_its_shape_was_seen(db):
    jobtui.enqueue("app.t")
    with pytest.raises(InvalidJob, match="unknown enqueue option"):
        enqueueing.insert_jobs("app.t", [{"colour": None}])


def test_bad_arguments_are_refused_on_a_known_shape(db):
    jobtui.enqueue("app.t", args=[1])
    with pytest.raises(InvalidJob, match="not JSON-serialisable"):
        jobtui.enqueue("app.t", args=[object()])
    with pytest.raises(InvalidJob, match="args must be a list"):
        enqueueing.insert_jobs("app.t", [{"args": "x", "unset_options": 255}])
    with pytest.raises(InvalidJob, match="string keys"):
        enqueueing.insert_jobs("app.t", [{"kwargs": {1: 2}, "unset_options": 255}])
    assert jobtui.queue_stats()["default"]["counts"]["pending"] == 1


def test_the_parameters_are_the_jobs_own(db):
    given = [1, 2]
    kwargs = {"k": "v"}
    for _ in range(2):
        job = jobtui.enqueue("app.t", args=given, kwargs=kwargs)
        given.append(3)
        kwargs["k"] = "changed"
        assert job.parameters == {"args": [1, 2], "kwargs": {"k": "v"}}
        given[:], kwargs["k"] = [1, 2], "v"


def test_a_catalog_change_reaches_the_next_enqueue(db):
    _publish(db, queue="first", max_retries=0)
    assert [jobtui.enqueue("app.t").queue_name for _ in range(2)] == ["first", "first"]
    _publish(db, queue="second", max_retries=4)  # a supervisor's reload
    job = jobtui.enqueue("app.t")
    assert (job.queue_name, job.max_retries) == ("second", 4)
    assert jobtui.poll(job.id).queue_name == "second"


def test_dependencies_and_unique_keys_on_a_known_shape(db):
    first = jobtui.enqueue("app.t")
    waiting = jobtui.enqueue("app.t", depends_on=[first.id])
    assert waiting.status == "waiting" and jobtui.poll(waiting.id).status == "waiting"
    held = jobtui.enqueue("app.t", unique_key="one")
    assert jobtui.enqueue("app.t", unique_key="one").id == held.id


def test_a_scheduled_job_on_a_known_shape_keeps_its_time(db):
    now = jobtui.enqueue("app.t").created_at
    later = jobtui.enqueue("app.t", delay=60)
    assert later.run_at - now >= timedelta(seconds=59)
    assert jobtui.poll(later.id).run_at == later.run_at


def test_no_insert_column_has_a_default(db):
    """A single enqueue on SQLite names only the columns it fills (dialect._sqlite_single):
    one it leaves out must then be NULL, as the None it holds would write. A DEFAULT on an
    insert column would change the job written; this fails first."""
    if db.__class__.__name__.startswith("Sqlite"):
        defaults = {row[1]: row[4] for row in db.execute_sql("PRAGMA table_info(jobs)")}
    else:
        defaults = dict(db.execute_sql(
            "SELECT column_name, column_default FROM information_schema.columns "
            "WHERE table_name = 'jobs' AND table_schema = current_schema()"))  # fmt: skip
    assert set(enqueueing.INSERT_COLUMNS) <= set(defaults)
    assert {c: defaults[c] for c in enqueueing.INSERT_COLUMNS if defaults[c] is not None} == {}


def test_a_job_with_every_column_filled_is_written_whole(db):
    """The SQLite enqueue's statement follows the columns a job fills: a job that fills
    many more than the plain one (and one that fills few) round-trips exactly."""
    plain = jobtui.enqueue("app.t", args=[1])
    full = jobtui.enqueue("app.t", args=[2], kwargs={"k": 1}, queue="q", priority=3,
                          max_retries=1, timeout=4.0, retry_delay=2, retry_backoff=1.5,
                          retry_max_delay=9, retry_jitter=True, title="T", description="D",
                          user_id="u", reference=("r", 1), tags=["x"], metadata={"m": 1},
                          delay=60, deadline=timedelta(hours=1))  # fmt: skip
    for job in (plain, full, jobtui.enqueue("app.t", args=[3])):
        assert job.to_dict() == jobtui.poll(job.id).to_dict()
    assert full.title == "T" and full.user_id == "u" and full.tags == ["x"]
