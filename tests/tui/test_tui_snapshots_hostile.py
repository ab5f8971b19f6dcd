"""Snapshots of the console showing hostile job text (issue 12): escape sequences, C1 and
bidi overrides in errors, progress messages, titles, parameters, results and tracebacks
appear as visible characters (``␛[31m``, ``\\x9b``, ``\\u202e``), and the layout holds.

Fixed data, a fixed clock, no timers; regenerate with ``--snapshot-update``.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hostile import HOSTILE, PWNED
from tui_fakes import DETAIL, JOBS, StaticSource
from tui_helpers import before, static_app

from jobtui.tui.snapshot import DetailView, FailuresView

EVERY_CASE = "\n".join(f"{k}: {v}" for k, v in sorted(HOSTILE.items()) if k != "very_long")
HOSTILE_JOBS = (
    replace(JOBS[0], progress_message="\x1b[32mgreen\x1b[0m " + HOSTILE["osc_title"]),
    *JOBS[1:5],
    replace(JOBS[5], error_type="Runtime\x9bError", error=PWNED),
    *JOBS[6:],
)
HOSTILE_DETAIL = replace(
    DETAIL, row=HOSTILE_JOBS[5], title=PWNED, description=HOSTILE["bidi_override"],
    parameters={"args": [PWNED, HOSTILE["c1_csi"]], "kwargs": {"k": HOSTILE["bidi_isolate"]}},
    result={"r": PWNED}, traceback="Traceback (most recent call last):\n" + EVERY_CASE,
)  # fmt: skip


class HostileSource(StaticSource):
    """The fixed data, with hostile text in the failed job (sixth row) and a running one."""

    def __init__(self) -> None:
        super().__init__(jobs=HOSTILE_JOBS)

    def failures_view(self) -> FailuresView:
        view = super().failures_view()
        hostile = replace(view.groups[0], key="hostile", error_type="Runtime\x9bError",
                          message=PWNED, sample=PWNED, tasks=("tests.\x1b[2Jboom",))  # fmt: skip
        return replace(view, groups=(hostile, *view.groups[1:]))

    def job_detail(self, job_id: str) -> DetailView:
        view = super().job_detail(job_id)
        if view.job is not None and view.job.row.id == HOSTILE_DETAIL.row.id:
            return replace(view, job=HOSTILE_DETAIL)
        return view


TO_DETAIL = ["down"] * 5 + ["enter"]
SCREENS = {
    "jobs": [],
    "failures": ["4"],
    "overview": TO_DETAIL,
    "parameters": [*TO_DETAIL, "right_square_bracket"],
    "result": [*TO_DETAIL, "right_square_bracket", "right_square_bracket"],
    "traceback": [*TO_DETAIL, "t"],
}


@pytest.mark.parametrize("screen", list(SCREENS))
def test_hostile_text_is_shown_not_emitted(snap_compare, screen):
    assert snap_compare(static_app(HostileSource()), terminal_size=(120, 40),
                        run_before=before(SCREENS[screen]))  # fmt: skip
