"""The integrations cost nothing to applications that do not use them: ``import jobtui``
and an ordinary enqueue import neither SQLAlchemy nor Django (nor the integrations)."""

from __future__ import annotations

import subprocess
import sys


def test_plain_enqueue_imports_no_framework(tmp_path):
    code = f"""
import sys, jobtui
jobtui.enqueue("t.x", database="sqlite:///{tmp_path / "jobs.db"}")
bad = sorted(m for m in sys.modules
             if m.split(".")[0] in ("sqlalchemy", "django") or m.startswith("jobtui.integrations"))
print(bad)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
