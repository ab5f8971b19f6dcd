"""Console test helpers: apps on fixed data (snapshots) or on a real database (Pilot),
and the waits that let workers finish before a test looks."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

from textual import events
from tui_fakes import FIXED_NOW, StaticSource

from jobtui.tui.app import JobtuiApp
from jobtui.tui.clock import FixedClock
from jobtui.tui.operations import Operations, Outcome


class RecordingOperations(Operations):
    """Operations that write nothing and remember what they were asked to do."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def _record(self, *call) -> Outcome:
        self.calls.append(call)
        return Outcome(f"{call[0]} done")

    def cancel(self, ids):
        return self._record("cancel", tuple(ids))

    def kill(self, ids, statuses):
        return self._record("kill", tuple(ids))

    def retry(self, ids):
        return self._record("retry", tuple(ids))

    def delete(self, ids):
        return self._record("delete", tuple(ids))

    def change_priority(self, ids, delta):
        return self._record("priority", tuple(ids), delta)

    def set_paused(self, queue, paused):
        return self._record("pause", queue, paused)

    def enqueue(self, request):
        return self._record("enqueue", request)

    def set_schedule_enabled(self, name, enabled):
        return self._record("schedule_enabled", name, enabled)

    def run_schedule_now(self, name):
        return self._record("run_schedule_now", name)

    def edit_retry(self, job_id, request):
        return self._record("edit_retry", job_id, request)

    def scale(self, queue, count, supervisor=None):
        return self._record("scale", queue, count, supervisor)


def static_app(source: StaticSource | None = None, *, read_only: bool = False) -> JobtuiApp:
    """An app on fixed data, a fixed clock and no timers."""
    return JobtuiApp(source or StaticSource(), operations=RecordingOperations(),
                     clock=FixedClock(FIXED_NOW), refresh_interval=None,
                     read_only=read_only)  # fmt: skip


async def settle(pilot) -> None:
    """Wait until no worker runs and the messages they posted are handled."""
    for _ in range(20):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        if not any(w.is_running for w in pilot.app.workers):
            break
    await pilot.pause()


async def wait_for(pilot, predicate: Callable[[], object], what: str, timeout_s: float = 10.0):
    """Let the app run until ``predicate()`` is true (a resize's relayout, say, which no
    worker signals); fails naming ``what`` after ``timeout_s``."""
    import time

    give_up = time.monotonic() + timeout_s
    while not (value := predicate()):
        if time.monotonic() >= give_up:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)
    return value


async def press(pilot, *keys: str) -> None:
    for key in keys:
        await pilot.press(key)
        await settle(pilot)


def burst(app: JobtuiApp, keys: Iterable[str]) -> None:
    """Send keys the way a terminal delivers fast typing: every key queued at once, none
    handled before the next arrives (``pilot.press`` waits for idle between keys)."""
    names = {"/": "slash", " ": "space"}
    for char in keys:
        app._driver.send_message(events.Key(names.get(char, char), char))  # type: ignore[union-attr]


def run_pilot(app: JobtuiApp, scenario: Callable[..., Awaitable[None]],
              size: tuple[int, int] = (120, 40)) -> None:  # fmt: skip
    """Run ``scenario(pilot)`` against ``app`` (plain sync tests: no asyncio plugin)."""

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            await scenario(pilot)

    asyncio.run(main())


def before(keys: Iterable[str] = ()) -> Callable:
    """A snap_compare ``run_before``: settle, press keys, settle, clear the toasts."""

    async def run_before(pilot) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        pilot.app.clear_notifications()
        await pilot.pause()

    return run_before
