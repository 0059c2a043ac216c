"""A blind copy from a stranger is a ticket, but gets no acknowledgement ([spam] quiet_unaddressed).

Spam reaches a support mailbox as one blind copy among many: its To and Cc name the
other victims (or nobody), never us, and its sender (often forged) has never written to
us. Acknowledging it is backscatter. The ticket is kept exactly as before, so a real
customer who blind-copies us loses only the acknowledgement; anyone we already know
keeps it, and so does mail that names one of our addresses or aliases.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from parsers.message import parse_email
from storage.models import Event, Message, SpoolEntry, Ticket
from storage.spool import raw_bytes
from tests.conftest import CORPORA, needs_corpora
from tests.hardening import acks, push, push_many, rows
from tests.mail import build
from tests.test_loops import NOT_ORDINARY, ORDINARY_GLOBS, corpus_files

SUPPORT = "support@support.example.test"
STRANGER = "offers@bulk-sender.example"


def blind_copy(frm=STRANGER, to="victim1@elsewhere.example, victim2@other.example", cc=None,
               subject="Special offer", body="Click http://bulk-sender.example/x to buy now.\n") -> bytes:
    return build(frm=frm, to=to, cc=cc, subject=subject, body=body, name="")


def suppressed(app) -> list[str]:
    return [e.detail for e in rows(app, Event, Event.kind == "auto_suppressed")]


def test_a_strangers_blind_copy_is_a_ticket_without_acknowledgement(make_app):
    app = make_app()
    push(app, blind_copy(), to=(SUPPORT,))  # only the envelope names us
    [e] = rows(app, SpoolEntry)
    assert e.status == "processed"  # kept in the queue: a false positive costs the acknowledgement, never the mail
    assert len(rows(app, Ticket)) == 1
    assert acks(app) == []
    [why] = suppressed(app)
    assert "not addressed to us" in why and "victim1@elsewhere.example" in why


def test_no_visible_recipient_at_all_is_a_blind_copy_too(make_app):
    app = make_app()
    push(app, blind_copy(to="undisclosed-recipients:;"), to=(SUPPORT,))
    assert acks(app) == [] and len(rows(app, Ticket)) == 1
    assert any("not addressed to us" in d for d in suppressed(app))


def test_mail_that_names_us_in_to_or_cc_is_acknowledged(make_app):
    app = make_app()
    push(app, blind_copy(to=SUPPORT, subject="Printer on fire"))
    push(app, blind_copy(frm="bob@customer.example", to="colleague@customer.example", cc=f"Support <{SUPPORT}>",
                         subject="Invoice question"))
    assert len(acks(app)) == 2 and suppressed(app) == []


def test_an_alias_of_ours_counts_as_addressed_to_us(make_app):
    brand = {"address": [{"address": "care@brand.example.test", "aliases": ["help@brand.example.test"]}]}
    app = make_app(**brand)
    push(app, blind_copy(to="help@brand.example.test", subject="Login fails"), to=("care@brand.example.test",))
    assert len(acks(app)) == 1


def test_a_sender_we_already_know_keeps_the_acknowledgement(make_app):
    app = make_app()
    push(app, build(frm="carol@customer.example", subject="First question"))
    push(app, blind_copy(frm="carol@customer.example", to="boss@customer.example", subject="FYI, second question"))
    assert len(acks(app)) == 2 and suppressed(app) == []


def test_quiet_unaddressed_off_acknowledges_as_before(make_app):
    app = make_app(spam={"quiet_unaddressed": False})
    push(app, blind_copy(), to=(SUPPORT,))
    assert len(acks(app)) == 1


@needs_corpora
def test_over_real_mail_only_a_strangers_blind_copy_goes_unacknowledged(make_app):
    # person-written corpus mail, delivered to us by the envelope: every new ticket either got its
    # acknowledgement, or its mail names none of our addresses and its history says why
    app = make_app(outbound={"rate_limit_per_hour": 100000, "repeat_limit_per_hour": 0},
                   workflow={"history_age_days": 0})
    files = corpus_files(ORDINARY_GLOBS, NOT_ORDINARY)
    raws = [(Path(CORPORA) / f).read_bytes() for f in files]
    for i in range(0, len(raws), 100):
        push_many(app, raws[i:i + 100])
    acked = {r.ticket_id for r in acks(app)}
    held = {e.ticket_id for e in rows(app, Event, Event.kind == "auto_suppressed")
            if "not addressed to us" in e.detail}
    assert held and acked, (len(held), len(acked))
    with app.db.session() as s:
        for ticket_id in held:
            first = s.execute(select(Message).where(Message.ticket_id == ticket_id).order_by(Message.id)).scalars().first()
            entry = s.get(SpoolEntry, first.spool_id)
            email = parse_email(raw_bytes(app.spool_blobs, entry))
            named = [a.email for a in (*email.to, *email.cc)]
            assert not any(app.is_own_address(a) for a in named), (ticket_id, named)
            assert ticket_id not in acked
