"""No-op tasks for bench/supervisor.py: each returns the time it started."""

import time

from jobtui import task


@task(name="bench.stamp")
def stamp() -> float:
    return time.time()
