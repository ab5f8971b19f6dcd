"""Job (and batch) ids as a person or a script types them: whole, or a piece of one.

Ids are UUIDv7 strings (``models/ids.py``): 36 characters, hex digits with dashes at
fixed places, the first twelve digits a millisecond timestamp. The console shows the
last 8 hex digits (``tui.formatting.short_id``), so that is what an operator copies.
Every command that takes ids accepts

- the whole id, with or without its dashes;
- any unique *prefix* or *suffix* of 8 or more hex digits (dashes optional, where they
  fall in the full id): the console's short id is a suffix.

A piece that matches more than one id is refused naming the matches, never guessed.
Fewer than 8 digits is refused too: a prefix that short is a 65-second slice of time,
and a suffix that short collides in a few tens of thousands of jobs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import peewee

from jobtui.models.errors import JobNotFound

TEMPLATE = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
HEX_DIGITS = 32
MIN_DIGITS = 8
#: how many matches an ambiguous piece names
SHOWN_MATCHES = 5
#: pieces per suffix scan: one pass over the id index answers this many at once
SUFFIXES_PER_SCAN = 100

_HEX = re.compile(r"[0-9a-f]+")


def _digits(text: str) -> str | None:
    """The hex digits of ``text`` (lower case, dashes dropped), or None if it is not hex."""
    digits = text.strip().lower().replace("-", "")
    return digits if _HEX.fullmatch(digits) else None


def _dashed_prefix(digits: str, template: str = TEMPLATE) -> str:
    """``digits`` as the start of a full id, its dashes where the id has them."""
    out, taken = [], 0
    for slot in template:
        if taken == len(digits):
            break
        if slot == "-":
            out.append("-")
        else:
            out.append(digits[taken])
            taken += 1
    return "".join(out)


def _dashed_suffix(digits: str) -> str:
    """``digits`` as the end of a full id, its dashes where the id has them."""
    return _dashed_prefix(digits[::-1], TEMPLATE[::-1])[::-1]


def _full(digits: str) -> str:
    return _dashed_prefix(digits)


def _prefix_bounds(prefix: str) -> tuple[str, str]:
    """The lowest and highest full ids starting with ``prefix``: a BETWEEN on these is a
    range scan of the primary key. Padding to the full shape (rather than comparing with
    ``prefix`` and its successor) keeps both bounds in the ids' own alphabet, so the range
    is right under any collation (PostgreSQL's locale collations skip dashes)."""
    rest = TEMPLATE[len(prefix) :]
    return prefix + rest.replace("x", "0"), prefix + rest.replace("x", "f")


def _refuse_ambiguous(text: str, noun: str, matches: Sequence[str]) -> None:
    shown = ", ".join(sorted(matches)[:SHOWN_MATCHES])
    more = "" if len(matches) <= SHOWN_MATCHES else f" and {len(matches) - SHOWN_MATCHES} more"
    raise JobNotFound(f"{noun} id {text!r} is ambiguous: it matches {shown}{more}")


def resolve_ids(
    texts: Sequence[str], *, model: type[peewee.Model] | None = None, noun: str = "job"
) -> list[str]:
    """The full ids for what was typed, in order (JobNotFound names the first piece that
    matches nothing, or more than one id).

    Cost: whole ids are one ``IN`` look-up. A prefix is a range scan of the primary key
    (``BETWEEN`` two full-length bounds): cheap at any size. A suffix cannot use an index:
    ``id LIKE '%suffix'`` reads every id (SQLite scans a covering index, PostgreSQL the
    table): measured 0.13 s on SQLite and 0.32 s on PostgreSQL per million jobs, on a
    loaded 2-core machine; one scan serves up to 100 pieces at once. Every piece is looked
    up both ways, so a prefix of one job that is also the suffix of another is refused as
    ambiguous rather than resolved to whichever was looked up first.
    """
    if model is None:
        from jobtui.models.job import Job

        model = Job
    key = model._meta.primary_key
    wanted: list[tuple[str, str]] = []  # (typed, digits)
    for text in texts:
        digits = _digits(text)
        if digits is None:
            raise JobNotFound(f"no {noun} {text} (an id is hex digits, with or without dashes)")
        if len(digits) > HEX_DIGITS:
            raise JobNotFound(f"no {noun} {text} (an id has {HEX_DIGITS} hex digits)")
        if len(digits) < MIN_DIGITS:
            raise JobNotFound(
                f"{noun} id {text!r} is too short: give the whole id, or {MIN_DIGITS} or "
                "more of its hex digits from its start or its end (the console shows its "
                f"last {MIN_DIGITS})"
            )
        wanted.append((text, digits))

    whole = [_full(d) for _, d in wanted if len(d) == HEX_DIGITS]
    found_whole: set[str] = set()
    for start in range(0, len(whole), 500):
        part = whole[start : start + 500]
        found_whole |= {row[0] for row in model.select(key).where(key.in_(part)).tuples()}

    pieces = sorted({d for _, d in wanted if len(d) < HEX_DIGITS})
    matches: dict[str, set[str]] = {d: set() for d in pieces}
    for digits in pieces:
        low, high = _prefix_bounds(_dashed_prefix(digits))
        rows = model.select(key).where(key.between(low, high)).limit(SHOWN_MATCHES + 1)
        matches[digits] |= {row[0] for row in rows.tuples()}
    for start in range(0, len(pieces), SUFFIXES_PER_SCAN):
        part = {_dashed_suffix(d): d for d in pieces[start : start + SUFFIXES_PER_SCAN]}
        condition = None
        for suffix in part:
            # LIKE spelt out: Peewee turns its own LIKE operator into GLOB on SQLite
            like = peewee.NodeList((key, peewee.SQL("LIKE"), peewee.Value("%" + suffix)))
            condition = like if condition is None else condition | like
        limit = (SHOWN_MATCHES + 1) * len(part)
        for (job_id,) in model.select(key).where(condition).limit(limit).tuples():
            for suffix, digits in part.items():
                if job_id.endswith(suffix):
                    matches[digits].add(job_id)

    out = []
    for text, digits in wanted:
        if len(digits) == HEX_DIGITS:
            full = _full(digits)
            if full not in found_whole:
                raise JobNotFound(f"no {noun} {text}")
            out.append(full)
            continue
        found = matches[digits]
        if not found:
            raise JobNotFound(f"no {noun} {text} (no id starts or ends with it)")
        if len(found) > 1:
            _refuse_ambiguous(text, noun, sorted(found))
        out.append(next(iter(found)))
    return out


def resolve_id(text: str, *, model: type[peewee.Model] | None = None, noun: str = "job") -> str:
    """The full id for one typed id or piece of one (see ``resolve_ids``)."""
    return resolve_ids([text], model=model, noun=noun)[0]


__all__ = ["MIN_DIGITS", "resolve_id", "resolve_ids"]
