"""The held-back reasons of pending jobs for the console (models/held.py): a rate or a
key limit that keeps a due job waiting. No Textual here: the data source calls it."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

import peewee

from jobtui.models.held import FlowView
from jobtui.models.job import Job

from .snapshot import JobRow

_WAITING = ("pending", "retrying")


def with_held(
    db: peewee.Database, rows: Sequence[JobRow], now: datetime, view: FlowView | None = None
) -> tuple[JobRow, ...]:
    """``rows`` with ``held`` set on the due pending ones a rate or key limit holds back:
    two tiny reads when no rate or key limit exists, one more of the waiting rows' keys."""
    waiting = [r.id for r in rows if r.status in _WAITING]
    if not waiting:
        return tuple(rows)
    view = view or FlowView(db)
    if not view:
        return tuple(rows)
    keys = {i: (q, t, rk, ck) for i, q, t, rk, ck in Job.select(
        Job.id, Job.queue_name, Job.job_type, Job.rate_key, Job.concurrency_key,
    ).where(Job.id.in_(waiting)).tuples().execute(db)}  # fmt: skip
    out = []
    for row in rows:
        found = keys.get(row.id)
        due = row.run_at is None or row.run_at <= now
        reason = view.reason(*found) if found is not None and due else None
        out.append(dataclasses.replace(row, held=reason) if reason else row)
    return tuple(out)
