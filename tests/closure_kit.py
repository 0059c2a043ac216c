"""Helpers for the closure, survey, reopen, self-service and pending tests.

Tickets are opened through the real pipeline (`ingest`), outbound mail goes
through the real outbox and dispatcher into a capturing transport, and replies
are built from the mail the customer actually received.
"""

from __future__ import annotations

from sqlalchemy import select

from gateway.desk import closure
from gateway.runtime.dispatch import dispatch_due
from gateway.pipeline.process import Source, ingest
from storage.models import Event, OutboxRow, SurveyResponse, Ticket
from tests.mail import build, parse

SUPPORT = "support@support.example.test"
CUSTOMER = "wang@bigbank.example"  # bigbank / core-banking: primary alice, secondary bob, manager carol
OTHER_CUSTOMER = "li@acme.example.com"  # acme / erp: primary bob, manager carol
ALICE = "alice@support.example.com"
BOB = "bob@support.example.com"
CAROL = "carol@support.example.com"


class Capture:
    """A transport that keeps what it is asked to send."""

    def __init__(self):
        self.sent: list[dict] = []

    def send(self, envelope_from, recipients, raw):
        self.sent.append({"from": envelope_from, "to": list(recipients), "raw": raw, "msg": parse(raw)})
        return "250 captured"

    def close(self):
        pass


def deliver(app, raw: bytes, rcpts=(SUPPORT,)):
    return ingest(app, [(raw, Source("smtp", envelope_to=tuple(rcpts)))])


def flush(app) -> list[dict]:
    """Dispatch everything queued; returns the mails sent now."""
    cap = Capture()
    dispatch_due(app, cap)
    return cap.sent


def open_ticket(app, *, frm=CUSTOMER, subject="Core banking batch job fails", body="The nightly batch fails.\n",
                cc=None, name="Wang Customer", msgid=None) -> int:
    counts = deliver(app, build(frm=frm, subject=subject, body=body, cc=cc, name=name, msgid=msgid))
    assert counts["created"] == 1, counts
    with app.db.session() as s:
        return s.execute(select(Ticket.id).order_by(Ticket.id.desc()).limit(1)).scalar_one()


def resolve(app, ticket_id: int, *, solution="Restart the batch scheduler.", actor=ALICE, kb_tags=None,
            status="resolved"):
    with app.db.session() as s:
        closure.resolve(app, s, s.get(Ticket, ticket_id), actor=actor, solution=solution, kb_tags=kb_tags,
                        status=status)


def ticket(app, ticket_id: int) -> Ticket:
    with app.db.session() as s:
        return s.get(Ticket, ticket_id)


def tickets(app) -> list[Ticket]:
    with app.db.session() as s:
        return list(s.execute(select(Ticket).order_by(Ticket.id)).scalars())


def events(app, ticket_id: int, kind: str | None = None) -> list[Event]:
    with app.db.session() as s:
        q = select(Event).where(Event.ticket_id == ticket_id).order_by(Event.id)
        if kind:
            q = q.where(Event.kind == kind)
        return list(s.execute(q).scalars())


def outbox_rows(app, kind: str | None = None) -> list[OutboxRow]:
    with app.db.session() as s:
        q = select(OutboxRow).order_by(OutboxRow.id)
        if kind:
            q = q.where(OutboxRow.kind == kind)
        return list(s.execute(q).scalars())


def responses(app) -> list[SurveyResponse]:
    with app.db.session() as s:
        return list(s.execute(select(SurveyResponse).order_by(SurveyResponse.id)).scalars())


def reply_to(sent_msg, *, frm=CUSTOMER, body="5\n", name="Wang Customer", html: str | None = None,
             msgid=None) -> bytes:
    """The customer's reply to a mail they received: to its Reply-To, threaded on its Message-ID."""
    to = sent_msg["Reply-To"] or sent_msg["From"]
    raw = build(frm=frm, to=str(to), subject=f"Re: {sent_msg['Subject']}", body=body, name=name,
                in_reply_to=sent_msg["Message-ID"], references=sent_msg["Message-ID"], msgid=msgid)
    if html is None:
        return raw
    # an HTML-only reply, as some webmail clients send
    msg = parse(raw)
    msg.set_content(html, subtype="html")
    from email.policy import SMTP

    return msg.as_bytes(policy=SMTP)


def to_customer(mails: list[dict], rcpt: str = CUSTOMER) -> list[dict]:
    """The mails addressed to this customer (engineers' notifications are other capabilities')."""
    return [m for m in mails if rcpt in m["to"]]


def text_of(msg) -> str:
    part = msg.get_body(preferencelist=("plain",))
    return part.get_content() if part else ""


def html_of(msg) -> str:
    part = msg.get_body(preferencelist=("html",))
    return part.get_content() if part else ""
