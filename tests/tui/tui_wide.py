"""Fixed data for the layout tests: a long error, a long progress message and 6-digit
counts, on top of tui_fakes' fixed data and clock (so the snapshots stay deterministic)."""

from __future__ import annotations

from dataclasses import replace

from tui_fakes import FIXED_NOW, JOBS, WORKERS, StaticSource

from jobtui.tui.snapshot import WorkersView

#: Long enough to be cut even at 200 columns; its end says how much of it is shown.
LONG_ERROR = ("upstream inventory service answered 503 Service Unavailable after 3 retries "
              "while syncing warehouse east-2 (batch 17 of 40, 12,345 SKUs); the last "
              "response body was empty; END-OF-ERROR")  # fmt: skip
LONG_PROGRESS = "rendering page 2 of 4 of the quarterly report for the northern region"

WIDE_JOBS = (
    replace(JOBS[0], progress_message=LONG_PROGRESS),
    *JOBS[1:5],
    replace(JOBS[5], error_type="ConnectionError", error=LONG_ERROR),
    *JOBS[6:],
)
#: jobs done and failed past 100,000: the Workers view once cut them to ``119,``
BUSY_WORKERS = tuple(
    replace(w, jobs_done=119_999 + n, jobs_failed=104_857 if w.jobs_failed else 0)
    for n, w in enumerate(WORKERS)
)


class WideSource(StaticSource):
    """StaticSource with the long texts and big counts above."""

    def __init__(self) -> None:
        super().__init__(jobs=WIDE_JOBS)

    def workers_view(self) -> WorkersView:
        self._check("workers_view")
        return WorkersView(now=FIXED_NOW, rows=BUSY_WORKERS)
