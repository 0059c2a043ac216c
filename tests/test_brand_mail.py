"""Every kind of mail a customer receives, on a ticket opened on brand B (an [[address]]),
goes out From brand B's address, under its name, ends with its signature, and comes from
its template folder when that folder has the kind (issue 22 §2).

One table row per customer-facing kind (docs/CONFIDENTIALITY.md "Mail to customers"); each
row drives the real pipeline by mail (tests.engineer_mail.Desk) to the point where that kind
is sent, then finds the mail by the outbox row's Message-ID. Each row runs twice: with the
default template (B's signature and name in it) and with B's own file for that kind.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway.jobs.pending import run_pending_reminders
from gateway.runtime.dispatch import dispatch_due
from storage.models import OutboxRow
from tests.closure_kit import reply_to as customer_reply
from tests.engineer_mail import ALICE, CUSTOMER, Desk, latest_ticket_id, reply_to, ticket
from tests.mail import build

BRAND = "help@brand-b.example"
NAME = "Brand B Care"
SIGNATURE = "Brand B Care | https://brand-b.example/help | +1 555 0100"
DEFAULT_NAME = "Example Support"  # gateway.display_name in tests/conftest.py
STRANGER = "zhou.min@mail.example.test"


def _open(desk, subject="Website returns 502"):
    desk.receive(build(frm=CUSTOMER, to=BRAND, subject=subject, name="Li Wei",
                       body="Hello,\nour website returns 502 since 9:00.\n"))
    mails = desk.new_mail()
    note = next(m["msg"] for m in mails if m["to"] == [ALICE])
    ack = next(m["msg"] for m in mails if m["to"] == [CUSTOMER])
    return latest_ticket_id(desk.app), note, ack


def _acknowledgement(desk, clock):
    _open(desk)


def _relay(desk, clock):
    _, note, _ = _open(desk)
    desk.receive(reply_to(note, "Please restart nginx."))  # workflow.status_after_reply: pending


def _closure(desk, clock):
    _, note, _ = _open(desk)
    desk.receive(reply_to(note, "#status resolved\nRaise proxy_read_timeout to 120s.\n"))
    return _sent_of_kind(desk, "closure")


def _survey_thanks(desk, clock):
    closure = _closure(desk, clock)
    desk.receive(customer_reply(closure, frm=CUSTOMER, body="5 - quick and clear\n", name="Li Wei"))


def _pending_reminder(desk, clock):
    _relay(desk, clock)
    clock.advance(hours=73)
    assert run_pending_reminders(desk.app) == {"reminded": 1}
    dispatch_due(desk.app, desk.transport)


def _auto_resolved(desk, clock):
    _relay(desk, clock)
    clock.advance(hours=169)
    assert run_pending_reminders(desk.app) == {"auto_resolved": 1}
    dispatch_due(desk.app, desk.transport)


def _merged(desk, clock):
    first, _, _ = _open(desk)
    clock.advance(minutes=30)
    _, note2, _ = _open(desk, subject="Login page broken too")
    desk.receive(reply_to(note2, f"#merge {ticket(desk.app, first).ref}"))


def _customer_takeover(desk, clock):
    _, note, _ = _open(desk)
    desk.receive(reply_to(note, "#handover"))


def _status_list(desk, clock):
    _open(desk)
    desk.receive(build(frm=CUSTOMER, to=BRAND, subject="status", body="status\n", name="Li Wei"))


def _rejection(desk, clock):
    _, _, ack = _open(desk)
    desk.receive(customer_reply(ack, frm=STRANGER, body="We have the same problem.\n", name="Zhou Min"))


# (outbox kind, template, who receives it, extra config, how to get there)
KINDS = [
    ("acknowledgement", "acknowledgement", CUSTOMER, {}, _acknowledgement),
    ("relay", "relay", CUSTOMER, {}, _relay),
    ("closure", "closure", CUSTOMER, {}, _closure),
    ("survey_thanks", "survey_thanks", CUSTOMER, {}, _survey_thanks),
    ("pending_reminder", "pending_reminder", CUSTOMER, {}, _pending_reminder),
    ("auto_resolved", "auto_resolved", CUSTOMER, {}, _auto_resolved),
    ("merged", "merged", CUSTOMER, {}, _merged),
    ("customer_takeover", "customer_takeover", CUSTOMER, {}, _customer_takeover),
    ("status_list", "status_list", CUSTOMER, {}, _status_list),
    ("rejection", "stranger_rejected", STRANGER, {"workflow": {"stranger_policy": "reject"}}, _rejection),
]


def _sent_of_kind(desk, kind: str):
    with desk.app.db.session() as s:
        mids = {m.strip("<>") for m in s.execute(select(OutboxRow.message_id).where(OutboxRow.kind == kind)).scalars()}
    got = [m["msg"] for m in desk.transport.sent if m["msg"]["Message-ID"].strip("<>") in mids]
    assert len(got) == 1, f"{kind}: {len(got)} sent; outbox kinds: {_kinds(desk)}"
    return got[0]


def _kinds(desk):
    with desk.app.db.session() as s:
        return list(s.execute(select(OutboxRow.kind).order_by(OutboxRow.id)).scalars())


def _override(folder, template: str) -> None:
    (folder / "en").mkdir(parents=True, exist_ok=True)
    (folder / "en" / f"{template}.j2").write_text(
        f"{{% block subject %}}Brand B's own {template}{{% endblock %}}\n"
        f"{{% block text %}}\nBrand B's own {template} wording, from {{{{ team_name }}}}.\n"
        "{{ signature }}\n{% endblock %}\n", encoding="utf-8")


def test_the_table_names_every_customer_facing_template():
    """A new customer mail kind must join the table (docs/CONFIDENTIALITY.md lists them)."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "CONFIDENTIALITY.md").read_text(encoding="utf-8")
    section = doc.split("## Mail to customers", 1)[1].split("\n## ", 1)[0]
    listed = {t for t in ("acknowledgement", "relay", "closure", "survey_thanks", "pending_reminder",
                          "auto_resolved", "merged", "customer_takeover", "status_list", "stranger_rejected")
              if f"`{t}`" in section}
    assert {row[1] for row in KINDS} == listed


