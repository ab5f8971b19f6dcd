"""jobtui-supervisor's options: the command line, then the environment, then the defaults."""

from __future__ import annotations

import pytest

from jobtui.supervisor.config import DEFAULT_HEARTBEAT_INTERVAL_S
from jobtui.supervisor.main import config_from_args, env_name, parse_options


@pytest.fixture(autouse=True)
def _no_jobtui_environment(monkeypatch):
    import os

    for name in [n for n in os.environ if n.startswith("JOBTUI_") and n != "JOBTUI_DATABASE"]:
        monkeypatch.delenv(name)


def test_the_environment_fills_what_the_command_line_leaves_out(monkeypatch):
    monkeypatch.setenv("JOBTUI_IMPORT", "app.tasks, app.reports")
    monkeypatch.setenv("JOBTUI_WORKERS", "3")
    monkeypatch.setenv("JOBTUI_QUEUE", "default emails=2")
    monkeypatch.setenv("JOBTUI_HEARTBEAT_INTERVAL", "0.5")
    monkeypatch.setenv("JOBTUI_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("JOBTUI_PREFETCH", "auto")
    options = parse_options([])
    assert options.imports == ["app.tasks", "app.reports"]
    assert (options.workers, options.heartbeat_interval, options.log_level) == (3, 0.5, "DEBUG")
    assert options.queues == ["default", "emails=2"] and options.prefetch is None
    assert set(options.from_environment) == {
        "JOBTUI_IMPORT", "JOBTUI_WORKERS", "JOBTUI_QUEUE", "JOBTUI_HEARTBEAT_INTERVAL",
        "JOBTUI_LOG_LEVEL", "JOBTUI_PREFETCH",
    }  # fmt: skip
    config = config_from_args(options)
    assert sorted((g.label, g.size) for g in config.groups) == [("default", 3), ("emails", 2)]


def test_the_command_line_wins_and_replaces_lists(monkeypatch):
    monkeypatch.setenv("JOBTUI_IMPORT", "app.tasks")
    monkeypatch.setenv("JOBTUI_WORKERS", "3")
    monkeypatch.setenv("JOBTUI_NOTIFY_EMAIL", "ops@example.com")
    options = parse_options(["--import", "other.tasks", "--workers", "5",
                             "--notify-email", "me@example.com"])  # fmt: skip
    assert options.imports == ["other.tasks"] and options.workers == 5
    assert options.notify_email == ["me@example.com"]
    untouched = parse_options(["--import", "x"])
    assert untouched.heartbeat_interval == DEFAULT_HEARTBEAT_INTERVAL_S
    assert untouched.notify_email == ["ops@example.com"]


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("JOBTUI_WORKERS", "many", "JOBTUI_WORKERS='many': invalid literal"),
        ("JOBTUI_LOG_LEVEL", "debug", "JOBTUI_LOG_LEVEL='debug': choose from DEBUG"),
        ("JOBTUI_PREFETCH", "999", "JOBTUI_PREFETCH='999': '999': a number of jobs from 0 to 256"),
        ("JOBTUI_LEASE", "soon", "JOBTUI_LEASE='soon': could not convert"),
    ],
)
def test_a_bad_value_in_the_environment_is_refused_by_its_name(
    monkeypatch, capsys, name, value, says
):
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exited:
        parse_options(["--import", "app.tasks"])
    assert exited.value.code == 2
    assert says in capsys.readouterr().err


def test_an_empty_variable_is_no_value_and_import_stays_required(monkeypatch, capsys):
    monkeypatch.setenv("JOBTUI_WORKERS", "  ")
    assert parse_options(["--import", "x"]).workers is None
    with pytest.raises(SystemExit):
        parse_options([])
    assert "--import" in capsys.readouterr().err
    assert env_name("--max-memory-per-worker") == "JOBTUI_MAX_MEMORY_PER_WORKER"


@pytest.mark.parametrize(("value", "expected"), [("yes", True), ("1", True), ("Off", False)])
def test_a_switch_takes_yes_or_no_from_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("JOBTUI_NOTIFY_RETRIES", value)
    assert parse_options(["--import", "x"]).notify_retries is expected
    assert parse_options(["--import", "x", "--notify-retries"]).notify_retries is True


