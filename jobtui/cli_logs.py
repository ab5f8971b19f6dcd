"""``jobtui logs ID [-f] [--json]`` and ``jobtui stack ID [--json]``: see inside a job.

``logs`` prints what the job's task wrote (stdout, stderr, ``logging``), one line each
with its time and stream, every attempt in order; ``-f`` follows a job that has not
ended until it does. ``stack`` asks the job's supervisor for the live Python stack of
its worker (models/stacks.py). Job text is data: every line goes through
``visible_line`` (``--json`` through ``to_json``), so it cannot act on the terminal.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime

from jobtui.cli_format import to_json
from jobtui.models.visible import json_for_terminal, visible_line

FOLLOW_INTERVAL_S = 0.3


def add_logs_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("logs", help="a job's captured stdout, stderr and logging")
    p.add_argument("id")
    p.add_argument("-f", "--follow", action="store_true",
                   help="keep printing what a job that has not ended writes, until it ends")  # fmt: skip
    p.add_argument("--json", action="store_true", help="one JSON object a line")
    p.set_defaults(func=run_logs_command)
    p = sub.add_parser("stack", help="the live Python stack of a running job's worker")
    p.add_argument("id")
    p.add_argument("--timeout", type=float, default=10.0, metavar="S",
                   help="how long to wait for the answer (default 10)")  # fmt: skip
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_stack_command)


def format_time(at: float) -> str:
    """A line's time, UTC, to the millisecond."""
    moment = datetime.fromtimestamp(at, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def json_line(value: dict) -> str:
    """One JSON object on one line (JSON lines: ``-f --json`` streams them), with every
    character that could act on a terminal escaped (``json_for_terminal``)."""
    return json_for_terminal(json.dumps(value, ensure_ascii=False))


def run_logs_command(args: argparse.Namespace) -> int:
    from jobtui.cli_ids import resolve_id
    from jobtui.models import queries
    from jobtui.models.joblog import dropped_note, read_log
    from jobtui.models.status import FINAL

    job_id = resolve_id(args.id)
    status = queries.get_job(job_id).status
    cursor = (0, -1)
    shown_attempt = 0
    dropped: dict[int, tuple[int, int]] = {}
    while True:
        ended = status in FINAL  # read before the log: nothing written after it is missed
        while True:  # every page there is now
            page = read_log(job_id, after=cursor)
            if page.cursor == cursor:
                break
            cursor = page.cursor
            dropped.update(page.dropped)
            for line in page.lines:
                if args.json:
                    print(json_line({"attempt": line.attempt, "at": format_time(line.at),
                                     "stream": line.stream, "text": line.text}))  # fmt: skip
                    continue
                if line.attempt != shown_attempt:
                    if shown_attempt:
                        print(f"-- attempt {line.attempt} --")
                    shown_attempt = line.attempt
                print(f"{format_time(line.at)} {line.stream:<3} {visible_line(line.text)}")
            sys.stdout.flush()
        if not args.follow or ended:
            break
        time.sleep(FOLLOW_INTERVAL_S)
        status = queries.get_job(job_id).status
    for attempt, (lost, lost_lines) in sorted(dropped.items()):
        if args.json:
            print(
                json_line({"attempt": attempt, "dropped_bytes": lost, "dropped_lines": lost_lines})
            )
        else:
            print(f"attempt {attempt}: {dropped_note(lost, lost_lines)}")
    if shown_attempt == 0 and not dropped and not args.json:
        print(f"no output captured for job {job_id}", file=sys.stderr)
    return 0


def run_stack_command(args: argparse.Namespace) -> int:
    from jobtui.cli_ids import resolve_id
    from jobtui.models.stacks import format_stack, take_stack

    if args.timeout <= 0:
        from jobtui.cli_options import OptionError

        raise OptionError("--timeout must be > 0")
    job_id = resolve_id(args.id)
    answer = take_stack(job_id, timeout_s=args.timeout)
    if args.json:
        print(to_json(answer))
    else:
        for line in format_stack(answer):
            print(visible_line(line))
    return 1 if answer.get("error") else 0