@pytest.mark.parametrize("overridden", [False, True], ids=["default-template", "brand-template"])
@pytest.mark.parametrize("kind,template,rcpt,extra,drive", KINDS, ids=[k[0] for k in KINDS])
def test_a_brand_b_ticket_mails_its_customer_as_brand_b(make_app, clock, tmp_path, kind, template, rcpt, extra,
                                                        drive, overridden):
    folder = tmp_path / "brand-b-templates"
    folder.mkdir()
    if overridden:
        _override(folder, template)
    brand = {"address": BRAND, "display_name": NAME, "language": "en", "signature": SIGNATURE,
             "templates": str(folder)}
    desk = Desk(make_app(clock=clock, address=[brand], **extra))
    drive(desk, clock)
    msg = _sent_of_kind(desk, kind)

    assert msg["To"].addresses[0].addr_spec == rcpt
    sender = msg["From"].addresses[0]
    assert sender.addr_spec == BRAND, f"{kind} went out from {sender.addr_spec}"
    assert NAME in sender.display_name, f"{kind} went out as {sender.display_name!r}"
    if msg["Reply-To"] is not None:
        assert msg["Reply-To"].addresses[0].domain == "brand-b.example"  # the answer comes back to B
    text = msg.get_body(("plain",)).get_content()
    assert SIGNATURE in text, f"{kind} lacks brand B's signature"
    assert DEFAULT_NAME not in text and DEFAULT_NAME not in str(msg["From"])
    if overridden:
        assert msg["Subject"] == f"Brand B's own {template}"
        assert f"Brand B's own {template} wording, from {NAME}." in text
    else:
        assert not msg["Subject"].startswith("Brand B's own")
