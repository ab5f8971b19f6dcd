"""``task.aenqueue`` keeps the task's signature, as ``task.enqueue`` does (typed tasks)."""

from __future__ import annotations

import pytest
from test_typed_tasks import _mypy


@pytest.mark.timeout(300)
def test_mypy_checks_aenqueue_against_the_task_signature(tmp_path):
    pytest.importorskip("mypy")
    code = ("async def app() -> None:\n"
            "    right: Job | None = await send_email.aenqueue('a@example.com', subject='hi')\n"
            "    await send_email.aenqueue(1)\n")  # fmt: skip
    done = _mypy(tmp_path, code)
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert any('Argument 1 to "aenqueue" of "Task" has incompatible type "int"; expected "str"'
               in e for e in errors), done.stdout + done.stderr  # fmt: skip
    assert len(errors) == 2, done.stdout  # that, and the missing subject; the right call passes
