"""Live stacks: asking the supervisor that runs a job for its worker's Python stack.

The asker (``jobtui stack``, the console) is another process, perhaps on another host:
it writes a request row naming the job and the supervisor running it and wakes that
supervisor (``STACK_WAKE``: the enqueue wake-up with its own word). The supervisor asks
the worker over its control pipe; a thread in the worker answers from
``sys._current_frames()`` without stopping the task; the supervisor writes the answer
into the row in its group commit. A worker whose threads cannot run (a C call holding
the GIL) does not answer in time: the supervisor then writes that, with when it last
heard from the worker. The asker polls the row to a deadline and deletes it.
"""

from __future__ import annotations

import json
import time

import peewee

from .base import BaseModel, UTCDateTime, now_default
from .clock import utcnow
from .dialect import dialect_for
from .errors import JobtuiError
from .job import Job
from .wakeup import STACK_WAKE

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any

#: How long an asker waits for the answer by default (the supervisor gives the worker
#: ``supervisor.stacks.ANSWER_TIMEOUT_S`` and polls requests at least every poll interval).
WAIT_S = 10.0


class StackRequest(BaseModel):
    """One request for a running job's stack, and its answer (JSON) once written."""

    id = peewee.AutoField()
    job = peewee.ForeignKeyField(Job, column_name="job_id", on_delete="CASCADE", index=False)
    supervisor_name = peewee.CharField(max_length=200)
    requested_at = UTCDateTime(default=now_default)
    answered_at = UTCDateTime(null=True)
    answer = peewee.TextField(null=True)

    class Meta:
        table_name = "job_stack_requests"
        indexes = ((("supervisor_name", "answered_at"), False),)


class StackUnavailable(JobtuiError):
    """The job's stack cannot be taken."""


#: The supervisor's look for requests it has not answered (and not yet sent on).
PENDING = """SELECT r.id, r.job_id FROM job_stack_requests r
WHERE r.supervisor_name = :me AND r.answered_at IS NULL"""
ANSWER = """UPDATE job_stack_requests SET answered_at = :now, answer = :answer
WHERE id = :id AND answered_at IS NULL"""
#: Requests nobody came back for (an asker that was stopped) go after an hour.
FORGET = "DELETE FROM job_stack_requests WHERE requested_at < :before"


def request_stack(job_id: str, *, db: peewee.Database | str | None = None) -> int:
    """Write a stack request for the running job ``job_id`` and wake its supervisor;
    returns the request's id. StackUnavailable when the job is not running."""
    from .store import get_database
    from .wakeup import poke

    database = get_database(db)
    dialect = dialect_for(database)
    with dialect.write_transaction(database):
        row = database.execute_sql(
            dialect.sql("SELECT status, supervisor_name FROM jobs WHERE id = :id"), {"id": job_id}
        ).fetchone()
        if row is None:
            raise StackUnavailable(f"no job {job_id}")
        status, supervisor = row
        if status != "running" or not supervisor:
            raise StackUnavailable(f"job {job_id} is not running (it is {status}): no live stack")
        request = StackRequest.insert(job=job_id, supervisor_name=supervisor, requested_at=utcnow())
        request_id = int(request.execute(database))
        dialect.notify(database, STACK_WAKE)
    poke(database, STACK_WAKE)
    return request_id


def wait_for_stack(
    request_id: int, *, timeout_s: float = WAIT_S, db: peewee.Database | str | None = None
) -> dict[str, Any]:
    """The answer to a request (and the request deleted), waiting up to ``timeout_s``;
    StackUnavailable when none came (the supervisor is gone or busy)."""
    from .store import get_database

    database = get_database(db)
    dialect = dialect_for(database)
    read = dialect.sql("SELECT answer FROM job_stack_requests WHERE id = :id")
    deadline = time.monotonic() + timeout_s
    pause = 0.02
    try:
        while True:
            row = database.execute_sql(read, {"id": request_id}).fetchone()
            if row is None:
                raise StackUnavailable("the stack request was removed (its job was deleted?)")
            if row[0] is not None:
                value = json.loads(row[0])
                return value if isinstance(value, dict) else {"error": "malformed answer"}
            if time.monotonic() >= deadline:
                raise StackUnavailable(
                    f"no answer from the job's supervisor within {timeout_s:g} s "
                    "(is it running? it answers at its next turn, within its poll interval)"
                )
            time.sleep(pause)
            pause = min(0.2, pause * 1.5)
    finally:
        try:
            with dialect.write_transaction(database):
                database.execute_sql(
                    dialect.sql("DELETE FROM job_stack_requests WHERE id = :id"), {"id": request_id}
                )
        except peewee.PeeweeException:
            pass  # forgotten by the supervisor after an hour


def take_stack(
    job_id: str, *, timeout_s: float = WAIT_S, db: peewee.Database | str | None = None
) -> dict[str, Any]:
    """Ask for ``job_id``'s live stack and wait for it (``request_stack`` + ``wait_for_stack``)."""
    return wait_for_stack(request_stack(job_id, db=db), timeout_s=timeout_s, db=db)


def format_stack(answer: dict[str, Any]) -> list[str]:
    """The answer as text lines (job text is data: the caller makes it visible)."""
    if answer.get("error"):
        return [f"no stack: {answer['error']}"]
    if answer.get("stuck"):
        age = answer.get("last_heard_s")
        heard = "never" if age is None else f"{age:.1f} s ago"
        return [
            f"the worker (pid {answer.get('pid')}) did not answer within "
            f"{answer.get('waited_s', 0):g} s: it is probably stuck in C code holding the GIL",
            f"last heartbeat or message from it: {heard}",
        ]
    out = [f"job {answer.get('job_id')} on worker pid {answer.get('pid')}, "
           f"taken at {answer.get('taken_at')}"]  # fmt: skip
    for thread in answer.get("threads") or []:
        label = thread.get("name") or f"thread {thread.get('ident')}"
        if thread.get("job"):
            label += " (runs the job)"
        out.append("")
        out.append(f"Thread {label}, innermost frame last:")
        if thread.get("hidden_frames"):
            out.append(
                f"  ({thread['hidden_frames']} frames of the worker above the task left out)"
            )
        for frame in thread.get("frames") or []:
            out.append(f'  File "{frame.get("file")}", line {frame.get("line")}, '
                       f"in {frame.get('function')}")  # fmt: skip
            if frame.get("code"):
                out.append(f"    {frame['code']}")
    return out
