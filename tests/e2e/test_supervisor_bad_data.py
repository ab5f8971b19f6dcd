"""Bad data fails alone: corrupt parameters, an unknown task, a task only another live
supervisor knows, results that cannot be stored. The worker and the supervisor keep
running throughout. Both engines."""

from __future__ import annotations

import signal

import pytest
from supervisor_harness import EXTRA_TASKS, TASKS, never, wait_until
from supervisor_history import attempts, job

import jobtui
from jobtui.models import Supervisor as SupervisorRow
from jobtui.models.dialect import dialect_for

pytestmark = pytest.mark.timeout(60)


def _corrupt_parameters(db, job_id: str, text: str) -> None:
    sql = dialect_for(db).sql("UPDATE jobs SET parameters = :bad WHERE id = :id")
    db.execute_sql(sql, {"bad": text, "id": job_id})


def test_bad_jobs_fail_alone_and_the_supervisor_keeps_running(cluster, db):
    # Another live supervisor knows supervisor_tasks_extra; quiet, it claims nothing yet.
    other = cluster.start(name="other", imports=(TASKS, EXTRA_TASKS))
    other.signal(signal.SIGTSTP)
    wait_until(lambda: SupervisorRow.get(SupervisorRow.name == "other").state == "quiet",
               5, "the other supervisor quiet")  # fmt: skip

    not_json = jobtui.enqueue(f"{TASKS}.add", args=[1, 2])
    not_object = jobtui.enqueue(f"{TASKS}.add", args=[3, 4])
    _corrupt_parameters(db, not_json.id, '{"args": [1, 2')
    _corrupt_parameters(db, not_object.id, '["args"]')
    unknown = jobtui.enqueue(f"{TASKS}.no_such_task")
    elsewhere = jobtui.enqueue(f"{EXTRA_TASKS}.elsewhere")
    unserialisable = jobtui.enqueue(f"{TASKS}.unserialisable")
    too_big = jobtui.enqueue(f"{TASKS}.huge", args=[2000])
    small = jobtui.enqueue(f"{TASKS}.huge", args=[10])
    good = [jobtui.enqueue(f"{TASKS}.add", args=[n, 1]) for n in range(4)]

    sup = cluster.start("--max-result-bytes", "1000", name="main")
    workers = sup.worker_pids()
    bad = [not_json, not_object, unknown, unserialisable, too_big]
    rows = cluster.wait_status([j.id for j in (*bad, small, *good)])
    for handle in bad:
        row = rows[handle.id]
        assert (row.status, row.retry_count) == ("failed", 0), (row.status, row.error_message)
    for handle in (not_json, not_object):
        assert rows[handle.id].error_message.startswith("corrupt parameters: ")
        assert rows[handle.id].error_type == "InvalidParameters"
        assert cluster.execlog.records(handle.id) == []  # the task never ran
    assert rows[unknown.id].error_message == f"unknown task {TASKS}.no_such_task"
    assert rows[unknown.id].error_type == "TaskNotFound"
    assert rows[unserialisable.id].error_message.startswith("result is not JSON-serialisable")
    assert "over --max-result-bytes 1000" in rows[too_big.id].error_message
    assert [a.outcome for a in attempts(too_big.id)] == ["failed"]
    assert rows[small.id].status == "completed"
    assert all(rows[j.id].status == "completed" for j in good)

    # The unknown task failed in the same sweep that left this one for its supervisor.
    assert job(elsewhere.id).status == "pending"
    never(lambda: job(elsewhere.id).status != "pending", 1.2, "the other's job touched")
    assert sup.alive() and sup.worker_pids() == workers  # nothing crashed, nothing replaced

    other.signal(signal.SIGCONT)
    result = jobtui.wait(elsewhere.id, timeout=10)
    assert result["value"] == "ran where it is known" and result["pid"] in other.worker_pids()
    after = jobtui.enqueue(f"{TASKS}.add", args=[20, 22])
    assert jobtui.wait(after.id, timeout=10)["value"] == 42
    cluster.check()


