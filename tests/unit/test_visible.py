"""The one helper that makes job text safe for a terminal (models/visible.py), over every
hostile string job text can carry (/work/shared/data/hostile-text.json)."""

from __future__ import annotations

import json

import pytest
from hostile import HOSTILE, PWNED, acting_chars

from jobtui.models.visible import (
    HIDDEN_CODES,
    folded_line,
    json_for_terminal,
    visible,
    visible_line,
)


def test_the_hidden_set_is_every_control_and_bidi_override():
    expected = {*range(0x20), 0x7F, *range(0x80, 0xA0), *range(0x202A, 0x202F),
                *range(0x2066, 0x206A), 0x2028, 0x2029} - {0x0A}  # fmt: skip
    assert HIDDEN_CODES == expected


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_no_hostile_character_survives(name):
    text = HOSTILE[name]
    assert acting_chars(visible_line(text)) == ""
    assert acting_chars(folded_line(text)) == ""
    assert acting_chars(visible(text).replace("\n", "")) == ""
    assert "\n" not in visible_line(text) and "\n" not in folded_line(text)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_json_for_terminal_round_trips_exactly(name):
    value = {"error": HOSTILE[name], "nested": [HOSTILE[name]]}
    document = json_for_terminal(json.dumps(value, ensure_ascii=False, indent=2))
    assert json.loads(document) == value
    assert acting_chars(document.replace("\n", "")) == ""


def test_the_issue_string_reads_as_what_it_is():
    assert visible_line(PWNED) == "␛[31mRED␛[0m [red]x[/red] ␛]0;PWNED␇ ␛[2J clear"
    assert visible_line("\x9b31m") == "\\x9b31m"
    assert visible_line("invoice_\u202egnp.exe") == "invoice_\\u202egnp.exe"
    assert visible_line("a\x7fb\x00c") == "a␡b␀c"


def test_line_breaks_stay_in_multi_line_text_and_show_on_one_line():
    assert visible("line1\nline2\r\nline3\rX\ty") == "line1\nline2\nline3␍X␉y"
    assert visible_line("line1\nline2\r\nline3") == "line1␤line2␍␤line3"
    assert folded_line("line1\nline2\r\n  line3\tx") == "line1 line2 line3 x"


def test_ordinary_text_is_untouched():
    for text in ("任務失敗 ジョブ", "👨\u200d👩\u200d👧 done", "[b]x[/b] $v", "\\ud800", "héllo"):
        assert visible(text) == visible_line(text) == folded_line(text) == text
    assert visible(None) == visible_line(None) == "" and visible_line(42) == "42"


def test_notifications_show_job_text_in_their_one_line_and_subject(monkeypatch):
    """The webhook's ``text`` and the e-mail's subject are lines for people: the job's error
    in them is visible (a CR/LF in a subject would even make EmailMessage refuse it); the
    payload's fields and the e-mail body (JSON) keep it exact."""
    import smtplib

    from jobtui.supervisor import notify

    error = PWNED + "\r\nBcc: victim@example.invalid"
    payload = {"event": "failed", "task": "t.\x1b[2Jx", "queue": "q", "attempts": 1,
               "error": error, "error_type": "RuntimeError", "job_id": "j1"}  # fmt: skip
    text = notify.summary(payload)
    assert acting_chars(text) == "" and "␛]0;PWNED␇ ␛[2J clear␍␤Bcc:" in text
    sent = []

    class FakeSMTP:
        def __init__(self, *args, **kwargs) -> None:
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            pass

        def send_message(self, message) -> None:
            sent.append(message)

    monkeypatch.setattr(smtplib, "SMTP", FakeSMTP)
    settings = notify.NotifySettings(email_to=("ops@example.invalid",), smtp_url="smtp://h")
    notify.send_email(settings, payload)
    subject = sent[0]["Subject"]
    assert acting_chars(subject) == "" and subject.startswith("[jobtui] job t.␛[2Jx failed: ")
    assert json.loads(sent[0].get_content())["error"] == error


def test_a_lone_surrogate_is_shown_and_round_trips_through_json():
    """JSON parameters can carry one ("\\ud800"); no terminal encoding can print it."""
    value = {"bad": "x\ud800y"}
    document = json_for_terminal(json.dumps(value, ensure_ascii=False))
    document.encode("utf-8")  # printable
    assert json.loads(document) == value
    assert visible_line("x\ud800y") == "x\\ud800y"
