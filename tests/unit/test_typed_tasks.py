"""Typed tasks: ``@task`` keeps the function's signature (``Task[P, R]``), so mypy flags
``send_email.enqueue(1)`` for a ``(to: str, subject: str)`` task and passes a right call.

mypy reads jobtui as an installed package would lay it out (``jobtui``, ``jobtui.models``,
``jobtui.supervisor``: the source tree maps ``models/`` into the package, which the
editable install does with an import hook mypy cannot follow), from a tree of symlinks.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

USER_CODE = """
from jobtui import Job, task


@task
def send_email(to: str, subject: str) -> bool:
    return bool(to and subject)


@task(queue="reports", max_retries=2)
def build_report(year: int, *, draft: bool = False) -> str:
    return f"{year}{draft}"


ok: bool = send_email("a@example.com", "hi")
job: Job | None = send_email.enqueue("a@example.com", subject="hi")
report: str = build_report(2026, draft=True)
build_report.enqueue(2026)
WRONG
"""


def _installed_layout(tmp_path: Path) -> Path:
    """``site/jobtui`` holding links to the package's files, ``models`` and ``supervisor``."""
    site = tmp_path / "site"
    package = site / "jobtui"
    package.mkdir(parents=True)
    for entry in (ROOT / "jobtui").iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    (package / "models").symlink_to(ROOT / "models")
    (package / "supervisor").symlink_to(ROOT / "supervisor")
    return site


def _mypy(tmp_path: Path, wrong: str) -> subprocess.CompletedProcess:
    site = _installed_layout(tmp_path)
    user = tmp_path / "app.py"
    user.write_text(textwrap.dedent(USER_CODE).replace("WRONG", wrong))
    command = [sys.executable, "-m", "mypy", "--follow-imports=silent", "--no-error-summary",
               "--cache-dir", str(tmp_path / "cache"), "--python-version", "3.11", str(user)]  # fmt: skip
    env = {**os.environ, "MYPYPATH": str(site)}
    return subprocess.run(command, capture_output=True, text=True, timeout=240, env=env,
                          cwd=tmp_path)  # fmt: skip


@pytest.mark.timeout(300)
def test_mypy_flags_a_wrong_enqueue_and_passes_right_calls(tmp_path):
    pytest.importorskip("mypy")
    done = _mypy(tmp_path, "send_email.enqueue(1)\nbuild_report('2026')\n")
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert any(
        'Argument 1 to "enqueue" of "Task" has incompatible type "int"; expected "str"' in e
        for e in errors
    ), done.stdout + done.stderr
    assert any('Missing positional argument "subject"' in e for e in errors), done.stdout
    assert any('Argument 1 to "__call__" of "Task" has incompatible type "str"; expected "int"'
               in e for e in errors), done.stdout  # fmt: skip
    assert len(errors) == 3, done.stdout  # the right calls above them pass


@pytest.mark.timeout(300)
def test_mypy_passes_a_file_of_right_calls(tmp_path):
    pytest.importorskip("mypy")
    done = _mypy(tmp_path, "reveal_type(send_email)")
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'Revealed type is "jobtui.registry.Task[[to: str, subject: str], bool]"' in done.stdout


def test_the_package_ships_py_typed():
    assert (ROOT / "jobtui" / "py.typed").is_file()
    text = (ROOT / "pyproject.toml").read_text()
    assert '"py.typed"' in text and '"mypy' in text  # shipped; mypy in the test extra