def test_a_switch_refuses_anything_else(monkeypatch, capsys):
    monkeypatch.setenv("JOBTUI_NOTIFY_RETRIES", "maybe")
    with pytest.raises(SystemExit):
        parse_options(["--import", "x"])
    assert "JOBTUI_NOTIFY_RETRIES='maybe': expected 1/0, true/false" in capsys.readouterr().err


def test_default_options_and_the_notify_hook_come_from_flags_or_the_environment(monkeypatch):
    """--default-max-retries, --default-retry-delay, --default-timeout and --notify-hook
    (issue 13): the supervisor's defaults for what neither a job nor its task set."""
    monkeypatch.setenv("JOBTUI_DEFAULT_MAX_RETRIES", "0")
    monkeypatch.setenv("JOBTUI_DEFAULT_RETRY_DELAY", "2.5")
    monkeypatch.setenv("JOBTUI_NOTIFY_HOOK", "app.alerts:page")
    config = config_from_args(parse_options(["--import", "app", "--default-timeout", "30"]))
    assert (config.default_max_retries, config.default_retry_delay_s) == (0, 2.5)
    assert (config.default_timeout_s, config.notify_hook) == (30, "app.alerts:page")
    plain = config_from_args(parse_options(["--import", "app", "--default-max-retries", "4"]))
    assert (plain.default_max_retries, plain.notify_hook) == (4, "app.alerts:page")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--default-max-retries", "-1"], "--default-max-retries must be >= 0"),
        (["--default-retry-delay", "-2"], "--default-retry-delay must be >= 0"),
        (["--notify-hook", "app.alerts.page"], "--notify-hook takes MODULE:FUNCTION"),
    ],
)
def test_bad_defaults_and_hooks_are_refused(args, says):
    from jobtui.models.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=says):
        config_from_args(parse_options(["--import", "app", *args]))


def test_task_settings_resolve_the_task_then_the_supervisor_then_built_in():
    from jobtui.models.retry import DEFAULT_RETRY_DELAY_S
    from jobtui.registry import Task, TaskRegistry
    from jobtui.supervisor.catalog import TaskSettings

    registry = TaskRegistry()
    registry.register(Task(func=print, name="own", defaults={"max_retries": 0, "retry_delay": 1}))
    registry.register(Task(func=len, name="bare"))
    args = ["--import", "app", "--default-max-retries", "5", "--default-timeout", "7"]
    settings = TaskSettings(registry, config_from_args(parse_options(args)))
    assert (settings.policy("own").max_retries, settings.policy("own").delay_s) == (0, 1)
    bare = settings.policy("bare")
    assert (bare.max_retries, bare.delay_s) == (5, DEFAULT_RETRY_DELAY_S)
    assert settings.timeouts == {"own": 7, "bare": 7} and settings.policy("unknown") is None
    built_in = TaskSettings(registry, config_from_args(parse_options(["--import", "app"])))
    assert built_in.policy("bare").max_retries == 3 and built_in.timeouts["bare"] is None


def test_max_crashes_comes_from_the_task_then_the_flag_or_environment(monkeypatch):
    from jobtui.registry import Task, TaskRegistry, task
    from jobtui.supervisor.catalog import TaskSettings

    registry = TaskRegistry()
    registry.register(Task(func=print, name="own", max_crashes=5))
    registry.register(Task(func=len, name="bare"))
    built_in = TaskSettings(registry, config_from_args(parse_options(["--import", "app"])))
    assert (built_in.crash_limit("own"), built_in.crash_limit("bare")) == (5, 2)
    assert built_in.crash_limit("not-ours") == 2
    flag = config_from_args(parse_options(["--import", "app", "--max-crashes", "0"]))
    assert TaskSettings(registry, flag).crash_limit("bare") == 0  # never quarantined
    monkeypatch.setenv("JOBTUI_MAX_CRASHES", "4")
    assert config_from_args(parse_options(["--import", "app"])).max_crashes == 4
    assert registry.get("own").registered_defaults == {"max_crashes": 5}  # the catalog's
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(TypeError, match="max_crashes"):
            task(max_crashes=bad)(len)


