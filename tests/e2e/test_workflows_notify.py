"""Notifications on final failure through a real supervisor: a webhook to a local HTTP
server, an e-mail to a local SMTP sink, a task's ``on_failure`` hook; a slow or absent
webhook server never holds up other jobs. And retention (``--retention-days``)."""

from __future__ import annotations

import email
import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
from workflow_helpers import FAST, smtp_sink, supervisors, wait_for, webhook_server

import jobtui
from jobtui.models import Job, JobAttempt

TASKS = "workflow_tasks"
PAYLOAD_KEYS = {"job_id", "task", "queue", "attempts", "error"}


@contextmanager
def notified_supervisors(db_url: str, tmp_path: Path) -> Iterator[SimpleNamespace]:
    """A webhook server, an SMTP sink and a group of supervisors whose ``on_failure`` hooks
    append to ``hook_file``; ``channels`` are the options that notify both."""
    hook_file = tmp_path / "hook.jsonl"
    with (
        webhook_server() as (url, bodies),
        smtp_sink() as (port, mails),
        supervisors(db_url, tmp_path, env={"WORKFLOW_HOOK_FILE": str(hook_file)}) as group,
    ):
        channels = ("--notify-webhook", url, "--notify-email", "ops@example.com",
                    "--smtp-url", f"smtp://127.0.0.1:{port}")  # fmt: skip
        yield SimpleNamespace(group=group, bodies=bodies, mails=mails, hook_file=hook_file,
                              channels=channels)  # fmt: skip


@pytest.mark.timeout(60)
def test_a_final_failure_is_posted_mailed_and_hooked(db, db_url, tmp_path):
    with notified_supervisors(db_url, tmp_path) as notified:
        bodies, mails, hook_file = notified.bodies, notified.mails, notified.hook_file
        notified.group.start("--import", TASKS, "--workers", "2", "--poll-interval", "0.2",
                             *FAST, *notified.channels, "--smtp-from", "jobs@example.com")  # fmt: skip
        refused = jobtui.enqueue(f"{TASKS}.refuse", args=["card declined"], queue="billing")
        hooked = jobtui.enqueue(f"{TASKS}.hooked")
        retried = jobtui.enqueue(f"{TASKS}.network", args=["conn"])  # fails after 3 runs
        fine = jobtui.enqueue(f"{TASKS}.item", args=[1])
        wait_for(lambda: len(bodies) >= 3 and len(mails) >= 3 and hook_file.exists(), 20,
                 what="webhook, e-mail and hook")  # fmt: skip
        assert jobtui.wait(fine.id, timeout=10) == 1
    by_job = {body["job_id"]: body for body in bodies}
    assert set(by_job) == {refused.id, hooked.id, retried.id}  # one POST per final failure
    assert [body["event"] for body in bodies] == ["failed"] * 3  # no --notify-retries here
    body = by_job[refused.id]
    assert PAYLOAD_KEYS <= set(body) and body["type"] == "application/json"
    assert (body["task"], body["queue"], body["attempts"], body["error"]) == (
        f"{TASKS}.refuse", "billing", 1, "card declined")  # fmt: skip
    assert body["text"] == (  # a Slack or Mattermost incoming webhook shows this line
        f"jobtui: {TASKS}.refuse failed on billing after 1 attempt: card declined (job {refused.id})"
    )
    assert (by_job[retried.id]["attempts"], by_job[retried.id]["error"]) == (3, "reset by peer")
    mail = next(m for m in mails if refused.id in m["data"])
    assert mail["rcpt"] == ["<ops@example.com>"] and mail["from"].startswith("<jobs@example.com>")
    assert f"Subject: [jobtui] job {TASKS}.refuse failed: card declined" in mail["data"]
    (hook_line,) = hook_file.read_text().splitlines()  # only the hooked task's hook
    payload = json.loads(hook_line)
    assert (payload["job_id"], payload["task"], payload["error"]) == (
        hooked.id, f"{TASKS}.hooked", "hook me")  # fmt: skip


