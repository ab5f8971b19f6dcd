"""Metrics are optional: without --metrics-port nothing of them loads; with the flag and
without prometheus_client, and for ``jobtui metrics`` without it, a one-line error."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run(code: str, tmp_path) -> subprocess.CompletedProcess:
    env = {"JOBTUI_DATABASE": f"sqlite:///{tmp_path / 'jobs.db'}", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=60, env=env, cwd=tmp_path)  # fmt: skip


def test_the_supervisor_without_the_flag_loads_no_metrics(tmp_path):
    done = run("""
        import sys
        from jobtui.supervisor.main import config_from_args, parse_options
        from jobtui.supervisor import loop, workers, dispatch  # noqa: F401
        config_from_args(parse_options(["--import", "json"]))
        loaded = [m for m in sys.modules if "prometheus" in m or m.endswith(".metrics")]
        assert not loaded, loaded
        """, tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_the_flag_without_the_library_is_one_line(tmp_path):
    (tmp_path / "one_task.py").write_text("from jobtui import task\n\n@task\ndef t():\n    pass\n")
    done = run("""
        import sys; sys.modules["prometheus_client"] = None
        sys.path.insert(0, ".")
        from jobtui.supervisor.main import main
        sys.exit(main(["--import", "one_task", "--metrics-port", "9"]))
        """, tmp_path)  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "jobtui-supervisor: --metrics-port needs prometheus_client: pip install 'jobtui[metrics]'"
    ), done.stderr


def test_jobtui_metrics_without_the_library_is_one_line(tmp_path):
    done = run("""
        import sys; sys.modules["prometheus_client"] = None
        from jobtui.cli import main
        sys.exit(main(["metrics"]))
        """, tmp_path)  # fmt: skip
    assert done.returncode == 1
    assert done.stderr == (
        "jobtui: jobtui metrics needs prometheus_client: pip install 'jobtui[metrics]'\n"
    )
