"""The rollup through the real supervisor, on both engines: after a mixed workload
(completions, retries, final and permanent failures, a running job cancelled, a pending
one cancelled, a dependant cancelled) the rollup written in the group commits equals
what the job table says, and ``jobtui status --json`` reports the last hour from it."""

from __future__ import annotations

import json

import pytest
from rollup_check import rollup_totals, table_totals
from supervisor_harness import TASKS, wait_until
from supervisor_history import job

import jobtui
from jobtui.cli import main as cli_main
from jobtui.models import store

pytestmark = pytest.mark.timeout(90)

FINAL = ("completed", "failed", "cancelled")


def test_rollup_equals_the_job_table_after_a_workload(cluster, capsys):
    cluster.start(workers=3)
    jobs = [jobtui.enqueue(f"{TASKS}.add", args=[n, 1]) for n in range(40)]
    jobs += [jobtui.enqueue(f"{TASKS}.quick", args=[n], queue="other") for n in range(20)]
    jobs += [jobtui.enqueue(f"{TASKS}.flaky", args=[1]) for _ in range(3)]
    jobs += [jobtui.enqueue(f"{TASKS}.always_fail") for _ in range(2)]
    refused = jobtui.enqueue(f"{TASKS}.refuse")
    dependant = jobtui.enqueue(f"{TASKS}.add", args=[0, 0], depends_on=[refused.id])
    later = jobtui.enqueue(f"{TASKS}.add", args=[0, 0], delay=3600)
    coop = jobtui.enqueue(f"{TASKS}.cooperative")
    jobs += [refused, dependant, later, coop]
    wait_until(lambda: job(coop.id).status == "running", 20, "the cooperative job runs")
    jobtui.cancel(coop.id)
    jobtui.cancel(later.id)

    def all_ended() -> bool:
        return all(job(j.id).status in FINAL for j in jobs)

    wait_until(all_ended, 60, "every job ended")
    db = store.get_database()
    # the last outcomes and the rollup rows are one transaction: equal at every moment
    assert rollup_totals(db) == table_totals(db)
    totals = rollup_totals(db)
    assert totals[("default", f"{TASKS}.always_fail")][:4] == (0, 2, 4, 0)
    assert totals[("default", f"{TASKS}.flaky")][:4] == (3, 0, 3, 0)
    assert totals[("other", f"{TASKS}.quick")][:4] == (20, 0, 0, 0)
    assert cli_main(["status", "--json"]) == 0
    queues = json.loads(capsys.readouterr().out)["queues"]
    assert queues["other"]["completed_1h"] == 20 and queues["other"]["failed_1h"] == 0
    assert queues["default"]["failed_1h"] == 3  # two always_fail, one refused
    assert queues["default"]["completed_1h"] == 43