def test_a_process_a_task_forked_never_acts_as_the_worker(cluster):
    sup = cluster.start(workers=1)
    forked = jobtui.enqueue(f"{TASKS}.forks_and_returns_twice")
    after = [jobtui.enqueue(f"{TASKS}.quick", args=[n]) for n in range(5)]
    assert [jobtui.wait(j.id, timeout=15)["value"] for j in after] == list(range(5))
    result = jobtui.wait(forked.id, timeout=15)
    assert result["value"] in sup.worker_pids()  # the worker's own outcome, once
    (only,) = attempts(forked.id)
    assert only.outcome == "completed"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the SQLite wake-up socket
def test_a_database_path_too_long_for_a_wake_up_socket_falls_back_to_polling(db, tmp_path):
    from supervisor_harness import Cluster

    from jobtui.models import store

    deep = tmp_path / ("d" * 60) / ("e" * 60)  # the socket path would pass 107 bytes
    deep.mkdir(parents=True)
    url = f"sqlite:///{deep / 'jobs.db'}"
    store.reset()
    store.use_database(url)
    cluster = Cluster(url, tmp_path)
    try:
        sup = cluster.start("--poll-interval", "0.2", workers=1)
        job = jobtui.enqueue(f"{TASKS}.quick", args=[7])
        assert jobtui.wait(job.id, timeout=15)["value"] == 7
        assert "polling only" in sup.log()
    finally:
        cluster.close()
        store.reset()


def test_wake_up_sockets_of_dead_supervisors_are_removed_at_start(sqlite_cluster, tmp_path):
    import socket
    import subprocess

    folder = tmp_path / "jobs.db.wake"
    folder.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = folder / f"{dead.pid}.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(stale))  # the file stays when a killed supervisor's socket closes
    other = folder / "notes.txt"
    other.write_text("not ours")
    sup = sqlite_cluster.start(workers=1)
    assert (folder / f"{sup.pid}.sock").exists() and other.exists()
    assert not stale.exists()


def test_a_thread_started_by_a_task_module_is_named_in_a_warning(cluster):
    sup = cluster.start(workers=1, imports=(TASKS, "thread_at_import_tasks"))
    job = jobtui.enqueue("thread_at_import_tasks.hello")
    assert jobtui.wait(job.id, timeout=15) == "hello"
    assert "started thread(s) sdk-flusher in the supervisor" in sup.log()


def test_parameters_that_do_not_fit_the_signature_fail_at_once(cluster):
    """README's fault table: bad parameters are not retried. A TypeError raised inside
    the task is an ordinary error and is retried."""
    cluster.start(imports=(TASKS, "dispatch_tasks"))
    missing = jobtui.enqueue("dispatch_tasks.greet", kwargs={"subject": "hi"})
    unexpected = jobtui.enqueue("dispatch_tasks.greet", args=["ann"], kwargs={"cc": "bob"})
    too_many = jobtui.enqueue("dispatch_tasks.greet", args=["ann", "hi", "extra"])
    fits = jobtui.enqueue("dispatch_tasks.greet", kwargs={"to": "ann"})
    inside = jobtui.enqueue("dispatch_tasks.mistyped", args=[1])
    rows = cluster.wait_status([j.id for j in (missing, unexpected, too_many, fits, inside)])
    for handle in (missing, unexpected, too_many):
        row = rows[handle.id]
        assert (row.status, row.retry_count, row.error_type) == (
            "failed", 0, "InvalidParameters"), (row.status, row.error_message)  # fmt: skip
        assert row.error_message.startswith("invalid parameters for dispatch_tasks.greet: ")
        assert cluster.execlog.records(handle.id) == []  # the task never ran
        assert [a.outcome for a in attempts(handle.id)] == ["failed"]
    assert rows[missing.id].error_message.endswith("missing a required argument: 'to'")
    assert "'cc'" in rows[unexpected.id].error_message
    assert rows[fits.id].status == "completed"
    assert (rows[inside.id].status, rows[inside.id].retry_count) == ("failed", 1)
    assert rows[inside.id].error_type == "TypeError"
    assert len(attempts(inside.id)) == 2
    cluster.check()
