"""Rate limits across every supervisor: at most N job starts per period for a queue, a task
or a rate key (``rates`` table; ``jobtui rate``, ``@task(rate_limit=)``, ``rate_key=``).

A rate ``N/period`` spreads starts one ``period / N`` apart (Celery's ``rate_limit`` is
that too, but per worker; here it holds for the fleet). A claim that comes late may catch
up the starts it missed, within ``CATCH_UP_S``, so the rate is used, not lost to timer
latency; an idle rate starts afresh with one start (no burst). Beside that schedule each rate keeps a log of its recent starts, and no claim
takes a start that would put more than N into any window of one period: the log is what
makes the bound exact, the schedule what spreads the starts.

Both are judged on the database's clock inside the claim's transaction (flow.py) and
written in it: on PostgreSQL the rate's row is locked for the claim, SQLite's write lock
serialises claims already. The state is one small JSON text per rate (``state``): the next
start's time and the log, merged to at most ``LOG_MAX`` entries (a merged entry takes the
later time: it counts a little longer, never less).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

import peewee

from .base import BaseModel, UTCDateTime, now_default

#: A claim may take, at once, the starts it missed during this long (at least one
#: interval, at most one period): timer and commit latency do not cost starts.
CATCH_UP_S = 0.25
LOG_MAX = 256
PERIODS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*(?:\.\d+)?)\s*([smhd])\s*$")
SCOPES = ("queue", "task", "key")


class Rate(BaseModel):
    """One rate: ``name`` is ``queue:NAME``, ``task:NAME`` or ``key:KEY``."""

    name = peewee.CharField(max_length=320, primary_key=True)
    max_starts = peewee.IntegerField(null=True)  # NULL: lifted by an operator (see declared)
    period_s = peewee.FloatField(null=True)
    state = peewee.TextField(null=True)  # JSON: {"next": epoch s, "log": [[epoch s, n], ...]}
    #: Set by a task's ``rate_limit=`` (upserted at each supervisor start); an operator's
    #: ``jobtui rate`` clears it, and a task's declaration never overrides an operator's.
    declared = peewee.BooleanField(default=False)
    updated_at = UTCDateTime(default=now_default)

    class Meta:
        table_name = "rates"


def parse_rate(text: str) -> tuple[int, float]:
    """``"10/s"``, ``"100/m"``, ``"5/10s"``, ``"1000/h"`` -> (starts, period in seconds)."""
    match = _RATE.match(str(text)) if text is not None else None
    if match is None:
        raise ValueError(f"a rate is N/s, N/m, N/h or N/d (like 10/s or 100/m), not {text!r}")
    count, many, unit = int(match.group(1)), match.group(2), match.group(3)
    period = (float(many) if many else 1.0) * PERIODS[unit]
    if count < 1 or period <= 0:
        raise ValueError(f"a rate allows at least one start per period, not {text!r}")
    return count, period


def format_rate(count: int | None, period_s: float | None) -> str:
    """The short form an operator typed: ``10/s``, ``100/m``, ``5/10s``."""
    if count is None or period_s is None:
        return "none"
    for unit, seconds in (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if period_s == seconds:
            return f"{count}/{unit}"
    for unit, seconds in (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if period_s >= seconds and (period_s / seconds).is_integer():
            return f"{count}/{int(period_s / seconds)}{unit}"
    return f"{count}/{period_s:g}s"


def scope_name(name: str) -> str:
    """Check ``queue:NAME`` / ``task:NAME`` / ``key:KEY`` (a bare name is a queue's)."""
    kind, sep, rest = str(name).partition(":")
    if not sep:
        kind, rest = "queue", str(name)
    if kind not in SCOPES or not rest or len(rest) > 300:
        raise ValueError(
            f"a rate names queue:NAME, task:NAME or key:KEY (or a queue), not {name!r}"
        )
    return f"{kind}:{rest}"


def describe_scope(name: str) -> str:
    """``queue:emails`` -> ``queue emails`` (the held-back reason's words)."""
    kind, _, rest = name.partition(":")
    return f"{kind} {rest}"


@dataclass
class Window:
    """A rate's state in a claim: what may start now, and what was spent."""

    count: int
    period_s: float
    next_at: float  # epoch seconds; -inf when it never started
    log: list[list[float]]  # [[epoch s, starts], ...], oldest first

    @classmethod
    def load(cls, count: int, period_s: float, state: str | None) -> Window:
        try:
            data = json.loads(state) if state else {}
            log = [[float(t), float(n)] for t, n in data.get("log") or []]
            nxt = data.get("next")
            nxt = -math.inf if nxt is None else float(nxt)
        except (ValueError, TypeError, AttributeError):
            log, nxt = [], -math.inf  # a damaged state costs one window, never the claim
        return cls(int(count), float(period_s), nxt, log)

    @property
    def interval_s(self) -> float:
        return self.period_s / self.count

    def _base(self, now: float) -> float:
        """Where this claim's starts are counted from: the schedule's next start while
        the schedule runs (a claim late by less than the catch-up takes the starts it
        missed), or ``now`` after a pause (an idle rate starts afresh, one start, no
        burst: a burst right after a full window's starts would pass the rate)."""
        slack = min(self.period_s, max(self.interval_s, CATCH_UP_S))
        return self.next_at if now - self.next_at <= slack else now

    def allowance(self, now: float) -> int:
        """How many may start at ``now``: the schedule's due starts, within the window."""
        if now < self.next_at:
            return 0
        due = int((now - self._base(now)) / self.interval_s + 1e-9) + 1
        in_window = sum(n for t, n in self.log if t > now - self.period_s)
        return max(0, min(due, self.count - int(in_window)))

    def spend(self, now: float, starts: int) -> None:
        if starts <= 0:
            return
        self.next_at = self._base(now) + starts * self.interval_s
        log = [e for e in self.log if e[0] > now - self.period_s]
        if log and log[-1][0] >= now:
            log[-1][1] += starts
        else:
            log.append([now, float(starts)])
        self.log = _merge(log, self.period_s)

    def free_at(self, now: float) -> float:
        """When the next start is allowed (epoch seconds; ``now`` if it is)."""
        at = max(now, self.next_at)
        live = [e for e in self.log if e[0] > now - self.period_s]
        total = sum(n for _, n in live)
        for t, n in live:  # oldest first: the window frees as they age out
            if total < self.count:
                break
            total -= n
            at = max(at, t + self.period_s)
        return at

    def dumps(self) -> str:
        nxt = None if self.next_at == -math.inf else round(self.next_at, 6)
        return json.dumps({"next": nxt, "log": [[round(t, 6), int(n)] for t, n in self.log]})


def _merge(log: list[list[float]], period_s: float) -> list[list[float]]:
    """At most LOG_MAX entries: neighbours closer than period/LOG_MAX merge at the later
    time (they then count a little longer than they should, never shorter)."""
    if len(log) <= LOG_MAX:
        return log
    width = period_s / LOG_MAX
    merged: list[list[float]] = []
    for t, n in log:
        if merged and t - merged[-1][0] < width:
            merged[-1] = [t, merged[-1][1] + n]
        else:
            merged.append([t, n])
    return merged[-LOG_MAX:] if len(merged) > LOG_MAX else merged


# ---------------------------------------------------------------- settings


def write_settings(write, models: list, db: peewee.Database | None) -> None:
    """Run ``write(db)`` in a write transaction with ``models`` bound to ``db``, retried
    while the database is locked (the settings of rates.py and key_limits.py)."""
    from .claims import with_lock_retry
    from .dialect import dialect_for
    from .store import get_database

    db = get_database(db)

    def run() -> None:
        with db.bind_ctx(models), dialect_for(db).write_transaction(db):
            write(db)

    with_lock_retry(run)


def set_rate(
    name: str, rate: str | None, *, declared: bool = False, db: peewee.Database | None = None
) -> str:
    """Set (``"10/s"``) or lift (None, ``"none"``) the rate of ``queue:NAME``,
    ``task:NAME`` or ``key:KEY`` (a bare name is a queue); returns the scope's full name.

    ``declared``: a task's ``rate_limit=`` (never overrides an operator's setting)."""
    from .clock import utcnow

    scope = scope_name(name)
    lifted = rate is None or str(rate).strip().lower() == "none"
    count, period = (None, None) if lifted else parse_rate(str(rate))

    def write(db: peewee.Database) -> None:
        row = Rate.get_or_none(Rate.name == scope)
        if declared and row is not None and not row.declared:
            return  # the operator's word stands
        if row is None:
            if lifted:
                return
            Rate.create(name=scope, max_starts=count, period_s=period, declared=declared,
                        updated_at=utcnow())  # fmt: skip
        elif lifted and (declared or not row.declared):
            row.delete_instance()
        else:
            Rate.update(max_starts=count, period_s=period, declared=declared,
                        updated_at=utcnow()).where(Rate.name == scope).execute()  # fmt: skip

    write_settings(write, [Rate], db)
    return scope


def list_rates(db: peewee.Database | None = None) -> list[dict]:
    """Every rate, for ``jobtui rate`` and ``status --json``: name, rate, next start."""
    from .clock import iso_utc
    from .store import get_database

    db = get_database(db)
    out = []
    with db.bind_ctx([Rate]):
        for row in Rate.select().order_by(Rate.name):
            item = {"name": row.name, "rate": format_rate(row.max_starts, row.period_s),
                    "max_starts": row.max_starts, "period_s": row.period_s,
                    "declared": bool(row.declared), "updated_at": iso_utc(row.updated_at)}  # fmt: skip
            out.append(item)
    return out
