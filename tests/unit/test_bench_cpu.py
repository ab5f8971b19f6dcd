"""bench/cpu.py and bench.peers' CPU table: what a drain's processes spent, and the rates
that bounds each system to."""

from __future__ import annotations

import os

import psutil

from bench.cpu import cpu_split, on_cpu_seconds
from bench.peers import SYSTEMS, cpu_report
from bench.supervisor import Drain


def _spin(seconds: float) -> None:
    end = psutil.Process().cpu_times().user + seconds
    while psutil.Process().cpu_times().user < end:
        pass


def test_the_split_reads_processes_and_local_backends():
    _spin(0.05)
    me = psutil.Process()
    local = cpu_split([me], "postgresql://u@127.0.0.1/db", lambda: [os.getpid(), os.getpid()])
    assert local.daemons_s >= 0.05
    assert local.backends_s >= 2 * 0.05 and local.busiest_backend_s >= 0.05
    remote = cpu_split([me], "postgresql://u@db.example.com/db", lambda: [os.getpid()])
    assert remote.backends_s is None and remote.busiest_backend_s is None


def test_a_backend_gone_or_unreadable_gives_no_backend_figure():
    gone = 2**22 + 12345  # above the usual pid_max
    split = cpu_split([psutil.Process()], "postgresql:///db", lambda: [gone])
    assert split.backends_s is None


def _drain(daemons: float, backends: float | None, busiest: float | None) -> Drain:
    return Drain(steady=1.0, wall=1.0, jobs=10_000, cpu_daemons_s=daemons,
                 cpu_backends_s=backends, cpu_busiest_backend_s=busiest)  # fmt: skip


def test_the_report_gives_per_job_cpu_and_the_bounds(monkeypatch):
    monkeypatch.setattr(psutil, "cpu_count", lambda: 2)
    names = list(SYSTEMS)
    out = {names[0]: [_drain(0.8, 1.0, 1.0)], names[1]: [_drain(1.0, 1.1, 0.6)],
           names[2]: [_drain(0.9, None, None)]}  # fmt: skip
    lines = cpu_report(out)
    assert "2 cores" in lines[0]
    # 0.08 + 0.10 = 0.18 s per 1,000 jobs: 2 cores bound it to 11,111 jobs/s, and the
    # busiest backend (0.10 s per 1,000) to 10,000
    assert "0.080" in lines[1] and "0.180" in lines[1] and "11,111 and 10,000 jobs/s" in lines[1]
    assert "16,667 jobs/s" in lines[2]
    assert "not readable" in lines[3]


def test_the_report_says_how_much_a_second_supervisor_could_add_here(monkeypatch):
    monkeypatch.setattr(psutil, "cpu_count", lambda: 2)
    one = Drain(steady=1.0, wall=16_000.0, jobs=10_000, cpu_daemons_s=0.3, cpu_backends_s=0.5,
                cpu_busiest_backend_s=0.3)  # fmt: skip
    two = Drain(steady=1.0, wall=17_000.0, jobs=10_000, cpu_daemons_s=0.4, cpu_backends_s=0.6,
                cpu_busiest_backend_s=0.2)  # fmt: skip
    lines = cpu_report({"jobtui_1x2": [one], "pgqueuer": [], "jobtui_2x2": [two]})
    # one supervisor: 0.08 ms a job at 16,000 jobs/s keeps 1.28 cores busy, so 2 cores
    # allow 1.56x at most; two: 0.10 ms a job bounds them to 20,000 jobs/s, 17,000 is 85 %
    assert lines[-1] == ("one supervisor kept 1.28 of 2 cores busy: at its CPU a job more "
                         "supervisors can add at most 1.56x on this machine; two reached "
                         "85 % of the 2-core bound at theirs")  # fmt: skip
    alone = cpu_report({"jobtui_1x2": [one], "pgqueuer": [], "jobtui_2x2": []})
    assert not [line for line in alone if "kept" in line]


def test_on_cpu_time_counts_every_thread_by_the_schedulers_clock():
    import threading

    me = psutil.Process()
    before, ticks_before = on_cpu_seconds([me]), sum(me.cpu_times()[:2])
    spun, done = threading.Event(), threading.Event()

    def spin_then_stay() -> None:  # a live thread's time counts (a daemon's threads live on)
        _spin(0.1)
        spun.set()
        done.wait(10)

    spinner = threading.Thread(target=spin_then_stay)
    spinner.start()
    try:
        assert spun.wait(10)
        spent, ticks = on_cpu_seconds([me]) - before, sum(me.cpu_times()[:2]) - ticks_before
    finally:
        done.set()
        spinner.join()
    assert spent >= 0.09 and abs(spent - ticks) < 0.05  # the ticks agree, to their grain
