"""The example's one task: build a report page by page, reporting progress as it goes.

Run its supervisor with ``jobtui-supervisor --import tasks`` from this folder."""

from __future__ import annotations

import os
import time

from jobtui import current_job, task

#: How long each page takes (the test makes it short).
PAGE_S = float(os.environ.get("JOBTUI_EXAMPLE_PAGE_S", "0.2"))


@task(name="reports.build", max_retries=1)
def build_report(report_id: int, pages: int) -> dict:
    for page in range(1, pages + 1):
        time.sleep(PAGE_S)
        current_job().progress(100 * page / pages, f"page {page} of {pages}")
    return {"report": report_id, "pages": pages}
