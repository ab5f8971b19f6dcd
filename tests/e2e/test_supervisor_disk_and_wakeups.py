"""The real supervisor under two more kinds of database trouble: a full disk at start (it
waits for space as it waits for a held lock, and says "database or disk is full" once per
line), and a PostgreSQL outage of its wake-up connection (said once, not every poll)."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from supervisor_harness import TASKS, Cluster, never, wait_until

import jobtui
from jobtui.models import store

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs of the test's own (needs root and a mount namespace that allows it)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs: {done.stderr.strip() or done.returncode}")
    try:
        yield mount
    finally:
        store.reset()
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def full_disk_cluster(small_disk: Path, tmp_path: Path, monkeypatch) -> Iterator[Cluster]:
    url = f"sqlite:///{small_disk / 'jobs.db'}"
    store.reset()
    monkeypatch.setenv("JOBTUI_DATABASE", url)
    store.use_database(url)
    group = Cluster(url, tmp_path)
    try:
        yield group
    finally:
        try:
            group.close()
        finally:
            print(group.logs()[-20000:])  # shown only when the test failed
            store.reset()


def _fill(folder: Path) -> Path:
    """Fill the file system of ``folder`` to the last byte; the filler's path."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as out:
        for size in (1 << 20, 1 << 16, 4096, 512, 1):
            try:
                while True:
                    out.write(b"\0" * size)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    return filler


def test_a_supervisor_started_on_a_full_disk_waits_for_space(full_disk_cluster, small_disk):
    """Before: it exited 1 with "disk full: database or disk is full / cannot rollback -
    no transaction is active / ..."."""
    cluster = full_disk_cluster
    jobtui.enqueue(f"{TASKS}.quick", args=[0])  # the schema exists: only space is missing
    store.get_database().execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")  # the WAL must grow
    filler = _fill(small_disk)
    sup = cluster.start(name="patient", wait=False)
    wait_until(lambda: "database or disk is full" in sup.log() or not sup.alive(), 20,
               "the full disk met", explain=sup.log)  # fmt: skip
    never(lambda: not sup.alive(), 1.5, "the supervisor gave up on the full disk")
    lines = [line for line in sup.log().splitlines() if "is full" in line]
    assert lines and all(line.count("is full") == 1 for line in lines), lines
    assert "cannot rollback" not in sup.log()
    os.unlink(filler)
    cluster.wait_ready(sup, timeout=30)
    follow = jobtui.enqueue(f"{TASKS}.quick", args=[5])
    assert jobtui.wait(follow.id, timeout=15)["value"] == 5


def test_a_wake_up_connection_outage_is_logged_once(cluster, db):
    """The LISTEN connection is cut and the database refuses new connections for a while:
    the supervisor retries at every safety poll (0.2 s here), and says so once."""
    if cluster.is_sqlite:
        pytest.skip("PostgreSQL wake-ups (SQLite's are sockets)")
    import psycopg2

    sup = cluster.start("--poll-interval", "0.2", workers=1)
    admin = psycopg2.connect(cluster.db_url.rsplit("/", 1)[0] + "/test")
    admin.autocommit = True
    name = db.database

    def listeners() -> list[int]:
        with admin.cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s"
                        " AND query LIKE 'LISTEN%%'", (name,))  # fmt: skip
            return [pid for (pid,) in cur.fetchall()]

    wait_until(listeners, 10, "the supervisor listening")
    try:
        with admin.cursor() as cur:
            cur.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            for pid in listeners():
                cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
        wait_until(lambda: "no PostgreSQL wake-ups" in sup.log(), 10, "the outage seen",
                   explain=sup.log)  # fmt: skip
        never(lambda: sup.log().count("no PostgreSQL wake-ups") > 1, 2.0,
              "the outage logged again at the next safety polls")  # fmt: skip
    finally:
        with admin.cursor() as cur:
            cur.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    wait_until(listeners, 10, "the supervisor listening again", explain=sup.log)
    # the LISTEN shows on the server a moment before the supervisor logs it
    wait_until(lambda: "PostgreSQL wake-ups restored" in sup.log(), 10, "the recovery logged",
               explain=sup.log)  # fmt: skip
    admin.close()
    job = jobtui.enqueue(f"{TASKS}.quick", args=[7])
    assert jobtui.wait(job.id, timeout=15)["value"] == 7
    assert sup.alive()


def test_a_job_whose_wake_up_was_lost_is_found_by_the_next_safety_poll(sqlite_cluster,
                                                                        monkeypatch):  # fmt: skip
    """SQLite skips a safety poll while no other connection has committed since the last
    full one (supervisor/quiet_poll.py). A job written with no wake-up is such a commit:
    the next poll claims it, well before the full poll every FULL_POLL_MAX_S would."""
    import jobtui.models.enqueueing as enqueueing
    from jobtui.supervisor.quiet_poll import FULL_POLL_MAX_S

    sqlite_cluster.start("--poll-interval", "0.2", workers=1)
    first = jobtui.enqueue(f"{TASKS}.quick", args=[1])
    sqlite_cluster.wait_status([first.id], timeout=30)  # up, then idle and polling
    monkeypatch.setattr(enqueueing, "after_enqueue_hooks", [])  # no wake-up datagram
    for n in range(3):
        lost = jobtui.enqueue(f"{TASKS}.quick", args=[n])
        rows = sqlite_cluster.wait_status([lost.id], timeout=FULL_POLL_MAX_S / 2)
        assert rows[lost.id].status == "completed"
