"""``jobtui --demo``: a database, a supervisor running the demo tasks, and work to watch.

Unless a database is given, the demo gets a SQLite file in a fresh temporary folder. It
seeds jobs of every demo task (some fail and retry, one fails permanently, some are
delayed), upserts cron schedules (six-field, seconds last: every 15 and 20 s; five-field: every two
minutes) so work keeps arriving, and starts ``jobtui-supervisor --import jobtui.demo`` as
a child process in its own session (the terminal's signals stay with the console).
``stop`` sends it SIGTERM (a warm shutdown), then a second one (cold), then SIGKILL, each
after a bounded wait, and removes the temporary folder. The console calls it on ``q`` and
when its terminal closes (launch.py); should the console be killed outright, the
supervisor gets SIGTERM from the kernel (Linux's parent-death signal) and stops on its own.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from jobtui.models.db import resolve_database_url

#: The supervisor's warm shutdown: its ``--shutdown-grace`` and ``--kill-grace`` below and
#: some room; then a cold one, then SIGKILL (its workers die with it).
WARM_STOP_S = 8.0
COLD_STOP_S = 4.0
KILL_WAIT_S = 5.0
DEMO_WORKERS = 4
PR_SET_PDEATHSIG = 1


def die_with_console() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel send the supervisor SIGTERM (a warm shutdown)
    when the console dies, even by SIGKILL, when no clean-up of ours can run. Linux only
    (elsewhere None: the console's own stop is all there is). The C library is loaded
    here, before the fork: the child only makes the call."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    console = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != console:  # the console died before the call took effect
            os._exit(1)

    return preexec


def seed_demo_jobs(database) -> int:
    """Enqueue the demo's sample, failing and delayed jobs and its cron schedules."""
    from jobtui import demo
    from jobtui.api import enqueue, schedule

    jobs = 0

    def add(task, *args, **options) -> None:
        nonlocal jobs
        kwargs = options.pop("kwargs", {})
        enqueue(task, args=list(args), kwargs=kwargs, database=database, **options)
        jobs += 1

    for n in range(10):
        add(demo.send_email, f"customer{n}@example.com", kwargs={"subject": f"Order #{1000 + n}"})
    for n in range(6):
        add(demo.process_order, 1000 + n, kwargs={"items": 2 + n % 4}, priority=5)
    for n in range(3):
        add(demo.process_payment, 1000 + n, 1999 + 500 * n)
    add(demo.process_payment, 1099, 0, title="declined card (fails permanently)")
    add(demo.sync_inventory, "main")
    add(demo.sync_inventory, "east", kwargs={"skus": 400})
    add(demo.build_report, "daily-sales", priority=-5)
    for n in range(5):
        add(demo.resize_image, 500 + n)
    add(demo.export_data, "orders", kwargs={"rows": 50_000})
    for n in range(3):
        add(demo.ingest_file, f"/data/inbox/report-{n}.pdf")
    for n in range(4):
        add(demo.generate_embeddings, 70 + n, kwargs={"chunks": 8})
    add(demo.cleanup, 30)
    add(demo.always_fails, "ValueError: bad row 17 in batch [/x]", max_retries=0)
    add(demo.always_fails, "upstream returned 503", max_retries=1, retry_delay=3)
    for n, delay in enumerate((45, 90, 180, 600)):
        add(demo.send_email, f"later{n}@example.com", kwargs={"subject": "Reminder"}, delay=delay)
    schedule("demo-newsletter", "* * * * * */15", demo.send_email,
             kwargs={"to": "newsletter@example.com", "subject": "Newsletter"},
             database=database)  # fmt: skip
    schedule("demo-orders", "* * * * * */20", demo.process_order, args=[4242],
             database=database)  # fmt: skip
    schedule("demo-report", "*/2 * * * *", demo.build_report, args=["hourly"],
             database=database)  # fmt: skip
    return jobs


@dataclass
class DemoSession:
    url: str
    folder: str | None = None  # ours to delete
    process: subprocess.Popen | None = None
    log_path: str | None = None
    _log: object = field(default=None, repr=False)
    #: ``stop`` may be called from a thread (the terminal closed) and from the main one.
    _stopping: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def start(cls, database_url: str | None = None, *, seed: bool = True,
              workers: int = DEMO_WORKERS) -> DemoSession:  # fmt: skip
        from jobtui.models import store

        folder = None
        if database_url is None:
            folder = tempfile.mkdtemp(prefix="jobtui-demo-")
            database_url = "sqlite:///" + os.path.join(folder, "demo.db")
        url = resolve_database_url(database_url)
        session = cls(url=url, folder=folder)
        try:
            db = store.use_database(url)
            if seed:
                seed_demo_jobs(db)
            session.launch_supervisor(workers)
        except BaseException:
            session.stop()
            raise
        return session

    def launch_supervisor(self, workers: int) -> None:
        log_dir = self.folder or tempfile.gettempdir()
        self.log_path = os.path.join(log_dir, f"jobtui-demo-supervisor-{os.getpid()}.log")
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        command = [sys.executable, "-m", "jobtui.supervisor.main", "--import", "jobtui.demo",
                   "--workers", str(workers), "--shutdown-grace", "3", "--kill-grace", "2",
                   "--log-level", "INFO"]  # fmt: skip
        env = {**os.environ, "JOBTUI_DATABASE": self.url}  # not argv: ps would show a password
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=self._log,
                                        stderr=subprocess.STDOUT, env=env,
                                        start_new_session=True,
                                        preexec_fn=die_with_console())  # fmt: skip

    def stop(self) -> None:
        """Stop the supervisor, warm then cold then SIGKILL, each wait bounded; clean up.
        Safe to call twice and from two threads: the second call waits for the first."""
        with self._stopping:
            self._stop()

    def _stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            for action, wait_s in ((process.terminate, WARM_STOP_S),
                                   (process.terminate, COLD_STOP_S),  # again: cold
                                   (process.kill, KILL_WAIT_S)):  # fmt: skip
                if process.poll() is not None:
                    break
                action()
                try:
                    process.wait(wait_s)
                except subprocess.TimeoutExpired:
                    continue
        if self._log is not None:
            self._log.close()  # type: ignore[attr-defined]
            self._log = None
        if self.folder is not None:
            from jobtui.models import store

            store.reset()
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None
