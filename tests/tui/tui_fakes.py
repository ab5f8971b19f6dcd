"""Fixed data for console tests: a Source that returns the same snapshots every time.

Everything is built from FIXED_NOW, so snapshots never depend on the clock; one error
message holds Rich markup (``[/x]``, ``[bold]``) to prove it is shown, not parsed.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from jobtui.models.joblog import LogLine, LogPage
from jobtui.tui.snapshot import (
    AttemptRow,
    AuditRow,
    AuditView,
    DelayedRow,
    DetailView,
    FailureGroup,
    FailuresView,
    HeaderInfo,
    JobDetail,
    JobRow,
    JobsPage,
    JobsQuery,
    JobsView,
    MetricRow,
    MetricsView,
    MetricsWindow,
    QueueRow,
    QueuesView,
    ScheduledView,
    ScheduleRow,
    Strip,
    WorkerDetailView,
    WorkerRow,
    WorkersView,
)

FIXED_NOW = datetime(2026, 1, 15, 12, 0, 0)
MARKUP_ERROR = "bad row [/x] in [bold]batch[/bold] 17"


def ago(seconds: float) -> datetime:
    return FIXED_NOW - timedelta(seconds=seconds)


def job_id(n: int) -> str:
    return f"019bc1a2-{n:04x}-7000-8000-{n * 7919 % 16**12:012x}"


def job(n: int, status: str, task: str = "jobtui.demo.send_email", queue: str = "emails",
        **extra) -> JobRow:  # fmt: skip
    values = dict(id=job_id(n), queue=queue, task=task, status=status, priority=0, attempt=1,
                  max_retries=3, retry_count=0, progress=0.0, progress_message=None,
                  created_at=ago(30 * (20 - n)), started_at=None, run_at=ago(30 * (20 - n)),
                  worker=None, error_type=None, error=None, cancel_requested=False)  # fmt: skip
    values.update(extra)
    return JobRow(**values)


JOBS = (
    job(19, "running", progress=42.0, progress_message="rendering 2/4", worker="host-1-w1",
        started_at=ago(12)),
    job(18, "running", "jobtui.demo.process_order", "orders", progress=90.0, worker="host-1-w2",
        started_at=ago(40), priority=5, cancel_requested=True),
    job(17, "pending", "jobtui.demo.resize_image", "media", attempt=0,
        held="key customer:42 at 2/2"),
    job(16, "pending", run_at=FIXED_NOW + timedelta(minutes=5), attempt=0),
    job(15, "retrying", "jobtui.demo.generate_embeddings", "ingest", retry_count=1,
        error_type="TimeoutError", error="embedding server timed out",
        run_at=FIXED_NOW + timedelta(seconds=20)),
    job(14, "failed", "jobtui.demo.always_fails", "default", attempt=4, retry_count=3,
        error_type="ValueError", error=MARKUP_ERROR),
    job(13, "failed", "jobtui.demo.process_payment", "orders", error_type="PermanentError",
        error="invalid amount 0 for order 1099"),
    job(12, "completed", "jobtui.demo.build_report", "reports", progress=100.0,
        priority=-5, started_at=ago(300)),
    job(11, "cancelled", "jobtui.demo.export_data", "exports", error_type="Cancelled",
        error="cancelled by operator"),
    job(10, "waiting", "jobtui.demo.cleanup", "maintenance", attempt=0),
    *(job(n, "completed", started_at=ago(600 + n)) for n in range(9, 0, -1)),
)  # fmt: skip

QUEUES = (
    QueueRow("default", (("pending", 3), ("running", 0), ("failed", 12), ("completed", 400)),
             latency_s=4.0, concurrency=4, done_last_hour=400, failed_last_hour=12),
    QueueRow("emails", (("pending", 1234), ("running", 2), ("failed", 3),
                        ("completed", 10_000)), latency_s=380.0, concurrency=4,
             done_last_hour=3000, failed_last_hour=40, limit=4, rate="10/s",
             fair_keys=3, priority_aging_s=600.0),
    QueueRow("ingest", (("pending", 7), ("retrying", 1), ("running", 1)), latency_s=2.5,
             concurrency=2, done_last_hour=120, priority_aging_s=0.0),
    QueueRow("orders", (("pending", 0), ("running", 1), ("failed", 1), ("completed", 55)),
             latency_s=None, paused=True, concurrency=4, done_last_hour=55, failed_last_hour=1),
    QueueRow("reports", (("completed", 24),), latency_s=None, concurrency=None, done_last_hour=2),
)  # fmt: skip

STRIP = Strip(done_per_min=tuple((n * 7) % 23 for n in range(60)),
              failed_per_min=tuple(3 if n % 17 == 0 else 0 for n in range(60)),
              wait_p95_s=1.8, oldest_pending_s=380.0)  # fmt: skip

SUPERVISOR = WorkerRow("supervisor", "host-1", None, "host", 4100, "running",
                       "*=3, reports=1 (auto 1-4)", None, None,
                       None, 1.5, 52_428_800, 7200.0, 1.0, 3100, 52)  # fmt: skip
WORKERS = (
    WorkerRow("worker", "host-2-w1", "host-2", "host", 4200, "busy", "*", job_id(5), "t.x",
              10.0, 0.0, 41_943_040, 3000.0, 45.0, 10, 1),
    SUPERVISOR,
    WorkerRow("worker", "host-1-w1", "host-1", "host", 4101, "busy", "*", JOBS[0].id,
              "jobtui.demo.send_email", 42.0, 97.0, 73_400_320, 7100.0, 1.0, 1500, 20),
    WorkerRow("worker", "host-1-w2", "host-1", "host", 4102, "busy", "*", JOBS[1].id,
              "jobtui.demo.process_order", 90.0, 12.0, 69_206_016, 7100.0, 1.0, 1600, 32),
    WorkerRow("worker", "host-1-w3", "host-1", "host", 4103, "idle", "*", None, None, None,
              0.0, 40_894_464, 7100.0, 2.0, 0, 0),
)  # fmt: skip

GROUPS = (
    FailureGroup("g1", "ConnectionError", "SMTP server refused the connection for <email>",
                 "SMTP server refused the connection for a@example.com", 31, ago(3000), ago(60),
                 ("jobtui.demo.send_email",), ("emails",), (job_id(14),)),
    FailureGroup("g2", "ValueError", "bad row <n> in [bold]batch[/bold] <n>", MARKUP_ERROR, 12,
                 ago(7200), ago(300), ("jobtui.demo.always_fails",), ("default",), (job_id(14),)),
    FailureGroup("g3", "PermanentError", "invalid amount <n> for order <n>",
                 "invalid amount 0 for order 1099", 1, ago(900), ago(900),
                 ("jobtui.demo.process_payment",), ("orders",), (job_id(13),)),
    FailureGroup("g4", "Quarantined", "quarantined: killed its worker <n> times (SIGKILL, "
                 "peak RSS <n> MB)", "quarantined: killed its worker 2 times (SIGKILL, peak RSS "
                 "812 MB)", 2, ago(600), ago(120), ("jobtui.demo.resize_image",), ("media",),
                 (job_id(12),)),
)  # fmt: skip

SCHEDULES = (
    ScheduleRow("demo-newsletter", "* * * * * */15", "jobtui.demo.send_email", "UTC", True,
                (FIXED_NOW + timedelta(seconds=15), FIXED_NOW + timedelta(seconds=30),
                 FIXED_NOW + timedelta(seconds=45)), ago(0), job_id(19), "running"),
    ScheduleRow("nightly-report", "0 2 * * *", "jobtui.demo.build_report", "Europe/Paris",
                True, (FIXED_NOW + timedelta(hours=13),), ago(36000), job_id(12), "completed"),
    ScheduleRow("old-export", "0 * * * *", "jobtui.demo.export_data", "UTC", False, (),
                None, None, None),
)  # fmt: skip
DELAYED = (
    DelayedRow(job_id(15), "jobtui.demo.generate_embeddings", "ingest", "retrying",
               FIXED_NOW + timedelta(seconds=20), 0, 1),
    DelayedRow(job_id(16), "jobtui.demo.send_email", "emails", "pending",
               FIXED_NOW + timedelta(minutes=5), 0, 0),
)  # fmt: skip


def _series(n: int, scale: int, failed: bool = False) -> tuple[int, ...]:
    return tuple(((i * 7) % 11 + (3 if failed else 9)) * scale // 10 for i in range(n))


def _metrics_window(label: str, seconds: float, slot_s: float, scale: int) -> MetricsWindow:
    """Fixed figures for one window: counts past 10,000 show in full."""
    n = int(seconds // slot_s)
    rows = (
        MetricRow(
            "default",
            "",
            400 * scale,
            12 * scale,
            0.2,
            1.5,
            0.8,
            2.5,
            retried=3 * scale,
            per_min=412 * scale / (seconds / 60),
            done_series=_series(n, scale),
            failed_series=_series(n, scale, True),
        ),
        MetricRow(
            "default",
            "jobtui.demo.always_fails",
            0,
            12 * scale,
            0.1,
            0.4,
            0.01,
            0.02,
            per_min=12 * scale / (seconds / 60),
            failed_series=_series(n, scale, True),
        ),
        MetricRow(
            "default",
            "jobtui.demo.sample",
            400 * scale,
            0,
            0.2,
            1.5,
            0.8,
            2.5,
            per_min=400 * scale / (seconds / 60),
            done_series=_series(n, scale),
        ),
        MetricRow(
            "emails",
            "",
            3000 * scale,
            40 * scale,
            0.5,
            380.0,
            0.6,
            1.1,
            cancelled=2 * scale,
            per_min=3040 * scale / (seconds / 60),
            done_series=_series(n, 3 * scale),
            failed_series=_series(n, scale, True),
        ),
        MetricRow(
            "emails",
            "jobtui.demo.send_email",
            3000 * scale,
            40 * scale,
            0.5,
            380.0,
            0.6,
            1.1,
            per_min=3040 * scale / (seconds / 60),
            done_series=_series(n, 3 * scale),
            failed_series=_series(n, scale, True),
        ),
    )
    total = MetricRow("", "", 3400 * scale, 52 * scale, 0.4, 300.0, 0.7, 2.4,
                      per_min=3452 * scale / (seconds / 60), done_series=_series(n, 4 * scale),
                      failed_series=_series(n, scale, True))  # fmt: skip
    return MetricsWindow(label, seconds, slot_s, rows, total)


METRICS = MetricsView(now=FIXED_NOW, windows=(
    _metrics_window("1h", 3600, 60, 1),
    _metrics_window("24h", 86400, 3600, 20),
    _metrics_window("7d", 7 * 86400, 4 * 3600, 130),
))  # fmt: skip

ATTEMPTS = (
    AttemptRow(1, ago(400), ago(395), "host-1-w1", "host", 4101, "failed", "ValueError",
               MARKUP_ERROR, "Traceback (most recent call last):\n  File \"demo.py\", line 9\n"
               "ValueError: " + MARKUP_ERROR),
    AttemptRow(2, ago(300), ago(270), "host-1-w2", "host", 4102, "timed_out", "TimeoutError",
               "timed out after 30 s", None),
    AttemptRow(3, ago(100), ago(99), "host-1-w1", "host", 4101, "crashed", None,
               "killed by signal 9", None),
    AttemptRow(4, ago(20), ago(19), "host-1-w3", "host", 4103, "failed", "ValueError",
               MARKUP_ERROR, "Traceback (most recent call last):\n  File \"demo.py\", line 9\n"
               "ValueError: " + MARKUP_ERROR),
)  # fmt: skip

DETAIL = JobDetail(
    row=JOBS[5], title="Nightly import [batch 17]", description=None,
    parameters={"args": [17], "kwargs": {"path": "/data/[x].csv", "dry_run": False}},
    result=None, traceback=ATTEMPTS[-1].traceback, completed_at=None, failed_at=ago(19),
    scheduled_for=None, next_retry_at=None, updated_at=ago(19), timeout=60.0, user_id="u1",
    reference="order:42", tags=("billing", "nightly"), metadata={"source": "cron"},
    batch_id=None, schedule_name="nightly-import", unique_key=None, depends_on=(),
    supervisor="host-1", attempts=ATTEMPTS, fair_key="tenant-a",
    base_priority=JOBS[5].priority - 2,
)  # fmt: skip
RUNNING_DETAIL = replace(DETAIL, row=JOBS[0], title=None, traceback=None, failed_at=None,
                         result={"sent": True, "to": "a@example.com"}, attempts=())  # fmt: skip


AUDIT = (
    AuditRow(6, ago(30), "ops-bot", "ci-runner", "api", "cancel", job_id(3), {"reason": "dup"}, 1),
    AuditRow(5, ago(95), "alice", "laptop", "console", "edit", job_id(8),
             {"args": ["a@example.com", "fixed"], "was": {"args": ["a@", "x"], "kwargs": {}}}, 1),
    AuditRow(4, ago(300), "alice", "laptop", "console", "retry", "12 jobs",
             {"ids": [job_id(n) for n in range(12)]}, 12),
    AuditRow(3, ago(900), "bob", "web-1", "cli", "pause", "emails", None, None),
    AuditRow(2, ago(1800), "bob", "web-1", "cli", "schedule run-now", "nightly-import",
             {"job": job_id(20)}, 1),
    AuditRow(1, ago(3600), "bob", "web-1", "cli", "purge", "failed jobs", {"queue": "emails"}, 412),
)  # fmt: skip


_T0 = FIXED_NOW.replace(tzinfo=UTC).timestamp() - 90
#: The Logs tab's fixed data: what the job wrote, in its one attempt.
LOG_LINES = (
    LogLine(1, _T0, "log", "INFO emails: sending the March newsletter to 1,204 readers"),
    LogLine(1, _T0 + 0.004, "out", "connecting to smtp.example.com:587"),
    LogLine(1, _T0 + 0.311, "out", "batch 1/13: 100 sent"),
    LogLine(1, _T0 + 1.52, "err", "warning: a@example.org bounced (550 mailbox full)"),
    LogLine(1, _T0 + 2.2, "out", "batch 2/13: 99 sent, 1 bounced"),
    LogLine(1, _T0 + 2.9, "log", "WARNING emails: slow server: 700 ms per message"),
    LogLine(1, _T0 + 4.05, "out", "batch 3/13: 100 sent"),
)
#: The Stack tab's fixed answer: the job's thread waits in the SMTP client's read.
STACK_ANSWER = {
    "job_id": "j", "pid": 4242, "taken_at": "2026-01-15T12:00:00Z", "threads": [
        {"ident": 1, "name": "main", "job": True, "hidden_frames": 10, "frames": [
            {"file": "/app/emails.py", "line": 41, "function": "send_newsletter",
             "code": "client.send(batch)"},
            {"file": "/app/smtp.py", "line": 88, "function": "send", "code": "self.wait_ok()"},
            {"file": "/app/smtp.py", "line": 120, "function": "wait_ok",
             "code": "line = self.sock.recv(4096)"},
        ]},
    ],
}  # fmt: skip


class StaticSource:
    """Returns the fixed data above; counts calls; can be told to fail."""

    def __init__(self, *, jobs: tuple[JobRow, ...] = JOBS, fail: Exception | None = None) -> None:
        self.jobs = jobs
        self.fail = fail
        self.calls: list[str] = []
        self.gone: set[str] = set()
        self.audit = AUDIT

        self.log_lines: tuple[LogLine, ...] = LOG_LINES
        self.stack_asks: list[str] = []

    def _check(self, name: str) -> None:
        self.calls.append(name)
        if self.fail is not None:
            raise self.fail

    def header(self) -> HeaderInfo:
        self._check("header")
        return HeaderInfo("postgresql://jobs:***@db.internal:5432/jobs", 1, 1, 3, 1)

    def jobs_view(self, query: JobsQuery, *, with_panes: bool = True) -> JobsView:
        self._check("jobs_view")
        rows = self.jobs
        if query.ids is not None:
            rows = tuple(r for r in rows if r.id in query.ids)
        states = query.filter.effective_states()
        rows = tuple(r for r in rows if r.status in states)
        return JobsView(now=FIXED_NOW, page=JobsPage(rows=rows[: query.limit]),
                        queues=QUEUES if with_panes else None,
                        strip=STRIP if with_panes else None,
                        workers=WORKERS if with_panes else (),
                        matching=None if query.filter.is_empty else len(rows))  # fmt: skip

    def rows_before(self, query: JobsQuery, count: int) -> list[str]:
        return []

    def last_page_top(self, query: JobsQuery) -> str | None:
        return None

    def queues_view(self) -> QueuesView:
        self._check("queues_view")
        return QueuesView(now=FIXED_NOW, queues=QUEUES)

    def workers_view(self) -> WorkersView:
        self._check("workers_view")
        return WorkersView(now=FIXED_NOW, rows=WORKERS)

    def failures_view(self) -> FailuresView:
        self._check("failures_view")
        return FailuresView(now=FIXED_NOW, groups=GROUPS, sampled=46, capped=False)

    def scheduled_view(self) -> ScheduledView:
        self._check("scheduled_view")
        return ScheduledView(now=FIXED_NOW, schedules=SCHEDULES, delayed=DELAYED)

    def metrics_view(self) -> MetricsView:
        self._check("metrics_view")
        return METRICS

    def audit_view(self) -> AuditView:
        self._check("audit_view")
        return AuditView(now=FIXED_NOW, rows=self.audit)

    def job_detail(self, job_id: str) -> DetailView:
        self._check("job_detail")
        if job_id in self.gone:
            return DetailView(now=FIXED_NOW, job=None)
        detail = RUNNING_DETAIL if job_id == RUNNING_DETAIL.row.id else DETAIL
        return DetailView(now=FIXED_NOW, job=detail)

    def job_log(self, job_id: str, after: tuple[int, int]) -> LogPage:
        if after != (0, -1) or job_id in self.gone:
            return LogPage([], after, {})
        return LogPage(list(self.log_lines), (1, 0), {})

    def job_stack(self, job_id: str) -> dict:
        self.stack_asks.append(job_id)
        return dict(STACK_ANSWER, job_id=job_id)

    def worker_detail(self, name: str) -> WorkerDetailView:
        self._check("worker_detail")
        found = next((w for w in WORKERS if w.name == name and name not in self.gone), None)
        job = next((j for j in JOBS if found and j.id == found.current_job_id), None)
        children = tuple(w for w in WORKERS if found and w.supervisor == found.name)
        return WorkerDetailView(now=FIXED_NOW, worker=found, job=job, workers=children)

    def matching_jobs(self, query: JobsQuery, limit: int) -> list[tuple[str, str]]:
        return [(r.id, r.status) for r in self.jobs][:limit]

    def task_names(self) -> list[str]:
        return sorted({r.task for r in self.jobs})

    def invalidate(self) -> None:
        self.calls.append("invalidate")
