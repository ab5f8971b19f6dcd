"""Issue 15, item 4: ``jobtui queues`` and ``jobtui status`` report a queue in alert."""

from __future__ import annotations

import json

import pytest

import jobtui
from jobtui.cli import main
from jobtui.models.alert import change_alert
from jobtui.models.clock import utcnow
from jobtui.models.store import get_database

pytestmark = pytest.mark.timeout(60)


def test_queues_and_status_name_the_alerts(db, db_url, capsys):
    jobtui.enqueue("t.mail", queue="emails")
    jobtui.enqueue("t.report", queue="reports")
    change_alert(get_database(), "wait", "emails", True, 42.4, 30.0, utcnow())
    change_alert(get_database(), "failure_rate", "reports", True, 12.5, 10.0, utcnow())
    assert main(["--database", db_url, "queues"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "ALERT" in out.splitlines()[0]
    assert "wait 42s>30s" in lines["emails"] and "failed 12%>10%" in lines["reports"]
    assert main(["--database", db_url, "queues", "--json"]) == 0
    queues = json.loads(capsys.readouterr().out)
    wait = queues["emails"]["alerts"]["wait"]
    assert (wait["value"], wait["threshold"], wait["episode"]) == (42.4, 30.0, 1)
    assert wait["since"].endswith("+00:00")
    assert main(["--database", db_url, "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert set(status["queues"]["reports"]["alerts"]) == {"failure_rate"}
    change_alert(get_database(), "wait", "emails", False, 0.0, 30.0, utcnow())
    assert main(["--database", db_url, "status"]) == 0
    out = capsys.readouterr().out
    assert "wait 42s" not in out and "failed 12%>10%" in out
