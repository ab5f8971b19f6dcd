"""jobtui.aio stays out of processes that do not ask for it: ``import jobtui``, the sync
API, the CLI and the supervisor never load it (nor asyncio, for the daemon: test_pure)."""

from __future__ import annotations

import subprocess
import sys

AIO_MODULES = ("jobtui.aio", "jobtui.aio_runner", "jobtui.aio_batch", "jobtui.service")


def test_import_jobtui_and_the_sync_paths_never_load_jobtui_aio():
    code = ("import sys, jobtui, jobtui.api, jobtui.batching, jobtui.registry, jobtui.cli, "
            "jobtui.supervisor.main, jobtui.supervisor.loop; jobtui.enqueue; "
            f"bad = [m for m in {AIO_MODULES!r} if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_task_aenqueue_loads_jobtui_aio_lazily():
    code = ("import sys; from jobtui import task\n"
            "@task(name='x.y')\ndef f(): pass\n"
            "assert 'jobtui.aio' not in sys.modules\n"
            "import inspect; assert inspect.iscoroutinefunction(f.aenqueue)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
