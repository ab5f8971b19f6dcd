"""Issue 15, item 3: ``--log-format json`` (and JOBTUI_LOG_FORMAT) writes one JSON object
per log line with stable keys, whatever a job's error holds."""

from __future__ import annotations

import json

import pytest
from hostile import HOSTILE

import jobtui

pytestmark = pytest.mark.timeout(90)

TASKS = ("supervisor_tasks", "observability_tasks")


def _records(text: str) -> list[dict]:
    lines = text.splitlines()
    assert lines, "the supervisor wrote no log"
    for line in lines:
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in line), repr(line)
        assert not any(ord(c) in (0x2028, 0x2029, 0x202E) for c in line), repr(line)
    return [json.loads(line) for line in lines]  # every line is one JSON object


def test_json_log_lines_carry_the_job_keys_and_survive_hostile_text(sqlite_cluster):
    cluster = sqlite_cluster
    texts = list(HOSTILE.values())
    failing = [jobtui.enqueue("observability_tasks.say_and_fail", args=[t]).id for t in texts]
    done = jobtui.enqueue("observability_tasks.echo", args=[texts[0]]).id
    sup = cluster.start("--log-format", "json", imports=TASKS, workers=1)
    rows = cluster.wait_status([*failing, done])
    assert rows[done].status == "completed"
    cluster.stop()
    raw = sup.log_path.read_bytes()
    assert b"\x1b" not in raw and b"\x07" not in raw and b"\xc2\x9b" not in raw
    records = _records(raw.decode("utf-8"))
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys()
        assert record["time"].endswith("+00:00") and record["supervisor"] == sup.name
    by_job = {}
    for record in records:
        if "job_id" in record:
            by_job.setdefault(record["job_id"], []).append(record)
    # the task's own record, logged in the worker, goes to its job's log (jobtui logs),
    # not to the supervisor's, and keeps the text exact
    from jobtui.models.joblog import read_log

    for job_id, text in zip(failing, texts, strict=True):
        assert not [r for r in by_job[job_id] if r["logger"] == "observability_tasks"]
        said = [line for line in read_log(job_id).lines if f"task says {text}" in line.text]
        assert len(said) == 1 and said[0].attempt == 1 and said[0].stream == "log"
        final = [r for r in by_job[job_id] if "failed for good" in r["message"]]
        assert len(final) == 1 and final[0]["level"] == "ERROR"
        assert final[0]["message"].endswith(rows[job_id].error_message)  # exact once decoded
        assert (final[0]["task"], final[0]["queue"], final[0]["attempt"]) == (
            "observability_tasks.say_and_fail",
            "obs",
            1,
        )
    started = [r for r in by_job[done] if "started on" in r["message"]]
    completed = [r for r in by_job[done] if r["message"].endswith("completed") or
                 " completed after " in r["message"]]  # fmt: skip
    assert len(started) == 1 and started[0]["worker"] == f"{sup.name}/w1"
    assert len(completed) == 1 and completed[0]["level"] == "INFO"
    assert "jobtui.supervisor.loop" in {r["logger"] for r in records if "job_id" not in r}


def test_the_environment_chooses_json_and_a_bad_format_is_refused(sqlite_cluster):
    cluster = sqlite_cluster
    cluster.env["JOBTUI_LOG_FORMAT"] = "json"
    sup = cluster.start(imports=TASKS, workers=1)
    job = jobtui.enqueue("observability_tasks.echo", args=[1]).id
    cluster.wait_status([job])
    cluster.stop()
    records = _records(sup.log())
    assert any(r.get("job_id") == job for r in records)
    cluster.env["JOBTUI_LOG_FORMAT"] = "yaml"
    bad = cluster.start(imports=TASKS, workers=1, wait=False)
    bad.expect_exit = 2
    assert bad.wait_exit(15) == 2
    assert "JOBTUI_LOG_FORMAT='yaml'" in bad.log() and "json" in bad.log()
