"""Enqueue inside the application's own database transaction, whatever holds it.

``jobtui.enqueue(..., session=s)`` takes a SQLAlchemy ``Session`` (an ``AsyncSession``
through ``jobtui.aio.enqueue`` or ``jobtui.integrations.sqlalchemy.aenqueue``) or a
Django connection (``django.db.connection``, ``connections[alias]``): the job rows are
written on that session's connection, in its transaction, so the job exists only if the
application commits, and supervisors are woken only after that commit
(``jobtui.models.borrowed``). The application and jobtui must use the same database, with
jobtui's tables created by jobtui (README, "In your application").

Neither framework is imported unless a session of it is passed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import peewee

from jobtui.models.errors import ConfigurationError, InvalidJob

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any


@contextlib.contextmanager
def session_database(session: Any) -> Iterator[peewee.Database]:
    """The Peewee Database to enqueue through for ``session``, valid inside the block."""
    from jobtui.batching import current_batch

    if current_batch() is not None:  # its jobs are written in the batch's own transaction
        raise InvalidJob(
            "a job cannot join both a batch and the application's session: enqueue it "
            "outside `with batch()`, or without session="
        )
    module = type(session).__module__
    if module.startswith("sqlalchemy."):
        from . import sqlalchemy

        yield sqlalchemy.session_database(session)
    elif module.startswith("django."):
        from . import django

        with django.connection_database(session) as db:
            yield db
    else:
        raise ConfigurationError(
            f"session= takes a SQLAlchemy Session or a Django connection, not {type(session).__name__}"
        )
