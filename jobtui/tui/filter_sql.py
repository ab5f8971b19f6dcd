"""The console's filter (filters.py) as SQL conditions on the jobs table, through Peewee.

Every condition is written once for both engines: LIKE with an explicit escape character
for globs and free text, JSON text matched as text for tags (a JSON list in a text column).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import peewee

from jobtui.models.job import Job
from jobtui.models.queries import has_reference, has_tag

from .filters import JobFilter, escape_like, glob_to_like
from .stats import id_floor


def _like(field: peewee.Field | peewee.Node, pattern: str) -> peewee.Node:
    return peewee.NodeList((peewee.fn.LOWER(field), peewee.SQL("LIKE"),
                            peewee.Value(pattern.lower()), peewee.SQL("ESCAPE '\\'")))  # fmt: skip


def _names(field: peewee.Field, values: Sequence[str]) -> peewee.Node:
    """``field`` equal to one of the names, or like one of the globs."""
    exact = [v for v in values if glob_to_like(v) is None]
    parts: list[peewee.Node] = [_like(field, glob_to_like(v) or "") for v in values
                                if glob_to_like(v) is not None]  # fmt: skip
    if exact:
        parts.append(field == exact[0] if len(exact) == 1 else field.in_(exact))
    return parts[0] if len(parts) == 1 else functools.reduce(operator.or_, parts)


def _any_tag(tags: Sequence[str]) -> peewee.Node:
    return functools.reduce(operator.or_, [has_tag(tag) for tag in tags])


def _any_reference(refs: Sequence[str]) -> peewee.Node:
    """``type`` (any id of that type) or ``type:id`` (ids may be globs)."""
    parts = [has_reference(ref, lambda field, ident: _names(field, [ident])) for ref in refs]
    return functools.reduce(operator.or_, parts)


_OPS: dict[str, Callable[[Any, Any], Any]] = {
    ">": lambda f, v: f > v, ">=": lambda f, v: f >= v, "<": lambda f, v: f < v,
    "<=": lambda f, v: f <= v, "=": lambda f, v: f == v,
}  # fmt: skip


def filter_conditions(flt: JobFilter, now: datetime, *, walk_ids: bool = False
                      ) -> list[peewee.Node]:  # fmt: skip
    """The filter as WHERE conditions, the states excepted (they pick the branches).

    ``walk_ids`` hides the queue from the planner (``queue_name || ''``), so that a big
    queue is read by walking ids newest first instead of sorting all its rows."""
    out: list[peewee.Node] = []
    queue_field = Job.queue_name.concat("") if walk_ids else Job.queue_name
    for field, positive, negative in ((queue_field, flt.queues, flt.not_queues),
                                      (Job.job_type, flt.tasks, flt.not_tasks),
                                      (Job.worker_name, flt.workers, flt.not_workers)):  # fmt: skip
        if positive:
            out.append(_names(field, positive))
        if negative:
            out.append(~_names(field, negative) | field.is_null())
    if flt.users:
        out.append(_names(Job.user_id, flt.users))
    if flt.not_users:
        out.append(~_names(Job.user_id, flt.not_users) | Job.user_id.is_null())
    if flt.tags:
        out.append(_any_tag(flt.tags))
    if flt.not_tags:
        out.append(~_any_tag(flt.not_tags) | Job.tags.is_null())
    if flt.refs:
        out.append(_any_reference(flt.refs))
    if flt.not_refs:
        out.append(~_any_reference(flt.not_refs) | Job.reference_type.is_null())
    out += [_OPS[c.op](Job.priority, int(c.bound)) for c in flt.priority]
    for comparison in flt.age_s:
        # age > X: created before now - X; ids are time-ordered, so this is an id range
        edge = id_floor(now - timedelta(seconds=comparison.bound))
        out.append(Job.id < edge if comparison.op in (">", ">=") else Job.id >= edge)
    for word in flt.text:
        pattern = f"%{escape_like(word)}%"
        out.append(functools.reduce(operator.or_, [
            _like(f, pattern) for f in (Job.id, Job.job_type, Job.queue_name, Job.title,
                                        Job.error_message, Job.error_type)]))  # fmt: skip
    for word in flt.not_text:
        pattern = f"%{escape_like(word)}%"
        for f in (Job.job_type, Job.queue_name, Job.title, Job.error_message):
            out.append(~_like(f, pattern) | f.is_null())
    return out
