"""Helpers for the SLA, handover, escalation and scheduler tests.

The sample rules give Big Bank (strategic) the project core-banking: primary
alice, secondary bob, manager carol; P2 counts in the cn calendar (09:00-18:00
Asia/Shanghai): first response 2 business hours, resolution 1 day (9 hours).
The ManualClock starts Monday 2026-03-02 01:00 UTC = 09:00 in Shanghai.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import select

from gateway.outbox import message_bytes
from gateway.pipeline.process import Source, ingest
from routing.loader import SAMPLE_RULES
from storage.models import Event, OutboxRow, SlaMark, Ticket
from tests.mail import body_text, build, parse

CUSTOMER = "li.ming@bigbank.example"
SUPPORT = "support@support.example.test"
ALICE, BOB, CAROL = "alice@support.example.com", "bob@support.example.com", "carol@support.example.com"
DAVE, ERIN = "dave@support.example.com", "erin@support.example.com"
UTC = timezone.utc


def utc(*a) -> datetime:
    return datetime(*a, tzinfo=UTC)


def rules(tmp_path: Path, *edits: tuple[str, str]) -> dict:
    """The sample rules with text edits; returns the `routing` config section pointing at them."""
    text = Path(SAMPLE_RULES).read_text(encoding="utf-8")
    for old, new in edits:
        assert old in text, f"rules edit does not apply: {old!r}"
        text = text.replace(old, new, 1)
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    return {"rules_file": str(path)}


def away(engineer_name_line: str) -> tuple[str, str]:
    """An edit that marks the engineer whose `name = ...` line is given out of office."""
    return engineer_name_line, engineer_name_line + "\nout_of_office = true"


ALICE_AWAY = away('name = "Alice Wang 王爱丽"')
BOB_AWAY = away('name = "Bob Zhang 张博"')
DAVE_AWAY = away('name = "Dave Müller"')
SECONDARY_IS_PRIMARY = ('primary = "alice"\nsecondary = "bob"\nmanager = "carol"\ndescription',
                        'primary = "alice"\nsecondary = "alice"\nmanager = "carol"\ndescription')


def new_ticket(app, *, subject="Core banking batch is slow", body="Hello,\nthe nightly batch takes hours.\n",
               frm=CUSTOMER, msgid=None) -> int:
    counts = ingest(app, [(build(frm=frm, subject=subject, body=body, msgid=msgid, name="Li Ming"),
                           Source("smtp", envelope_from=frm, envelope_to=(SUPPORT,)))])
    assert counts["created"] == 1, counts
    with app.db.session() as s:
        return s.execute(select(Ticket.id).order_by(Ticket.id.desc()).limit(1)).scalar_one()


def ticket(app, tid: int) -> Ticket:
    with app.db.session() as s:
        return s.get(Ticket, tid)


def change(app, tid: int, fn) -> None:
    """Run fn(app, session, ticket) in one transaction (what a handler would do)."""
    with app.db.session() as s:
        fn(app, s, s.get(Ticket, tid))


def mails(app, kind: str | None = None) -> list[OutboxRow]:
    with app.db.session() as s:
        stmt = select(OutboxRow).order_by(OutboxRow.id)
        if kind:
            stmt = stmt.where(OutboxRow.kind == kind)
        return list(s.execute(stmt).scalars())


def copies(app, kind: str) -> dict[str, OutboxRow]:
    """The copies of one mail to several engineers (gateway.outbox.queue_copies), by the one
    address each is delivered to: every copy shows the same To and Cc, and answers to its reader."""
    rows = mails(app, kind)
    assert all(len(r.envelope_to) == 1 for r in rows), [r.envelope_to for r in rows]
    by = {r.envelope_to[0]: r for r in rows}
    assert len(by) == len(rows), "two copies to the same engineer"
    return by


def events(app, tid: int, kind: str | None = None) -> list[Event]:
    with app.db.session() as s:
        stmt = select(Event).where(Event.ticket_id == tid).order_by(Event.id)
        if kind:
            stmt = stmt.where(Event.kind == kind)
        return list(s.execute(stmt).scalars())


def marks(app, tid: int) -> list[SlaMark]:
    with app.db.session() as s:
        return list(s.execute(select(SlaMark).where(SlaMark.ticket_id == tid).order_by(SlaMark.id)).scalars())


def text_of(row: OutboxRow) -> str:
    return body_text(parse(message_bytes(row)))


def reply_to_is_signed_for(app, row: OutboxRow, email: str, tid: int) -> bool:
    rt = parse(message_bytes(row))["Reply-To"]
    local = rt.split("@")[0]
    token = local.split("+", 1)[1]
    return app.signer.check_reply_token(token, email) == tid
