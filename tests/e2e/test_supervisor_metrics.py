"""``--metrics-port``: a real supervisor's Prometheus endpoint, scraped with
prometheus_client's own parser after a known workload; its counters equal the job table,
and ``jobtui metrics`` (the database alone) prints the same counters."""

from __future__ import annotations

import io
import socket
import urllib.error
import urllib.request
from collections import Counter
from contextlib import redirect_stdout

import pytest
from supervisor_harness import wait_until

import jobtui
from jobtui.cli import main as cli_main
from jobtui.models import Job, JobAttempt
from jobtui.models.visible import visible_line

parser = pytest.importorskip("prometheus_client.parser", reason="jobtui[metrics] not installed")

TASKS = "metrics_tasks"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode("utf-8")


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value, parsed by prometheus_client."""
    out = {}
    for family in parser.text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def by_task(figures: dict, name: str, drop: tuple[str, ...] = ("supervisor",)) -> Counter:
    """The values of ``name`` by (queue, task), other labels summed away."""
    out: Counter = Counter()
    for (sample, labels), value in figures.items():
        if sample == name:
            labels = dict(labels)
            out[(labels["queue"], labels["task"])] += value
    return +out


def table_counts() -> dict[str, Counter]:
    """What the job and attempt tables say, by (queue, task)."""
    out: dict[str, Counter] = {k: Counter() for k in (
        "started", "completed", "failed", "retried", "cancelled", "timed_out", "crashed")}  # fmt: skip
    for job in Job.select():
        key = (job.queue_name, job.job_type)
        if job.status in ("completed", "failed", "cancelled"):
            out[job.status][key] += 1
    for attempt in JobAttempt.select(JobAttempt, Job).join(Job):
        key = (attempt.job.queue_name, attempt.job.job_type)
        if attempt.outcome == "interrupted":
            continue
        out["started"][key] += 1
        if attempt.outcome in ("timed_out", "crashed"):
            out[attempt.outcome][key] += 1
    retried: Counter = Counter()  # every run but a job's last one was retried
    for attempt in JobAttempt.select(JobAttempt, Job).join(Job):
        later = JobAttempt.select().where(JobAttempt.job == attempt.job,
                                          JobAttempt.attempt > attempt.attempt).exists()  # fmt: skip
        if later and attempt.outcome != "interrupted":
            retried[(attempt.job.queue_name, attempt.job.job_type)] += 1
    out["retried"] = retried
    return {k: +v for k, v in out.items()}


def workload() -> list[str]:
    ids = [jobtui.enqueue(f"{TASKS}.ok", args=[n]).id for n in range(6)]
    ids += [jobtui.enqueue(f"{TASKS}.ok", args=[n], queue="second").id for n in range(3)]
    ids.append(jobtui.enqueue(f"{TASKS}.fails").id)
    ids.append(jobtui.enqueue(f"{TASKS}.crash_once", queue="second").id)
    ids.append(jobtui.enqueue(f"{TASKS}.too_slow").id)
    ids.append(jobtui.enqueue(f"{TASKS}.retries_late").id)
    return ids


def test_scrape_counters_equal_the_job_table(cluster):
    port = free_port()
    cluster.env["JOBTUI_METRICS_PORT"] = str(port)  # the environment's form of --metrics-port
    cluster.start("--metrics-buckets", "0.01,0.1,1,10",
                  "--queue", "default", "--queue", "second", imports=[TASKS])  # fmt: skip
    ids = workload()
    cluster.wait_status(ids, timeout=30)
    stopped = jobtui.enqueue(f"{TASKS}.waits", args=[60], queue="second").id
    cluster.wait_status([stopped], statuses=["running"])
    jobtui.cancel(stopped)  # a running job stopped by an operator: cancelled
    cluster.wait_status([stopped], statuses=["cancelled"])
    long_one = jobtui.enqueue(f"{TASKS}.waits", args=[60]).id
    cluster.wait_status([long_one], statuses=["running"])
    expected = table_counts()
    assert expected["completed"][("default", f"{TASKS}.ok")] == 6
    assert expected["retried"] and expected["timed_out"] and expected["crashed"]
    assert expected["cancelled"] == Counter({("second", f"{TASKS}.waits"): 1})

    def counters_match():
        figures = samples(scrape(port))
        got = {kind: by_task(figures, f"jobtui_jobs_{kind}_total") for kind in expected}
        started = expected["started"] + Counter({("default", f"{TASKS}.waits"): 1})
        return figures if ({**got, "started": 0} == {**expected, "started": 0}
                           and got["started"] == started) else None  # fmt: skip

    figures = wait_until(counters_match, 10, "scraped counters equal the job table",
                         explain=lambda: scrape(port))  # fmt: skip
    # the histograms: one wait per start, one run per ended run, in the buckets asked for
    waits = by_task(figures, "jobtui_job_wait_seconds_count")
    assert waits == expected["started"] + Counter({("default", f"{TASKS}.waits"): 1})
    runs = by_task(figures, "jobtui_job_run_seconds_count")
    assert runs == expected["started"]
    bounds = {dict(labels)["le"] for (name, labels) in figures
              if name == "jobtui_job_run_seconds_bucket"}  # fmt: skip
    assert bounds == {"0.01", "0.1", "1.0", "10.0", "+Inf"}
    # a retry waits from its backoff's end (2 s after its first run), not from its place
    late = (("le", "1.0"), ("queue", "default"), ("supervisor", "sup-1"),
            ("task", f"{TASKS}.retries_late"))  # fmt: skip
    assert figures[("jobtui_job_wait_seconds_bucket", late)] == 2
    sup = (("supervisor", "sup-1"),)

    def one_busy():  # the loop copies the worker gauges once a second
        figures = samples(scrape(port))
        busy, idle = figures[("jobtui_workers_busy", sup)], figures[("jobtui_workers_idle", sup)]
        return figures if (busy, idle) == (1, 1) else None

    figures = wait_until(one_busy, 10, "one worker busy, one idle")
    assert 0 <= figures[("jobtui_loop_turn_seconds", sup)] < 1
    assert figures[("jobtui_jobs_prefetched", sup)] == 0
    # depth and latency are read while scraped: three jobs wait in a queue nobody serves
    for _ in range(3):
        jobtui.enqueue(f"{TASKS}.ok", args=[0], queue="parked")
    labels = (("queue", "parked"), ("supervisor", "sup-1"))

    def depth():
        figures = samples(scrape(port))
        late = figures.get(("jobtui_queue_latency_seconds", labels), 0)
        return figures if figures.get(("jobtui_queue_depth", labels)) == 3 and late > 0 else None

    figures = wait_until(depth, 15, "queue depth scraped", explain=lambda: scrape(port))
    assert figures[("jobtui_queue_latency_seconds", labels)] < 30
    # a served queue with nothing due reads 0 (a series an alert can see), not no data
    served = (("queue", "default"), ("supervisor", "sup-1"))
    assert figures[("jobtui_queue_depth", served)] == 0
    assert figures[("jobtui_queue_latency_seconds", served)] == 0
    # the database alone prints the same counters
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli_main(["metrics"]) == 0
    offline = samples(out.getvalue())
    for kind in ("completed", "failed", "retried", "cancelled", "timed_out", "crashed"):
        assert by_task(offline, f"jobtui_jobs_{kind}_total") == expected[kind], kind
    running = Counter({("default", f"{TASKS}.waits"): 1})  # started, not ended
    assert by_task(offline, "jobtui_jobs_started_total") == expected["started"] + running
    assert by_task(offline, "jobtui_job_run_seconds_count") == expected["started"]
    assert by_task(offline, "jobtui_job_wait_seconds_count") == expected["started"]
    depth = ("jobtui_queue_depth", (("queue", "parked"),))
    assert offline[depth] == 3
    assert offline[("jobtui_queue_depth", (("queue", "default"),))] == 0


def test_bad_metrics_options_are_one_line_errors(cluster, tmp_path):
    import subprocess

    from supervisor_harness import SUPERVISOR_EXE

    for options, message in (
        (["--metrics-buckets", "1,0.5", "--metrics-port", "9"], "bounds must increase"),
        (["--metrics-buckets", "x", "--metrics-port", "9"], "comma-separated seconds"),
        (["--metrics-buckets", "1"], "--metrics-buckets needs --metrics-port"),
        (["--metrics-port", "70000"], "a port from 1 to 65535"),
    ):
        done = subprocess.run([SUPERVISOR_EXE, "--import", TASKS, *options], env=cluster.env,
                              capture_output=True, text=True, timeout=30)  # fmt: skip
        assert done.returncode != 0, options
        assert message in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    with socket.socket() as busy:  # a port in use
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([SUPERVISOR_EXE, "--import", TASKS, "--metrics-port", str(port)],
                              env=cluster.env, capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode == 1 and f"--metrics-port {port}" in done.stderr, done.stderr


def test_hostile_queue_names_are_escaped_labels(cluster):
    from hostile import HOSTILE, acting_chars

    port = free_port()
    cluster.start("--metrics-port", str(port), imports=[TASKS])
    # queue names: 100 characters at most, and PostgreSQL's text holds no NUL
    names = {(text.replace("\x00", "") or "empty")[:100] for text in HOSTILE.values()}
    ids = [jobtui.enqueue(f"{TASKS}.ok", args=[1], queue=name).id for name in names]
    cluster.wait_status(ids, timeout=30)
    wanted = {visible_line(name) for name in names}

    def all_counted():
        text = scrape(port)
        got = by_task(samples(text), "jobtui_jobs_completed_total")
        return text if {queue for queue, _ in got} == wanted else None

    text = wait_until(all_counted, 10, "every hostile queue counted")
    assert not acting_chars(text.replace("\n", "")), "a raw control character in the scrape"
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli_main(["metrics"]) == 0
    got = by_task(samples(out.getvalue()), "jobtui_jobs_completed_total")
    assert {queue for queue, _ in got} == wanted
    assert not acting_chars(out.getvalue().replace("\n", ""))
    # hostile task names: jobs of tasks no supervisor has, failed as unknown (the rollup
    # counts them), printed by `jobtui metrics`
    tasks = {f"{TASKS}.{name}" for name in names}
    ids = [jobtui.enqueue(task).id for task in tasks]
    cluster.wait_status(ids, statuses=["failed"], timeout=30)
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli_main(["metrics"]) == 0
    got = by_task(samples(out.getvalue()), "jobtui_jobs_failed_total")
    assert {task for _, task in got} == {visible_line(task) for task in tasks}
    assert not acting_chars(out.getvalue().replace("\n", ""))
