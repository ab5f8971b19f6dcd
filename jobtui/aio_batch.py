"""``async with jobtui.aio.batch(...)``: the sync batch's one transaction, on a thread of its own.

The sync ``batch()`` opens a write transaction, creates the batch row, and every enqueue in
the block joins that transaction; at exit it counts the jobs and commits (or rolls back on
an exception). Here a dedicated thread enters that very context manager and holds it open
while the coroutine runs its block; each ``await aio.enqueue`` inside the block (and in
tasks the block starts) runs on that thread, in that transaction, so it returns real Jobs
and unique keys, catalog defaults and ``should_enqueue`` behave as in the sync block. The
exit commits or rolls back on the same thread, then closes its connection.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import sys
from collections.abc import Callable
from types import TracebackType

from jobtui.aio_runner import call_in_thread
from jobtui.batching import BatchHandle
from jobtui.batching import batch as sync_batch
from jobtui.models.store import get_database
from jobtui.registry import Task

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_current: contextvars.ContextVar[AsyncBatch | None] = contextvars.ContextVar(
    "jobtui_async_batch", default=None
)


def _in_otel_context(otel: Any, context: Any, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` run with the caller's OpenTelemetry context attached: the batch's thread
    keeps its own context (the batch's transaction), so only the trace is carried."""

    def call(*args: Any, **kwargs: Any) -> Any:
        token = otel.attach(context)
        try:
            return fn(*args, **kwargs)
        finally:
            otel.detach(token)

    return call


def current_async_batch() -> AsyncBatch | None:
    return _current.get()


class AsyncBatch:
    """An open ``async with batch()``: ``id`` names the batch once the block is entered."""

    def __init__(
        self,
        on_success: Task | str | None,
        on_failure: Task | str | None,
        on_complete: Task | str | None,
        *,
        database: Any = None,
    ) -> None:
        self._callbacks = (on_success, on_failure, on_complete)
        self._database = database
        self._thread: concurrent.futures.ThreadPoolExecutor | None = None
        self._cm: Any = None
        self._token: contextvars.Token | None = None
        self.handle: BatchHandle | None = None

    @property
    def id(self) -> str:
        assert self.handle is not None, "the batch has no id before its block is entered"
        return self.handle.id

    @property
    def jobs(self) -> int:
        return 0 if self.handle is None else self.handle.jobs

    async def run(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` on the batch's thread, inside its transaction."""
        assert self._thread is not None, "the batch is not open"
        otel = sys.modules.get("opentelemetry.context")
        if otel is not None:  # the caller's trace goes with the call (jobtui/tracing.py)
            fn = _in_otel_context(otel, otel.get_current(), fn)
        future = self._thread.submit(call_in_thread, self._database, fn, args, kwargs, read=False)
        return await asyncio.wrap_future(future)

    def _enter(self) -> BatchHandle:
        self._cm = sync_batch(*self._callbacks, database=self._database)
        return self._cm.__enter__()

    def _exit(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            self._cm.__exit__(exc_type, exc, tb)
        finally:
            db = get_database(self._database)
            if not db.in_transaction():
                db.close()

    async def __aenter__(self) -> AsyncBatch:
        self._thread = concurrent.futures.ThreadPoolExecutor(1, "jobtui-aio-batch")
        try:
            self.handle = await self.run(self._enter)
        except BaseException:
            self._thread.shutdown(wait=False)
            raise
        self._token = _current.set(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._thread is not None and self._token is not None
        _current.reset(self._token)
        thread, self._thread = self._thread, None
        future = thread.submit(call_in_thread, self._database, self._exit,
                               (exc_type, exc, tb), {}, read=False)  # fmt: skip
        thread.shutdown(wait=False)  # the thread ends once the exit has run
        # shielded: a second cancellation must not leave the transaction open
        await asyncio.shield(asyncio.wrap_future(future))
