"""No-op tasks for bench/supervisor.py: each returns the time it started."""

import logging
import time

from jobtui import task

_log = logging.getLogger("bench.chatty")


@task(name="bench.stamp")
def stamp() -> float:
    return time.time()


@task(name="bench.chatty")
def chatty() -> float:
    """A no-op that writes 10 lines (5 printed, 5 through logging): the cost of job logs."""
    started = time.time()
    for n in range(5):
        print(f"line {n} of a chatty job")
        _log.info("record %d of a chatty job", n)
    return started


@task(name="bench.prints")
def prints() -> float:
    started = time.time()
    for n in range(10):
        print(f"line {n} of a chatty job")
    return started


@task(name="bench.logs")
def logs() -> float:
    started = time.time()
    for n in range(10):
        _log.info("record %d of a chatty job", n)
    return started