@pytest.mark.timeout(60)
def test_notify_retries_posts_and_mails_each_failed_attempt(db, db_url, tmp_path):
    with notified_supervisors(db_url, tmp_path) as notified:
        bodies, mails, hook_file = notified.bodies, notified.mails, notified.hook_file
        notified.group.start("--import", TASKS, "--workers", "1", *FAST, *notified.channels,
                             "--notify-retries")  # fmt: skip
        job = jobtui.enqueue(f"{TASKS}.flaky_twice", queue="billing")  # fails twice, then ok
        assert jobtui.wait(job.id, timeout=20) == "ok"
        wait_for(lambda: len(bodies) >= 2 and len(mails) >= 2, 10, what="two retry notices")
    assert [(b["event"], b["job_id"], b["attempts"]) for b in bodies] == [
        ("retrying", job.id, 1), ("retrying", job.id, 2)]  # fmt: skip
    assert bodies[0]["text"] == (f"jobtui: {TASKS}.flaky_twice failed on billing (attempt 1), "
                                 f"will retry: attempt 1 fails (job {job.id})")  # fmt: skip
    subjects = sorted(" ".join(email.message_from_string(m["data"])["Subject"].split())
                      for m in mails)  # long headers come folded  # fmt: skip
    assert subjects == [
        f"[jobtui] job {TASKS}.flaky_twice failed (attempt {n}), will retry: attempt {n} fails"
        for n in (1, 2)]  # fmt: skip
    assert not hook_file.exists()  # on_failure hooks are for final failures only


@pytest.mark.timeout(60)
def test_a_run_lost_with_its_supervisor_is_notified_like_any_failure(db, db_url, tmp_path):
    hook_file = tmp_path / "hook.jsonl"
    env = {"WORKFLOW_HOOK_FILE": str(hook_file)}
    with webhook_server() as (url, bodies), supervisors(db_url, tmp_path, env=env) as group:
        args = ("--import", TASKS, "--workers", "1", *FAST, "--notify-webhook", url)
        (first,) = group.start(*args)
        job = jobtui.enqueue(f"{TASKS}.hooked_sleeper", args=[60], queue="slow")
        wait_for(lambda: Job.get_by_id(job.id).status == "running", 10, what="the run")
        os.killpg(first.pid, signal.SIGKILL)  # its worker dies with it (parent-death signal)
        first.wait(5)
        group.start(*args)  # the next supervisor on this host recovers the run at once
        wait_for(lambda: bodies and hook_file.exists(), 20, what="webhook and hook")
    assert Job.get_by_id(job.id).status == "failed"
    ((body,), hook) = bodies, json.loads(hook_file.read_text().splitlines()[0])
    assert (body["job_id"], body["task"], body["queue"]) == (
        job.id, f"{TASKS}.hooked_sleeper", "slow")  # fmt: skip
    assert (hook["job_id"], hook["task"]) == (job.id, f"{TASKS}.hooked_sleeper")
    assert "died" in body["error"]


