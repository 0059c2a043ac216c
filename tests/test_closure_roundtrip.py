"""Over real SMTP: the engineer's `#status resolved` reply -> the customer gets the
answer and the closure email with the survey -> the customer answers "5 - great"
-> the score is stored against the engineer."""

from __future__ import annotations

from sqlalchemy import select

from storage.models import SurveyResponse, Ticket
from tests.closure_kit import ALICE, CUSTOMER, text_of
from tests.conftest import wait_for
from tests.mail import build, send

SUPPORT = "support@support.example.test"


def _mails_to(relay, rcpt):
    return [m for m in relay.messages if rcpt in m["to"]]


def _parse(m):
    from tests.mail import parse

    return parse(m["raw"])


def test_engineer_resolves_by_mail_customer_rates_by_mail(running, relay):
    gw = running()
    app = gw.app
    send(gw.smtp_port, build(frm=CUSTOMER, name="Wang Customer", subject="Batch job fails",
                             body="The nightly batch fails with code 7.\n"), CUSTOMER, [SUPPORT])
    note = _parse(wait_for(lambda: (_mails_to(relay, ALICE) or [None])[0], what="notification to alice"))

    reply = build(frm=ALICE, name="Alice Wang", to=str(note["Reply-To"]), subject=f"Re: {note['Subject']}",
                  body="#status resolved\n\nRestart the batch scheduler; code 7 was a stale lock.\n",
                  in_reply_to=note["Message-ID"], references=note["Message-ID"])
    send(gw.smtp_port, reply, ALICE, [str(note["Reply-To"])])

    def closure_mail():
        found = [_parse(m) for m in _mails_to(relay, CUSTOMER)]
        return next((m for m in found if "Resolved" in m["Subject"]), None)

    closure = wait_for(closure_mail, what="closure email")
    body = text_of(closure)
    assert "Restart the batch scheduler; code 7 was a stale lock." in body  # the engineer's reply is the solution
    assert "1 (very dissatisfied) to 5 (very satisfied)" in body
    with app.db.session() as s:
        t = s.execute(select(Ticket)).scalar_one()
        assert t.status == "resolved" and "stale lock" in t.solution

    answer = build(frm=CUSTOMER, name="Wang Customer", to=str(closure["Reply-To"]), subject=f"Re: {closure['Subject']}",
                   body="5 - great\n\n> How satisfied are you with our help?\n",
                   in_reply_to=closure["Message-ID"], references=closure["Message-ID"])
    send(gw.smtp_port, answer, CUSTOMER, [str(closure["Reply-To"])])

    def stored():
        with app.db.session() as s:
            return s.execute(select(SurveyResponse)).scalars().first()

    r = wait_for(stored, what="survey response")
    assert (r.score, r.comment) == (5, "great")
    assert ALICE in r.engineers
    with app.db.session() as s:
        assert s.execute(select(Ticket.status)).scalar_one() == "resolved"
