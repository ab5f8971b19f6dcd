"""Flow control in the chaos soak (chaos.py): some jobs carry a concurrency key and a rate
key, a fault turns a rate on the second queue on and off, and a watch checks meanwhile
that no key ever ran more than its limit and no rate passed its window.

The key limit and the key rate stay fixed through the soak, so their invariants are
exact: running jobs per key (the rows the claims count, a dead supervisor's orphans
included) never above ``KEY_LIMIT``; the rate's own record of its starts (the database's
clock) never more than ``KEY_RATE`` in any second.
"""

from __future__ import annotations

import json
import threading
from collections import Counter

KEY_LIMIT = 2
KEY_RATE = 20  # per second
RATE_KEY = "chaos-api"
KEYS = ("c1", "c2", "c3")


def flow_options(rng) -> dict:
    """Keys for one job of the soak: a concurrency key, a rate key, both or neither."""
    options = {}
    if rng.random() < 0.15:
        options["concurrency_key"] = rng.choice(KEYS)
    if rng.random() < 0.1:
        options["rate_key"] = RATE_KEY
    return options


class FlowWatch:
    """Sets the fixed limits, then samples the running keys and the rate's record every
    50 ms from its own connection (a cut connection is reopened on the next sample)."""

    def __init__(self) -> None:
        from jobtui.models.key_limits import set_key_limit
        from jobtui.models.rates import set_rate

        set_key_limit("key:c*", KEY_LIMIT)
        set_rate(f"key:{RATE_KEY}", f"{KEY_RATE}/s")
        self.peak: Counter = Counter()
        self.starts: dict[float, int] = {}
        self.samples = 0
        self.rated_queue = False
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def toggle_queue_rate(self, queue: str, rng) -> str:
        """The fault: a rate on ``queue`` (5 or 50 a second), or none."""
        from jobtui.models.rates import set_rate

        self.rated_queue = not self.rated_queue
        set_rate(queue, rng.choice(["5/s", "50/s"]) if self.rated_queue else None)
        return "queue rate set" if self.rated_queue else "queue rate lifted"

    def _sample(self) -> None:
        from jobtui.models.dialect import dialect_for
        from jobtui.models.key_limits import running_per_key
        from jobtui.models.store import get_database

        db = get_database()
        try:
            for key, n in running_per_key(db).items():
                self.peak[key] = max(self.peak[key], n)
            sql = dialect_for(db).sql("SELECT state FROM rates WHERE name = :name")
            row = db.execute_sql(sql, {"name": f"key:{RATE_KEY}"}).fetchone()
            if row and row[0]:
                self.starts.update((t, int(n)) for t, n in json.loads(row[0])["log"])
            self.samples += 1
        except Exception:  # noqa: BLE001 - the soak cuts connections: sample again later
            try:
                db.close()
            except Exception:  # noqa: BLE001
                pass

    def _run(self) -> None:
        while not self.stop.wait(0.05):
            self._sample()

    def finish(self) -> dict:
        """Stop sampling; the problems found (none: an empty list) and the figures."""
        self.stop.set()
        self.thread.join(10)
        from jobtui.models.rates import set_rate

        set_rate(f"key:{RATE_KEY}", None)  # the settle drains what is left at once
        problems = [f"key {k} ran {n} at once (limit {KEY_LIMIT})"
                    for k, n in self.peak.items() if n > KEY_LIMIT]  # fmt: skip
        times = sorted(self.starts)
        most = 0
        for t in times:
            most = max(most, sum(self.starts[u] for u in times if t <= u < t + 1.0))
        if most > KEY_RATE:
            problems.append(f"rate key {RATE_KEY}: {most} starts in one second ({KEY_RATE}/s)")
        figures = {"key peak": dict(self.peak), "rate starts": sum(self.starts.values()),
                   "rate peak/s": most, "samples": self.samples}  # fmt: skip
        return {"problems": problems, "figures": figures}
