"""The console's filter grammar, typed after ``/``: a pure parser, no database, no Textual.

    state:failed queue:email task:send_* worker:w-3 pri:>5 age:>10m !queue:low smtp

- ``key:value`` terms; ``!`` in front negates one (``!queue:low``). Values may be quoted
  (``queue:"big jobs"``) and comma-separated (``state:failed,cancelled``); the same key given
  twice widens the match (``queue:a queue:b`` is either queue).
- ``user``, ``tag`` and ``ref`` find the jobs an application labelled: ``user:42`` (the
  job's user_id, wildcards allowed), ``tag:urgent`` (one of its tags), ``ref:order:42``
  (reference type and id; ``ref:order`` any id of that type).
- ``state`` (or ``status``) takes the statuses, a unique prefix of one (``state:fail``) or
  an alias (``dead``, ``done``, ``queued``, ``canceled``); ``queue``, ``task`` and ``worker``
  take names with ``*`` and ``?`` wildcards; ``pri`` takes ``>5``, ``>=high``, ``<0``, ``<=``,
  ``=5``, ``5`` or a range ``1..5``; ``age`` takes ``>10m`` (older than ten minutes) or
  ``<1h30m`` / ``1h30m`` (newer), units s, m, h, d, w.
- Any other word is free text, matched anywhere in the id, task, queue, title or error
  (every word must match; ``!word`` excludes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

STATES = ("pending", "waiting", "running", "retrying", "completed", "failed", "cancelled")
STATE_ALIASES = {
    "dead": "failed", "error": "failed", "errored": "failed", "done": "completed",
    "ok": "completed", "success": "completed", "queued": "pending", "ready": "pending",
    "canceled": "cancelled", "active": "running", "busy": "running", "blocked": "waiting",
}  # fmt: skip
KEY_ALIASES = {
    "state": "state", "status": "state", "s": "state", "queue": "queue", "q": "queue",
    "task": "task", "type": "task", "t": "task", "worker": "worker", "w": "worker",
    "pri": "pri", "priority": "pri", "p": "pri", "age": "age", "user": "user",
    "user_id": "user", "tag": "tag", "tags": "tag", "ref": "ref", "reference": "ref",
}  # fmt: skip
UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_COMPARISON = re.compile(r"^(>=|<=|>|<|=)?\s*(.+)$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw]?)")


class FilterError(ValueError):
    """The filter text does not parse; the message says which term and why."""


@dataclass(frozen=True)
class Comparison:
    """``value op bound``: op is one of > >= < <= =."""

    op: str
    bound: float

    def matches(self, value: float) -> bool:
        return {
            ">": value > self.bound, ">=": value >= self.bound, "<": value < self.bound,
            "<=": value <= self.bound, "=": value == self.bound,
        }[self.op]  # fmt: skip


@dataclass(frozen=True)
class JobFilter:
    """A parsed filter. Empty tuples mean "no constraint"."""

    states: tuple[str, ...] = ()
    not_states: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()
    not_queues: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    not_tasks: tuple[str, ...] = ()
    workers: tuple[str, ...] = ()
    not_workers: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    not_users: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    not_tags: tuple[str, ...] = ()
    refs: tuple[str, ...] = ()  # "type" or "type:id"
    not_refs: tuple[str, ...] = ()
    priority: tuple[Comparison, ...] = ()
    age_s: tuple[Comparison, ...] = ()
    text: tuple[str, ...] = ()
    not_text: tuple[str, ...] = ()
    source: str = field(default="", compare=False)

    @property
    def is_empty(self) -> bool:
        return not any(getattr(self, name) for name in _TERM_FIELDS)

    def effective_states(self) -> tuple[str, ...]:
        """The statuses a matching job may be in, in the canonical order."""
        allowed = set(self.states or STATES) - set(self.not_states)
        return tuple(s for s in STATES if s in allowed)

    def describe(self) -> str:
        """A canonical text of this filter (what the console shows once it is applied)."""
        parts: list[str] = []
        for key, positive, negative in (("state", self.states, self.not_states),
                                        ("queue", self.queues, self.not_queues),
                                        ("task", self.tasks, self.not_tasks),
                                        ("worker", self.workers, self.not_workers),
                                        ("user", self.users, self.not_users),
                                        ("tag", self.tags, self.not_tags),
                                        ("ref", self.refs, self.not_refs)):  # fmt: skip
            if positive:
                parts.append(f"{key}:{','.join(_quote(v) for v in positive)}")
            parts += [f"!{key}:{_quote(v)}" for v in negative]
        parts += [f"pri:{c.op}{_number(c.bound)}" for c in self.priority]
        parts += [f"age:{c.op}{format_duration(c.bound)}" for c in self.age_s]
        parts += [_quote(t) for t in self.text] + [f"!{_quote(t)}" for t in self.not_text]
        return " ".join(parts)

    def with_terms(self, text: str) -> JobFilter:
        """This filter and the terms of ``text`` together (both must match)."""
        return parse_filter(f"{self.source} {text}".strip())


_TERM_FIELDS = ("states", "not_states", "queues", "not_queues", "tasks", "not_tasks", "workers",
                "not_workers", "users", "not_users", "tags", "not_tags", "refs", "not_refs",
                "priority", "age_s", "text", "not_text")  # fmt: skip


def _quote(value: str) -> str:
    return value if value and not re.search(r"[\s,\"']", value) else '"' + value + '"'


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def format_duration(seconds: float) -> str:
    """``90`` -> ``1m30s``: the shortest exact form in the grammar's units."""
    remaining = int(seconds)
    if remaining == 0:
        return "0s"
    out = ""
    for unit in ("w", "d", "h", "m", "s"):
        size = UNITS_S[unit]
        if remaining >= size:
            out += f"{remaining // size}{unit}"
            remaining %= size
    return out


