"""What happened, from outside the database and from inside it: the execution log the
tasks of ``supervisor_tasks`` append to, the job and attempt rows, and the checker of
RELIABILITY.md ("Test like Jepsen") that compares them after each fault test:

- every job ended in exactly one terminal state (or ``pending``, where a shutdown put it
  back on purpose); none is left running;
- no attempt executed twice, and executions never go beyond the job's ``attempt``;
- extra executions (a run ended by a crash, a timeout or a shutdown, or a run with no
  attempt row) only for jobs a test recorded a fault for;
- a completed job's stored result was made by its final attempt, which the log saw finish;
- no process the supervisors ever started is still alive (``Cluster.stop``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from supervisor_harness import Cluster

TERMINAL = ("completed", "failed", "cancelled")


@dataclass(frozen=True)
class Execution:
    job_id: str
    attempt: int
    pid: int
    event: str


class ExecLog:
    """``job_id attempt pid event`` lines appended by the tasks, outside the database."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.touch()

    def records(self, job_id: str | None = None) -> list[Execution]:
        out = []
        for line in self.path.read_text().splitlines():
            job, attempt, pid, event = line.split(maxsplit=3)
            if job_id is None or job == job_id:
                out.append(Execution(job, int(attempt), int(pid), event))
        return out

    def events(self, job_id: str, event: str = "start") -> list[Execution]:
        return [r for r in self.records(job_id) if r.event == event]

    def started(self, job_id: str, attempt: int | None = None) -> Execution | None:
        """The start record of the job (of that attempt), or None."""
        for record in self.events(job_id):
            if attempt is None or record.attempt == attempt:
                return record
        return None


# ------------------------------------------------------------------ the checker


def check_history(
    cluster: Cluster, pending: Iterable[str] = (), stop: bool = True
) -> dict[str, Any]:
    """The checker over every job of the database (see the module docstring).
    ``pending``: jobs a shutdown put back on purpose. Stops the cluster before its verdict
    (so no process is alive after it) unless ``stop`` is False. Returns id -> Job."""
    from jobtui.models import JobAttempt

    jobs = {row.id: row for row in job_rows()}
    pending = set(pending)
    attempt_rows: dict[str, dict[int, Any]] = defaultdict(dict)
    for row in JobAttempt.select(JobAttempt.job, JobAttempt.attempt, JobAttempt.outcome,
                                 JobAttempt.error_message):  # fmt: skip
        attempt_rows[row.job_id][row.attempt] = row
    starts: dict[str, Counter] = defaultdict(Counter)
    ends: dict[str, set[int]] = defaultdict(set)
    for record in cluster.execlog.records():
        if record.event == "start":
            starts[record.job_id][record.attempt] += 1
        elif record.event == "end":
            ends[record.job_id].add(record.attempt)
    problems = []
    for job_id, job in jobs.items():
        what = f"job {job_id} ({job.job_type}, {job.status}, attempt {job.attempt})"
        wanted = ("pending",) if job_id in pending else TERMINAL
        if job.status not in wanted:
            problems.append(f"{what}: status is not {'/'.join(wanted)}")
        twice = [a for a, n in starts[job_id].items() if n > 1]
        if twice:
            problems.append(f"{what}: attempt(s) {twice} executed more than once")
        if any(a < 1 or a > job.attempt for a in starts[job_id]):
            problems.append(f"{what}: executions {dict(starts[job_id])} beyond its attempt")
        if sum(starts[job_id].values()) > job.attempt:
            problems.append(f"{what}: more executions than attempts")
        rows = attempt_rows[job_id]
        if any(a > job.attempt for a in rows):
            problems.append(f"{what}: attempt rows {sorted(rows)} beyond its attempt")
        if job_id not in cluster.injected and job_id not in pending:
            # a run ended by a crash or a timeout is a fault; an interrupted run that
            # never began (handed to a worker that was lost) executed nothing
            odd = {a: r.outcome for a, r in rows.items()
                   if r.outcome in ("crashed", "timed_out")
                   or (r.outcome == "interrupted" and a in starts[job_id])}  # fmt: skip
            if odd:
                problems.append(f"{what}: attempts {odd} with no fault injected")
            unaccounted = set(starts[job_id]) - set(rows)
            if unaccounted:
                problems.append(f"{what}: executions of attempt(s) {unaccounted} with no "
                                "attempt row: an extra execution with no fault")  # fmt: skip
        if job.status == "completed":
            result = job.result
            if not (isinstance(result, dict) and result.get("attempt") == job.attempt):
                problems.append(f"{what}: result {result!r} not from the final attempt")
            if job.attempt not in ends[job_id]:
                problems.append(f"{what}: the final attempt never finished in the log")
            final = rows.get(job.attempt)
            if final is None or final.outcome != "completed":
                problems.append(f"{what}: the final attempt row says "
                                f"{final.outcome if final else 'nothing'}")  # fmt: skip
    if stop:
        cluster.stop()
    assert not problems, "\n".join(problems) + "\n" + cluster.logs()[-8000:]
    return jobs


# ------------------------------------------------------------------ rows


def job_rows(*where: Any) -> list[Any]:
    """Job rows without ``parameters`` (a test may have corrupted them on purpose)."""
    from jobtui.models import Job

    query = Job.select(Job.id, Job.job_type, Job.status, Job.attempt, Job.retry_count,
                       Job.result, Job.error_message, Job.error_type,
                       Job.progress_percentage, Job.progress_message, Job.progress_details,
                       Job.worker_name, Job.crash_count, Job.max_retries,
                       Job.started_at, Job.completed_at)  # fmt: skip
    for condition in where:
        query = query.where(condition)
    return list(query)


def job(job_id: str) -> Any:
    """One job row, fresh (without ``parameters``)."""
    from jobtui.models import Job

    rows = job_rows(Job.id == job_id)
    assert rows, f"no job {job_id}"
    return rows[0]


def attempts(job_id: str) -> list[Any]:
    """The job's attempt rows, in order."""
    from jobtui.models import JobAttempt

    return list(JobAttempt.select().where(JobAttempt.job == job_id).order_by(JobAttempt.attempt))
