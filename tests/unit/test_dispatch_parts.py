"""Pure parts of issue 13's dispatch items: the ready buffer's order (supervisor/ready.py)
and the parameter check before a task is called (jobtui/execution.py)."""

from __future__ import annotations

from jobtui.execution import execute_job, parameters_problem
from jobtui.models.claims import ClaimedJob
from jobtui.registry import Task, TaskRegistry
from jobtui.supervisor.pool import RunningJob
from jobtui.supervisor.ready import ReadyJobs


def _job(job_id: str, priority: int = 0, run_at: str = "2026-01-01 00:00:00") -> RunningJob:
    claimed = ClaimedJob(id=job_id, job_type="t", parameters_json="{}", attempt=1,
                         lease_token="tok", retry_count=0, max_retries=3, timeout=None,
                         queue_name="default", priority=priority, retry_delay=None,
                         retry_backoff=None, retry_max_delay=None, retry_jitter=None,
                         started_at=None, run_at=run_at)  # fmt: skip
    return RunningJob(claimed=claimed)


def test_ready_jobs_come_out_in_claim_order_across_claims_and_groups():
    ready = ReadyJobs()
    ready.add(None, _job("b", run_at="2026-01-01 00:00:02"))
    # claimed later, due earlier (a fair claim's round-robin gives a tenant's newer job
    # before another tenant's older backlog): claim order holds, or it could wait forever
    ready.add(None, _job("a", run_at="2026-01-01 00:00:01"))
    ready.add(("emails",), _job("e"))
    ready.add(None, _job("urgent", priority=5, run_at="2026-01-01 00:00:09"))  # a later claim
    assert len(ready) == 4 and ready.count(None) == 3 and ready.count(("emails",)) == 1
    assert [ready.take(None).id for _ in range(3)] == ["urgent", "b", "a"]
    assert ready.take(None) is None and ready.take(("other",)) is None
    assert len(ready) == 1 and [j.id for j in ready] == ["e"]


def test_a_job_taken_back_keeps_its_place_in_the_ready_buffer():
    ready = ReadyJobs()
    first, second = _job("first"), _job("second")
    ready.add(None, first)
    ready.add(None, second)
    assert ready.take(None) is first  # handed to a worker, then taken back unstarted
    ready.add(None, _job("third"))
    ready.add(None, first)
    assert [ready.take(None).id for _ in range(3)] == ["first", "second", "third"]


def test_ready_jobs_give_up_one_job_or_all_of_them():
    ready = ReadyJobs()
    for name in ("a", "b", "c"):
        ready.add(None, _job(name, run_at=f"2026-01-01 00:00:0{ord(name) - 96}"))
    assert ready.remove("b").id == "b" and ready.remove("b") is None
    assert [ready.take(None).id for _ in range(1)] == ["a"]
    ready.add(None, _job("d"))
    assert sorted(j.id for j in ready.take_all()) == ["c", "d"]
    assert len(ready) == 0 and not ready and ready.show_due == float("inf")


def _greet(to: str, subject: str = "hello", *, cc: str | None = None) -> str:
    return f"{subject}, {to}"


def test_parameters_are_checked_against_the_signature():
    assert parameters_problem(_greet, ["ann"], {}) is None
    assert parameters_problem(_greet, [], {"to": "ann", "cc": "bob"}) is None
    assert parameters_problem(_greet, [], {}) == "missing a required argument: 'to'"
    assert "unexpected keyword argument 'bcc'" in parameters_problem(_greet, ["a"], {"bcc": 1})
    assert parameters_problem(_greet, ["a", "b", "c"], {}) == "too many positional arguments"
    assert parameters_problem(print, [1, 2], {"sep": ""}) is None  # no signature: unchecked


def test_a_job_with_bad_parameters_fails_for_good_and_a_type_error_inside_is_retried():
    def inside(value: int) -> int:
        return value + "1"  # type: ignore[operator]

    registry = TaskRegistry()
    registry.register(Task(func=_greet, name="greet"))
    registry.register(Task(func=inside, name="inside"))
    run = {"report_progress": lambda pct, msg: None, "check_cancel": lambda: False}
    bad = execute_job(registry, ("j1", "greet", '{"args": [], "kwargs": {}}', 1), **run)
    assert bad[:5] == ("error", "j1", 1, "InvalidParameters",
                       "invalid parameters for greet: missing a required argument: 'to'")  # fmt: skip
    assert bad[6] is True  # permanent
    raised = execute_job(registry, ("j2", "inside", '{"args": [1]}', 1), **run)
    assert raised[3] == "TypeError" and raised[6] is False


def test_start_gates_let_a_job_either_begin_or_be_taken_back_never_both():
    import fcntl
    import os

    from jobtui.supervisor.gates import SLOT, StartGates

    gates = StartGates(4)
    try:
        gates.reset(1)
        assert gates.begin(1, 1)  # the worker begins job 1
        assert gates.take_back(1, 3) == 1  # jobs 2 and 3 are the supervisor's again
        assert not gates.begin(1, 2) and not gates.begin(1, 3)  # skipped where they wait
        assert gates.begin(1, 4)  # handed after the take-back: it runs
        assert gates.take_back(1, 4) == 4  # nothing left to take
        held_r, held_w = os.pipe()  # child -> test: the lock is held
        done_r, done_w = os.pipe()  # test -> child: let go
        pid = os.fork()
        if pid == 0:  # another process (the worker) holds slot 1's lock
            fcntl.lockf(gates.fd, fcntl.LOCK_EX, SLOT.size, SLOT.size)
            os.write(held_w, b"x")
            os.read(done_r, 1)
            os._exit(0)
        os.read(held_r, 1)
        try:
            assert gates.take_back(1, 9) is None  # never waits on the worker
            assert gates.take_back(2, 9) == 0  # other slots are not held
        finally:
            os.write(done_w, b"x")
            os.waitpid(pid, 0)
            for fd in (held_r, held_w, done_r, done_w):
                os.close(fd)
    finally:
        gates.close()