def parse_duration(text: str) -> float:
    """``10m``, ``1h30m``, ``2d``, ``45`` (seconds) -> seconds."""
    text = text.strip().lower()
    if not text:
        raise FilterError("age needs a duration such as 10m, 2h or 1d")
    pos, total = 0, 0.0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if match is None:
            raise FilterError(f"bad duration {text!r}: use a number and s, m, h, d or w")
        total += float(match.group(1)) * UNITS_S[match.group(2) or "s"]
        pos = match.end()
    return total


def _comparisons(key: str, text: str, convert, default: str = "=") -> tuple[Comparison, ...]:
    if ".." in text:
        low, _, high = text.partition("..")
        return (Comparison(">=", convert(low)), Comparison("<=", convert(high)))
    match = _COMPARISON.match(text.strip())
    if match is None:
        raise FilterError(f"{key}: needs a value such as >5")
    op = match.group(1) or default
    if op == "=" and key == "age":
        raise FilterError("age: use >10m (older than) or <10m (newer than)")
    return (Comparison(op, convert(match.group(2))),)


def _priority(text: str) -> float:
    from jobtui.models.status import parse_priority

    try:
        return float(parse_priority(text))
    except ValueError as exc:
        raise FilterError(f"pri: {exc}") from None


def _age(text: str) -> float:
    return parse_duration(text)


def resolve_state(value: str) -> str:
    """A status name from a full name, an alias or a unique prefix."""
    lowered = value.strip().lower()
    if lowered in STATES:
        return lowered
    if lowered in STATE_ALIASES:
        return STATE_ALIASES[lowered]
    matches = [s for s in STATES if s.startswith(lowered)] if lowered else []
    if len(matches) == 1:
        return matches[0]
    raise FilterError(f"state: unknown state {value!r} (one of {', '.join(STATES)})")


def _split_words(text: str) -> list[tuple[str, bool]]:
    """Words split on whitespace, quotes grouping; each with whether it started quoted
    (after an optional ``!``): a quoted word is always free text. Backslashes are literal
    (error messages hold Windows paths)."""
    words: list[tuple[str, bool]] = []
    current: list[str] = []
    quote: str | None = None
    started_quoted = in_word = False
    for char in text:
        if quote is not None:
            if char == quote:
                quote = None
            else:
                current.append(char)
        elif char in "\"'":
            if not in_word or current in ([], ["!"]):
                started_quoted = True
            quote, in_word = char, True
        elif char.isspace():
            if in_word:
                words.append(("".join(current), started_quoted))
            current, in_word, started_quoted = [], False, False
        else:
            current.append(char)
            in_word = True
    if quote is not None:
        raise FilterError(f"unbalanced quotes: no closing {quote}")
    if in_word:
        words.append(("".join(current), started_quoted))
    return words


def parse_filter(text: str) -> JobFilter:
    """Parse ``text``; raises FilterError with a message fit for the console."""
    terms: dict[str, list] = {name: [] for name in _TERM_FIELDS}
    for word, quoted in _split_words(text or ""):
        negated = word.startswith("!") and len(word) > 1
        body = word[1:] if negated else word
        key, sep, value = body.partition(":")
        if quoted:
            sep = ""
        canonical = KEY_ALIASES.get(key.lower()) if sep else None
        if sep and key and canonical is None and re.fullmatch(r"[A-Za-z_]+", key):
            raise FilterError(
                f"unknown key {key!r}: use state, queue, task, worker, user, tag, ref, pri "
                "or age "
                '(quote text that holds a colon: "a: b")'
            )
        if canonical is None:
            terms["not_text" if negated else "text"].append(body)
            continue
        if not value.strip():
            raise FilterError(f"{key}: needs a value")
        if canonical in ("pri", "age"):
            if negated:
                raise FilterError(f"!{key}: negate a comparison by flipping it (< instead of >)")
            if canonical == "pri":
                terms["priority"] += _comparisons("pri", value, _priority)
            else:
                terms["age_s"] += _comparisons("age", value, _age, default="<")
            continue
        values = [v.strip() for v in value.split(",") if v.strip()]
        if canonical == "state":
            values = [resolve_state(v) for v in values]
        name = {"state": "states", "queue": "queues", "task": "tasks", "worker": "workers",
                "user": "users", "tag": "tags", "ref": "refs"}[canonical]  # fmt: skip
        bucket = terms[f"not_{name}" if negated else name]
        bucket += [v for v in values if v not in bucket]
    return JobFilter(**{k: tuple(v) for k, v in terms.items()}, source=(text or "").strip())


def glob_to_like(pattern: str) -> str | None:
    """A LIKE pattern (escape character ``\\``) for a glob with * or ?; None if none."""
    if "*" not in pattern and "?" not in pattern:
        return None
    out = []
    for char in pattern:
        if char in "\\%_":
            out.append("\\" + char)
        elif char == "*":
            out.append("%")
        elif char == "?":
            out.append("_")
        else:
            out.append(char)
    return "".join(out)


def escape_like(text: str) -> str:
    """``text`` as a literal inside a LIKE pattern (escape character ``\\``)."""
    return re.sub(r"([\\%_])", r"\\\1", text)
