"""``jobtui --demo``: a database, a supervisor running the demo tasks, and work to watch.

Unless a database is given, the demo gets a SQLite file in a fresh temporary folder. It
seeds jobs of every demo task (some fail and retry, one fails permanently, some are
delayed), upserts cron schedules (six-field, seconds last: every 15 and 20 s; five-field: every two
minutes) so work keeps arriving, and starts ``jobtui-supervisor --import jobtui.demo`` as
a child process in its own session (the terminal's signals stay with the console).
``stop`` sends it SIGTERM, waits, and removes the temporary folder.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

from jobtui.models.db import resolve_database_url

STOP_TIMEOUT_S = 15.0
DEMO_WORKERS = 4


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
                                        start_new_session=True)  # fmt: skip

    def stop(self) -> None:
        """SIGTERM the supervisor (a warm shutdown), wait for it, clean up."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if self._log is not None:
            self._log.close()  # type: ignore[attr-defined]
            self._log = None
        if self.folder is not None:
            from jobtui.models import store

            store.reset()
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None
