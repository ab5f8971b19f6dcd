"""Issue 15's supervisor options (alerts, log format, --otel) from the command line and
the environment, and the JSON log formatter on hostile text."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from hostile import HOSTILE

from jobtui.supervisor.config import AlertRule
from jobtui.supervisor.logline import JsonFormatter, job_fields
from jobtui.supervisor.main import config_from_args, parse_options


@pytest.fixture(autouse=True)
def _no_jobtui_environment(monkeypatch):
    import os

    for name in [n for n in os.environ if n.startswith("JOBTUI_") and n != "JOBTUI_DATABASE"]:
        monkeypatch.delenv(name)


def test_alert_rules_log_format_and_otel_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("JOBTUI_ALERT_WAIT", "emails=60, *=600")
    monkeypatch.setenv("JOBTUI_ALERT_FAILURE_RATE", "payments=5%")
    monkeypatch.setenv("JOBTUI_LOG_FORMAT", "json")
    monkeypatch.setenv("JOBTUI_OTEL", "myapp.tracing:init_worker")
    config = config_from_args(parse_options(["--import", "app.tasks"]))
    assert config.alerts == (AlertRule("wait", "emails", 60.0), AlertRule("wait", "*", 600.0),
                             AlertRule("failure_rate", "payments", 5.0))  # fmt: skip
    assert config.otel == "myapp.tracing:init_worker"
    options = parse_options(["--import", "app.tasks", "--alert-wait", "q=5", "--log-format",
                             "text"])  # fmt: skip
    assert options.alert_wait == ["q=5"] and options.log_format == "text"  # the command line wins


@pytest.mark.parametrize(("args", "says"), [
    (["--alert-wait", "q=5", "--alert-wait", "q=6"], "names queue 'q' twice"),
    (["--alert-failure-rate", "=5"], "takes QUEUE=PERCENT"),
    (["--otel", "myapp.tracing"], "--otel takes MODULE:FUNCTION"),
])  # fmt: skip
def test_bad_rules_are_refused(args, says):
    from jobtui.models.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=says):
        config_from_args(parse_options(["--import", "app.tasks", *args]))


def _record(message: str, *args, exc: BaseException | None = None, **extra) -> logging.LogRecord:
    record = logging.LogRecord("jobtui.test", logging.ERROR, __file__, 1, message, args,
                               (type(exc), exc, exc.__traceback__) if exc else None)  # fmt: skip
    record.__dict__.update(extra)
    return record


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_json_line_is_valid_one_line_json_whatever_the_text(name):
    text = HOSTILE[name]
    try:
        raise RuntimeError(text)
    except RuntimeError as exc:
        caught = exc
    line = JsonFormatter().format(_record("failed: %s", text, exc=caught,
                                          **job_fields("j1", text, text, 2, text)))  # fmt: skip
    assert "\n" not in line and "\r" not in line
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or 0x202A <= ord(c) <= 0x202E
                   or 0xD800 <= ord(c) <= 0xDFFF for c in line)  # fmt: skip
    line.encode("utf-8")  # writable to any UTF-8 stream
    entry = json.loads(line)
    assert entry["message"] == f"failed: {text}" and entry["task"] == text
    assert entry["attempt"] == 2 and entry["job_id"] == "j1"
    assert entry["exception"].endswith(f"RuntimeError: {text}")
    assert list(entry)[:4] == ["time", "level", "logger", "message"]


def test_a_task_record_in_a_worker_carries_its_jobs_keys():
    from jobtui.context import JobContext, bind_job, unbind_job

    token = bind_job(JobContext(id="j9", attempt=3, job_type="app.send", parameters={},
                                queue_name="emails"))  # fmt: skip
    try:
        entry = json.loads(JsonFormatter().format(_record("hello")))
    finally:
        unbind_job(token)
    assert (entry["job_id"], entry["task"], entry["queue"], entry["attempt"]) == (
        "j9", "app.send", "emails", 3)  # fmt: skip
    assert "job_id" not in json.loads(JsonFormatter().format(_record("outside a job")))
    assert "jobtui.context" in sys.modules