def test_autoscale_gives_queues_their_own_workers_under_a_ceiling(monkeypatch):
    args = ["--import", "app", "--autoscale", "emails=1:8", "--queue", "default=2",
            "--workers", "10", "--autoscale-wait", "2", "--autoscale-idle", "9"]  # fmt: skip
    config = config_from_args(parse_options(args))
    assert [(g.label, g.size) for g in config.groups] == [("emails", 1), ("default", 2)]
    assert (config.autoscale, config.max_workers) == ((("emails", 1, 8),), 10)
    assert (config.autoscale_wait_s, config.autoscale_idle_s) == (2, 9)
    started = config_from_args(parse_options(
        ["--import", "app", "--autoscale", "emails=1:8", "--queue", "emails=3"]))  # fmt: skip
    assert [(g.label, g.size) for g in started.groups] == [("emails", 3)]
    assert started.max_workers == 0  # no --workers: only the MAXes bound it
    monkeypatch.setenv("JOBTUI_AUTOSCALE", "a=0:2, b=1:1")
    both = config_from_args(parse_options(["--import", "app"]))
    assert [(g.label, g.size) for g in both.groups] == [("a", 0), ("b", 1)]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--autoscale", "emails"], "QUEUE=MIN:MAX"),
        (["--autoscale", "emails=3:2"], "QUEUE=MIN:MAX"),
        (["--autoscale", "emails=0:0"], "QUEUE=MIN:MAX"),
        (["--autoscale", "emails=a:b"], "QUEUE=MIN:MAX"),
        (["--autoscale", "e=1:2", "--autoscale", "e=1:3"], "names queue 'e' twice"),
        (["--autoscale", "e=1:2", "--queue", "other"], "every queue has workers of its own"),
        (["--autoscale", "e=1:2", "--queue", "e=5"], "outside --autoscale e=1:2"),
        (["--autoscale", "e=2:4", "--queue", "d=2", "--workers", "3"], "below the 4 workers"),
        (["--max-crashes", "-1"], "--max-crashes must be >= 0"),
    ],
)
def test_bad_autoscale_and_crash_options_are_refused(args, says):
    from jobtui.models.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=says):
        config_from_args(parse_options(["--import", "app", *args]))


def test_max_log_bytes_from_the_command_line_or_the_environment(monkeypatch):
    import pytest

    from jobtui.models.errors import ConfigurationError

    assert config_from_args(parse_options(["--import", "x"])).max_log_bytes == 1024 * 1024
    monkeypatch.setenv("JOBTUI_MAX_LOG_BYTES", "4096")
    assert config_from_args(parse_options(["--import", "x"])).max_log_bytes == 4096
    given = parse_options(["--import", "x", "--max-log-bytes", "0"])
    assert config_from_args(given).max_log_bytes == 0  # keeps nothing, counts everything
    with pytest.raises(ConfigurationError, match="--max-log-bytes must be >= 0"):
        config_from_args(parse_options(["--import", "x", "--max-log-bytes", "-1"]))


def test_priority_aging_comes_from_the_flag_or_the_environment(monkeypatch):
    from jobtui.models.errors import ConfigurationError

    assert config_from_args(parse_options(["--import", "m"])).priority_aging_s is None
    config = config_from_args(parse_options(["--import", "m", "--priority-aging", "10m"]))
    assert config.priority_aging_s == 600.0
    monkeypatch.setenv("JOBTUI_PRIORITY_AGING", "90s")
    assert config_from_args(parse_options(["--import", "m"])).priority_aging_s == 90.0
    with pytest.raises(ConfigurationError, match="--priority-aging"):
        config_from_args(parse_options(["--import", "m", "--priority-aging", "soonish"]))
    served = config_from_args(parse_options(["--import", "m", "--queue", "a=1", "--queue", "b=2"]))
    assert served.served_queues == ("a", "b")
    assert config_from_args(parse_options(["--import", "m"])).served_queues is None