@pytest.mark.timeout(60)
def test_a_recovered_run_put_back_for_a_retry_is_reported_with_notify_retries(db, db_url, tmp_path):
    hook_file = tmp_path / "hook.jsonl"
    env = {"WORKFLOW_HOOK_FILE": str(hook_file)}
    with webhook_server() as (url, bodies), supervisors(db_url, tmp_path, env=env) as group:
        args = ("--import", TASKS, "--workers", "1", *FAST, "--notify-webhook", url,
                "--notify-retries")  # fmt: skip
        (first,) = group.start(*args)
        job = jobtui.enqueue(f"{TASKS}.hooked_sleeper", args=[60], max_retries=1)
        wait_for(lambda: Job.get_by_id(job.id).status == "running", 10, what="the run")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(5)
        group.start(*args)  # recovers the run at once: one retry is left
        wait_for(lambda: bodies, 20, what="the retry notice")
        assert Job.get_by_id(job.id).status in ("retrying", "pending", "running")
    ((body,),) = (bodies,)
    assert (body["event"], body["job_id"], body["task"], body["attempts"]) == (
        "retrying", job.id, f"{TASKS}.hooked_sleeper", 1)  # fmt: skip
    assert "died" in body["error"] and "will retry" in body["text"]
    assert not hook_file.exists()  # not a final failure: no on_failure hook


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the engine plays no part
@pytest.mark.parametrize("server", ["slow", "down"])
def test_a_slow_or_absent_webhook_never_holds_up_other_jobs(db, db_url, tmp_path, server):
    # slow: the answer takes 3 s; down: refused, retried after 0.5 s and 2 s
    with webhook_server(delay=3.0) as (slow_url, bodies), supervisors(db_url, tmp_path) as group:
        url = slow_url if server == "slow" else f"http://127.0.0.1:{_closed_port()}/hook"
        group.start("--import", TASKS, "--workers", "2", "--poll-interval", "0.2", *FAST,
                    "--notify-webhook", url)  # fmt: skip
        failed = jobtui.enqueue(f"{TASKS}.refuse")
        wait_for(lambda: Job.get_by_id(failed.id).status == "failed", 10, what="the failure")
        began = time.monotonic()
        jobs = [jobtui.enqueue(f"{TASKS}.item", args=[n]) for n in range(20)]
        assert [jobtui.wait(j.id, timeout=10) for j in jobs] == list(range(20))
        took = time.monotonic() - began
        assert bodies == [], "the webhook was not busy: the test proves nothing"
        assert took < 2.0, f"20 trivial jobs took {took:.2f} s behind a {server} webhook"
        if server == "slow":  # it is delivered all the same
            wait_for(lambda: bodies, 10, what="the slow POST")
            assert bodies[0]["job_id"] == failed.id


@pytest.mark.timeout(60)
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_supervisor_prunes_by_retention_days(db, db_url, tmp_path):
    from jobtui.models.clock import sql_timestamp, utcnow
    from jobtui.models.dialect import dialect_for

    with supervisors(db_url, tmp_path) as group:
        group.start("--import", TASKS, "--workers", "2", "--poll-interval", "0.2", *FAST,
                    "--retention-days", "2")  # fmt: skip
        old = [jobtui.enqueue(f"{TASKS}.item", args=[n]) for n in range(3)]
        failed = jobtui.enqueue(f"{TASKS}.refuse")
        root = jobtui.enqueue(f"{TASKS}.item", args=[9])
        for job in [*old, root]:
            jobtui.wait(job.id, timeout=10)
        wait_for(lambda: Job.get_by_id(failed.id).status == "failed", what="failure")
        dependant = jobtui.enqueue(f"{TASKS}.item", args=[10], depends_on=[root.id],
                                   scheduled_for=utcnow().replace(year=2099))  # fmt: skip
        stamp = sql_timestamp(utcnow().replace(year=2000))
        db.execute_sql(dialect_for(db).sql("UPDATE jobs SET updated_at = :t WHERE status <> 'pending'"),
                       {"t": stamp})  # fmt: skip
        recent = jobtui.enqueue(f"{TASKS}.item", args=[11])
        jobtui.wait(recent.id, timeout=10)
        # the first prune runs a few seconds after start, then every minute
        wait_for(lambda: not Job.select().where(Job.id.in_([j.id for j in old])).exists(),
                 20, 0.1, what="old completed jobs pruned")  # fmt: skip
        # the rows go at the prune's commit, its log line right after: wait for the line too
        wait_for(lambda: "pruned 3 job(s) older than 2 days" in group.logs(), 10,
                 what="the prune's log line")  # fmt: skip
    assert JobAttempt.select().where(JobAttempt.job.in_([j.id for j in old])).count() == 0
    kept = {j.id for j in Job.select()}
    assert {failed.id, root.id, dependant.id, recent.id} <= kept  # failed, depended on, new
