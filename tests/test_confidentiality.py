"""服务保密 (DOMAIN.md §9): nothing internal reaches a customer, no engineer's personal
address is exposed, no internal Message-ID is named in a customer's mail.

Stories through the real pipeline (ingest, outbox, dispatcher into a capturing
transport), and one through `supportgw run` (a subprocess, one worker) with smtplib. The last
test walks a ticket through its whole life and then checks EVERY mail that went
to a customer address: docs/CONFIDENTIALITY.md names it.
"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, select

from gateway.runtime.dispatch import dispatch_due
from gateway.outbox import message_bytes
from gateway.jobs.pending import run_pending_reminders
from storage.models import Message, OutboxRow, Participant, SurveyResponse
from tests.conftest import fresh_database_url, wait_for
from tests.gwproc import GatewayProcess, write_run_config
from tests.engineer_mail import Desk, all_text, events, latest_ticket_id, messages, reply_to, ticket
from tests.mail import body_text, build, parse, send

SUPPORT = "support@support.example.test"
CUSTOMER = "wang@bigbank.example"  # bigbank / core-banking: primary alice, secondary bob, manager carol (watcher)
COLLEAGUE = "ops@bigbank.example"  # the customer's own colleague on CC
ALICE = "alice@support.example.com"
BOB = "bob@support.example.com"
CAROL = "carol@support.example.com"
ENGINEERS = (ALICE, BOB, CAROL, "dave@support.example.com", "erin@support.example.com", "sam@support.example.com")


@pytest.fixture
def desk(make_app, clock):
    return Desk(make_app(clock=clock))


def _to(mails, rcpt):
    return [m for m in mails if rcpt in m["to"]]


def _customer_side(mails):
    return [m for m in mails if CUSTOMER in m["to"] or COLLEAGUE in m["to"]]


def _open(desk, **kw):
    desk.customer_writes(frm=CUSTOMER, name="Wang Customer", subject="Batch job fails",
                         body="The nightly batch fails with code 7.\n", **kw)
    mails = desk.new_mail()
    return latest_ticket_id(desk.app), mails


def _alice_note(desk, mails, text):
    """Alice writes an internal note; returns the note's notification carol (the watcher) got."""
    [alice_mail] = _to(mails, ALICE)
    desk.receive(reply_to(alice_mail["msg"], f"#note\n{text}\n"))
    out = desk.new_mail()
    assert _customer_side(out) == []
    [note] = _to(out, CAROL)
    return note["msg"]


# ---------------------------------------------------------------- 1. a reply to a note's notification

def test_a_notes_notification_answers_to_the_notes_own_signed_address(desk):
    tid, mails = _open(desk)
    note = _alice_note(desk, mails, "Internal: the customer's licence expired last week.")
    reply_addr = note["Reply-To"].addresses[0]
    assert reply_addr.addr_spec.startswith("support+n") and reply_addr.addr_spec.endswith("@support.example.test")
    assert "not sent to the customer" in reply_addr.display_name
    # signed for carol alone: it is worth nothing to anyone else
    token = reply_addr.addr_spec.split("+")[1].split("@")[0]
    assert desk.app.signer.read_reply_token(token, CAROL) == (tid, True)
    assert desk.app.signer.read_reply_token(token, BOB) is None
    # a reply token cannot be made a note token (or back) by changing its letter
    reply_token = desk.app.signer.reply_token(tid, CAROL)
    assert desk.app.signer.read_reply_token("n" + reply_token[1:], CAROL) is None


def test_a_chinese_tickets_note_says_so_in_chinese_in_its_reply_address(desk):
    desk.customer_writes(frm=CUSTOMER, name="王客户", subject="批处理作业失败", body="每晚的批处理作业都失败了。\n")
    note = _alice_note(desk, desk.new_mail(), "内部：客户的许可证上周已过期。")
    addr = note["Reply-To"].addresses[0]
    assert addr.addr_spec.startswith("support+n") and "不会发送给客户" in addr.display_name


@pytest.mark.parametrize("style", ["outlook", "gmail", "mutt"])
def test_a_colleagues_reply_to_a_note_is_a_note_and_never_reaches_the_customer(desk, style):
    tid, mails = _open(desk)
    note = _alice_note(desk, mails, "Internal: the customer's licence expired last week.")
    desk.receive(reply_to(note, "Then let us not tell them about the discount yet.", frm=CAROL, name="Carol Li",
                          style=style))
    out = desk.new_mail()
    assert _customer_side(out) == []
    assert not [m for m in messages(desk.app, tid) if m.direction == "out"]
    [kept] = [m for m in messages(desk.app, tid) if m.sender_email == CAROL]
    assert kept.internal and kept.kind == "note" and kept.text == "Then let us not tell them about the discount yet."
    # and the other engineers hear of it as a note, whose reply address is again the note's
    [told] = _to(out, ALICE)
    assert "discount" in body_text(told["msg"]) and told["msg"]["Reply-To"].addresses[0].addr_spec.startswith(
        "support+n")
    assert ticket(desk.app, tid).first_responded_at is None  # a note is no answer to the customer


def test_a_reply_to_a_note_cannot_close_the_ticket_and_its_correction_stays_a_note(desk):
    tid, mails = _open(desk)
    note = _alice_note(desk, mails, "Internal: check the scheduler lock.")
    desk.receive(reply_to(note, "#status resolved\nIt was the lock, restart the scheduler.", frm=CAROL,
                          name="Carol Li"))
    out = desk.new_mail()
    assert _customer_side(out) == []
    assert ticket(desk.app, tid).status != "resolved"
    [err] = _to(out, CAROL)
    assert "answers an internal note" in body_text(err["msg"])
    assert err["msg"]["Reply-To"].addresses[0].addr_spec.startswith("support+n")
    desk.receive(reply_to(err["msg"], "It was the lock.", frm=CAROL, name="Carol Li"))
    assert _customer_side(desk.new_mail()) == []
    assert [m.text for m in messages(desk.app, tid) if m.sender_email == CAROL and m.kind == "note"] == \
        ["It was the lock."]


def test_an_answer_to_a_note_that_reaches_the_plain_support_address_stays_internal(make_app, clock):
    # trust_dmarc: an authenticated engineer needs no token, so the reply address alone cannot say
    # "note"; the In-Reply-To (our note's notification) does
    desk = Desk(make_app(clock=clock, workflow={"trust_dmarc": True},
                         spam={"authserv_id": "mx.support.example.test"}))
    tid, mails = _open(desk)
    note = _alice_note(desk, mails, "Internal: the customer's licence expired last week.")
    auth = ("mx.support.example.test; dkim=pass header.d=support.example.com; "
            "dmarc=pass (p=reject) header.from=support.example.com")
    desk.receive(reply_to(note, "Agreed, keep it quiet.", frm=CAROL, name="Carol Li", to=SUPPORT,
                          headers={"Authentication-Results": auth}), rcpts=[SUPPORT])
    assert _customer_side(desk.new_mail()) == []
    [kept] = [m for m in messages(desk.app, tid) if m.sender_email == CAROL]
    assert kept.internal and kept.kind == "note"


def test_a_reply_to_a_note_over_smtp_with_smtplib_is_not_relayed(tmp_path, relay):
    """As deployed: `supportgw run` (gateway.workers = 1), mail in over SMTP with smtplib,
    mail out through the relay."""
    url = fresh_database_url(tmp_path)
    cfg, port = write_run_config(tmp_path, url, relay.port)
    gw = GatewayProcess(cfg, port, tmp_path / "gw.log")
    gw.start()
    try:
        def mail_to(rcpt, text=""):
            found = [parse(m["raw"]) for m in list(relay.messages) if m["to"] == [rcpt]]
            return [m for m in found if text in body_text(m)]

        send(port, build(frm=CUSTOMER, name="Wang Customer", subject="Batch job fails",
                         body="The nightly batch fails with code 7.\n"), CUSTOMER, [SUPPORT])
        [alice_mail] = wait_for(lambda: mail_to(ALICE), timeout=30, what="notification to alice")
        note_reply = build(frm=ALICE, name="Alice Wang", to=str(alice_mail["Reply-To"]), subject="Re: x",
                           body="#note\nInternal: their licence expired.\n", in_reply_to=alice_mail["Message-ID"])
        send(port, note_reply, ALICE, [alice_mail["Reply-To"].addresses[0].addr_spec])
        [note] = wait_for(lambda: mail_to(CAROL, "Internal note"), timeout=30, what="note notification to carol")
        answer = build(frm=CAROL, name="Carol Li", to=str(note["Reply-To"]), subject=f"Re: {note['Subject']}",
                       body="Let us offer them a renewal call.\n\n> Internal note\n",
                       in_reply_to=note["Message-ID"], references=note["Message-ID"])
        send(port, answer, CAROL, [note["Reply-To"].addresses[0].addr_spec])
        # alice is told of carol's note: once that mail is out, everything carol's reply caused is out
        # (or, the defect this guards against, it went to the customer)
        wait_for(lambda: mail_to(ALICE, "renewal call") or len([m for m in list(relay.messages)
                                                                 if CUSTOMER in m["to"]]) > 1,
                 timeout=30, what="carol's note told to alice")
    finally:
        gw.terminate(30)
    to_customer = [m for m in list(relay.messages) if CUSTOMER in m["to"]]
    assert len(to_customer) == 1 and "renewal" not in all_text(to_customer[0]["raw"])  # the acknowledgement
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            kept = conn.execute(select(Message.kind, Message.internal, Message.direction)
                                .where(Message.sender_email == CAROL)).all()
    finally:
        engine.dispose()
    assert [tuple(k) for k in kept] == [("note", True, "in")]


# ---------------------------------------------------------------- 2. an engineer on the customer's CC

def test_an_engineer_the_customer_ccs_never_becomes_a_customer_participant(desk):
    tid, mails = _open(desk, cc=f"Bob Zhang <{BOB}>, Ops <{COLLEAGUE}>")
    with desk.app.db.session() as s:
        rows = s.execute(select(Participant).where(Participant.ticket_id == tid)).scalars()
        people = {(p.email, p.role) for p in rows}
    assert (COLLEAGUE, "cc") in people and not [p for p in people if p[0] in ENGINEERS and p[1] == "cc"]
    # a follow-up that CCs another engineer does not add them either
    [ack] = _to(mails, CUSTOMER)
    desk.receive(build(frm=CUSTOMER, name="Wang Customer", to=str(ack["msg"]["Reply-To"]), cc=CAROL,
                       subject="Re: " + ack["msg"]["Subject"], body="Any news?\n",
                       in_reply_to=ack["msg"]["Message-ID"]))
    mails = desk.new_mail()
    with desk.app.db.session() as s:
        ccs = set(s.execute(select(Participant.email).where(Participant.ticket_id == tid,
                                                            Participant.role == "cc")).scalars())
    assert ccs == {COLLEAGUE}
    # the relayed answer and the closure go Cc the customer's colleague, never an engineer
    [alice_mail] = _to(mails, ALICE)
    desk.receive(reply_to(alice_mail["msg"], "#status resolved\nRestart the batch scheduler."))
    out = _customer_side(desk.new_mail())
    assert len(out) == 2  # the relayed answer and the closure
    for m in out:
        assert m["to"] == [CUSTOMER, COLLEAGUE] and m["msg"]["Cc"] == COLLEAGUE
        for eng in ENGINEERS:
            assert eng not in all_text(m["raw"])
    # and bob, on the customer's CC, cannot rate the service
    [closure] = [m for m in out if "Resolved" in m["msg"]["Subject"]]
    from tests.closure_kit import reply_to as customer_reply

    desk.receive(customer_reply(closure["msg"], frm=BOB, name="Bob Zhang", body="1\n"))
    with desk.app.db.session() as s:
        assert s.execute(select(SurveyResponse)).first() is None
    assert ticket(desk.app, tid).status == "resolved"


def test_our_own_addresses_the_customer_ccs_never_become_customer_participants(make_app, clock):
    """Our support addresses, their +token forms, a brand's address and our bounce address,
    whoever put them in Cc: never a participant, so never a recipient of customer mail."""
    brand = "help@brand-b.example"
    desk = Desk(make_app(clock=clock, address=[{"address": brand, "display_name": "Brand B"}]))
    bounce = f"bounces+42@{desk.app.config.gateway.domain}"  # the envelope sender of our mail
    ours = ["security@support.example.test", "support+t1abc@support.example.test", brand, bounce]
    assert all(desk.app.is_ours(a) for a in ours)
    tid, mails = _open(desk, cc=", ".join([*ours, f"Ops <{COLLEAGUE}>"]))
    with desk.app.db.session() as s:
        people = {(p.email, p.role) for p in s.execute(select(Participant).where(Participant.ticket_id == tid)).scalars()}
    assert {e for e, role in people if role == "cc"} == {COLLEAGUE}
    assert not {e for e, _ in people} & {a.lower() for a in ours}
    [ack] = _to(mails, CUSTOMER)
    for m in mails:  # the acknowledgement and the engineers' notifications: none to our own addresses
        assert not {r.lower() for r in m["to"]} & {a.lower() for a in ours}
        assert not any(own in (m["msg"]["Cc"] or "") for own in ours)


# ---------------------------------------------------------------- 10. the low-score alert

def _resolved_with_low_score(desk):
    tid, mails = _open(desk)
    [alice_mail] = _to(mails, ALICE)
    desk.receive(reply_to(alice_mail["msg"], "#status resolved\nRestart the batch scheduler."))
    [closure] = [m for m in _to(desk.new_mail(), CUSTOMER) if "Resolved" in m["msg"]["Subject"]]
    from tests.closure_kit import reply_to as customer_reply

    desk.receive(customer_reply(closure["msg"], body="1 - still broken\n"))
    out = desk.new_mail()
    assert ticket(desk.app, tid).status == "open"
    return tid, out


@pytest.mark.parametrize("who", [ALICE, CAROL])  # the owner, the manager
def test_the_owner_or_the_manager_resolves_from_the_low_score_alert(desk, who):
    tid, out = _resolved_with_low_score(desk)
    alerts = [m for m in out if "Low satisfaction" in m["msg"]["Subject"]]
    assert sorted(m["to"][0] for m in alerts) == [ALICE, CAROL]  # a copy each, delivered to them alone
    [alert] = _to(alerts, who)
    token = alert["msg"]["Reply-To"].addresses[0].addr_spec.split("+")[1].split("@")[0]
    assert desk.app.signer.read_reply_token(token, who) == (tid, False)
    desk.receive(reply_to(alert["msg"], "#status resolved\nCalled them: the scheduler runs again.",
                          frm=who, name="Someone"))
    out = desk.new_mail()
    assert ticket(desk.app, tid).status == "resolved"
    assert events(desk.app, tid, "commands_ignored") == []
    assert [m for m in out if "wrote again" in body_text(m["msg"])] == []
    assert [m for m in _to(out, CUSTOMER) if "Resolved" in m["msg"]["Subject"]]


def test_unhonoured_engineer_commands_answer_with_an_error_mail_and_no_customer_follow_up(desk):
    tid, out = _resolved_with_low_score(desk)
    [alert] = _to([m for m in out if "Low satisfaction" in m["msg"]["Subject"]], CAROL)
    # carol's client answers the plain support address (no signed reply address)
    desk.receive(reply_to(alert["msg"], "#status resolved\nCalled them.", frm=CAROL, name="Carol Li",
                          to=SUPPORT), rcpts=[SUPPORT])
    out = desk.new_mail()
    assert ticket(desk.app, tid).status == "open"
    assert [m for m in out if "wrote again" in body_text(m["msg"])] == []
    assert _customer_side(out) == []
    [err] = _to(out, CAROL)
    assert "were not run" in err["msg"]["Subject"] and "signed" in body_text(err["msg"])
    assert err["msg"]["Reply-To"].addresses[0].addr_spec.startswith("support+t")
    [kept] = [m for m in messages(desk.app, tid) if m.sender_email == CAROL]
    assert kept.internal and kept.kind == "unverified"
    # answering the error mail runs them
    desk.receive(reply_to(err["msg"], "#status resolved\nCalled them.", frm=CAROL, name="Carol Li"))
    desk.new_mail()
    assert ticket(desk.app, tid).status == "resolved"


def test_an_engineers_commands_in_a_new_mail_are_answered_with_why(desk):
    desk.receive(build(frm=BOB, name="Bob Zhang", subject="Printer", body="#priority P1\nThe printer is down.\n"))
    tid = latest_ticket_id(desk.app)
    assert ticket(desk.app, tid).priority != "P1"
    [err] = [m for m in _to(desk.new_mail(), BOB) if "were not run" in m["msg"]["Subject"]]
    assert "new mail" in body_text(err["msg"])


def test_an_engineer_who_is_the_tickets_customer_is_told_why_their_commands_did_not_run(desk):
    # bob opened a ticket himself (he is its requester); he answers our acknowledgement with commands
    desk.receive(build(frm=BOB, name="Bob Zhang", subject="My laptop", body="The laptop does not boot.\n"))
    tid = latest_ticket_id(desk.app)
    [ack] = [m for m in _to(desk.new_mail(), BOB) if m["msg"]["Auto-Submitted"] == "auto-replied"]
    desk.receive(build(frm=BOB, name="Bob Zhang", to=SUPPORT, subject="Re: " + ack["msg"]["Subject"],
                       body="#priority P1\nStill not booting.\n", in_reply_to=ack["msg"]["Message-ID"]))
    out = desk.new_mail()
    assert ticket(desk.app, tid).priority != "P1"
    assert [m for m in _to(out, BOB) if "were not run" in m["msg"]["Subject"]]
    assert [m for m in messages(desk.app, tid) if m.kind == "customer" and "Still not booting" in m.text]


def test_an_engineer_address_typed_into_the_solution_does_not_reach_the_customer(desk):
    tid, mails = _open(desk)
    [alice_mail] = _to(mails, ALICE)
    desk.receive(reply_to(alice_mail["msg"], f"#solution\nRestart the scheduler; if it fails again write to "
                                             f"{ALICE.upper()} or {BOB}.\n"))
    [closure] = [m for m in _to(desk.new_mail(), CUSTOMER) if "Resolved" in m["msg"]["Subject"]]
    text = all_text(closure["raw"])
    assert "restart the scheduler" in text and "@support.example.com" not in text
    assert f"write to {SUPPORT} or {SUPPORT}" in body_text(closure["msg"])


# ---------------------------------------------------------------- 3. what a customer's mail references

def _ids(msg, header):
    return [i.strip("<> ") for i in str(msg[header] or "").split() if i.strip()]


def test_closure_takeover_and_thanks_reference_only_the_customers_own_conversation(desk):
    tid, mails = _open(desk, msgid="<first@bigbank.example>")
    [ack] = _to(mails, CUSTOMER)
    [alice_mail] = _to(mails, ALICE)
    desk.receive(reply_to(alice_mail["msg"], "#note\nInternal: check the lock.\n"))
    desk.receive(reply_to(alice_mail["msg"], "#handover\n"))
    mails = desk.new_mail()
    [takeover] = [m["msg"] for m in _to(mails, CUSTOMER) if "colleague" in m["msg"]["Subject"]]
    [bob_mail] = _to(mails, BOB)
    bobs_reply = reply_to(bob_mail["msg"], "#status resolved\nUpgrade to 4.3.", frm=BOB, name="Bob Zhang")
    desk.receive(bobs_reply)
    out = _to(desk.new_mail(), CUSTOMER)
    [relayed] = [m["msg"] for m in out if "Resolved" not in m["msg"]["Subject"]]
    [closure] = [m["msg"] for m in out if "Resolved" in m["msg"]["Subject"]]
    from tests.closure_kit import reply_to as customer_reply

    desk.receive(customer_reply(closure, body="5\n", msgid="<rating@bigbank.example>"))
    [thanks] = [m["msg"] for m in _to(desk.new_mail(), CUSTOMER)]
    ours = [ack["msg"]["Message-ID"].strip("<>"), takeover["Message-ID"].strip("<>"),
            relayed["Message-ID"].strip("<>"), closure["Message-ID"].strip("<>")]
    assert _ids(takeover, "In-Reply-To") == ["first@bigbank.example"]  # not alice's #handover mail
    # (the order among them is by time, and this test's clock stands still: compare as sets)
    assert _ids(takeover, "References")[0] == "first@bigbank.example"
    assert set(_ids(takeover, "References")) == {"first@bigbank.example", ours[0]}
    assert _ids(closure, "In-Reply-To") == ["first@bigbank.example"]  # not bob's mail
    assert set(_ids(closure, "References")) == {"first@bigbank.example", *ours[:3]}
    assert _ids(thanks, "In-Reply-To") == ["rating@bigbank.example"]
    assert set(_ids(thanks, "References")) == {"first@bigbank.example", *ours, "rating@bigbank.example"}


def test_a_manager_on_cc_answers_her_own_copy_and_her_commands_are_hers(desk):
    # the handover mail goes as one copy per engineer: the manager's copy answers to an
    # address signed for her, so her commands run as hers; a copy answered by someone else
    # is kept internal and its sender told why (test_engineer_auth's replayed address)
    tid, mails = _open(desk)
    [alice_mail] = _to(mails, ALICE)
    desk.receive(reply_to(alice_mail["msg"], "#handover\n"))
    out = desk.new_mail()
    [bobs] = [m for m in out if m["to"] == [BOB] and m["msg"]["Cc"] == CAROL]
    [carols] = [m for m in out if m["to"] == [CAROL] and m["msg"]["To"] == BOB]
    assert bobs["msg"]["Reply-To"] != carols["msg"]["Reply-To"]
    desk.receive(reply_to(bobs["msg"], "#priority P1\nBob, call them today.", frm=CAROL, name="Carol Li"))
    out = desk.new_mail()
    assert _customer_side(out) == [] and ticket(desk.app, tid).priority != "P1"
    [err] = _to(out, CAROL)  # Bob's copy is not hers: told why, never silence
    assert "were not run" in err["msg"]["Subject"]
    desk.receive(reply_to(carols["msg"], "#priority P1\n#note Bob, call them today.", frm=CAROL, name="Carol Li"))
    out = desk.new_mail()
    assert _customer_side(out) == [] and ticket(desk.app, tid).priority == "P1"


# ---------------------------------------------------------------- the whole life: every customer mail

def _customer_rows(app):
    with app.db.session() as s:
        rows = list(s.execute(select(OutboxRow).order_by(OutboxRow.id)).scalars())
    return [r for r in rows if any(not app.is_ours(a) for a in r.envelope_to)], rows


def test_every_mail_a_customer_receives_in_a_tickets_whole_life_is_clean(desk, clock):
    """New ticket (an engineer on the customer's CC), answer, pending reminder, #note and a
    colleague's reply to it, a rejected command, a handover (takeover notice), closure,
    survey, low score, the manager's resolution from the alert. Then every outbox row that
    went to a customer address: no engineer address anywhere in it, no Message-ID of a mail
    the customer was not sent in References/In-Reply-To, no internal text."""
    app = desk.app
    customer_ids = set()

    def customer(raw, msgid):
        customer_ids.add(msgid)
        desk.receive(raw)
        return desk.new_mail()

    mails = customer(build(frm=CUSTOMER, name="Wang Customer", cc=f"{BOB}, {COLLEAGUE}", subject="Batch fails",
                           body="The nightly batch fails with code 7.\n", msgid="<c1@bigbank.example>"),
                     "c1@bigbank.example")
    tid = latest_ticket_id(app)
    [alice_mail] = _to(mails, ALICE)
    desk.receive(reply_to(alice_mail["msg"], "Which version of the scheduler do you run?"))
    [relayed] = _to(_customer_side(desk.new_mail()), CUSTOMER)
    clock.advance(hours=app.config.workflow.pending_reminder_hours + 1)  # waiting on the customer: a reminder
    assert run_pending_reminders(app)["reminded"] == 1
    dispatch_due(app, desk.transport)
    assert [m for m in _to(desk.new_mail(), CUSTOMER) if m["to"] == [CUSTOMER, COLLEAGUE]]
    desk.receive(reply_to(alice_mail["msg"], "#note\nSECRET-NOTE-7 their licence expired.\n"))
    [note] = _to(desk.new_mail(), CAROL)
    desk.receive(reply_to(note["msg"], "SECRET-REPLY-8 then no discount.", frm=CAROL, name="Carol Li"))
    desk.receive(reply_to(alice_mail["msg"], "#priority P9\nSECRET-ERROR-9 draft.\n"))  # rejected: error mail
    desk.new_mail()
    mails = customer(build(frm=CUSTOMER, name="Wang Customer", to=str(relayed["msg"]["Reply-To"]), cc=BOB,
                           subject="Re: " + relayed["msg"]["Subject"], body="Version 4.2.\n",
                           msgid="<c2@bigbank.example>", in_reply_to=relayed["msg"]["Message-ID"],
                           references=relayed["msg"]["Message-ID"]), "c2@bigbank.example")
    [alice_mail] = _to(mails, ALICE)
    desk.receive(reply_to(alice_mail["msg"], "#handover\n"))  # bob takes over: the customer is told
    mails = desk.new_mail()
    assert [m for m in _to(mails, CUSTOMER) if "colleague" in body_text(m["msg"]).lower()]
    [bob_mail] = [m for m in _to(mails, BOB)]
    desk.receive(reply_to(bob_mail["msg"], "#status resolved\nUpgrade to 4.3; 4.2 leaves a stale lock.",
                          frm=BOB, name="Bob Zhang"))
    [closure] = [m for m in _to(desk.new_mail(), CUSTOMER) if "Resolved" in m["msg"]["Subject"]]
    from tests.closure_kit import reply_to as customer_reply

    mails = customer(customer_reply(closure["msg"], body="1 - still broken\n", msgid="<c3@bigbank.example>"),
                     "c3@bigbank.example")
    [alert] = [m for m in _to(mails, CAROL) if "Low satisfaction" in m["msg"]["Subject"]]
    desk.receive(reply_to(alert["msg"], "#status resolved\nCalled them: fixed.", frm=CAROL, name="Carol Li"))
    desk.new_mail()
    assert ticket(app, tid).status == "resolved"

    sent_to_customer, rows = _customer_rows(app)
    kinds = {r.kind for r in sent_to_customer}
    assert {"acknowledgement", "relay", "pending_reminder", "customer_takeover", "closure",
            "survey_thanks"} <= kinds, kinds
    assert len([r for r in sent_to_customer if r.kind == "closure"]) == 2
    visible = customer_ids | {r.message_id for r in sent_to_customer}
    internal_ids = {r.message_id for r in rows} - visible
    internal_ids |= {m.message_id for m in messages(app, tid) if m.sender_email in ENGINEERS and m.direction == "in"}
    assert internal_ids  # notifications, notes, the error mail, the alert, the engineers' own mails
    for row in sent_to_customer:
        raw = message_bytes(row, app.attachments)
        msg, text = parse(raw), all_text(raw)
        where = f"{row.kind} #{row.id}"
        assert set(row.envelope_to) <= {CUSTOMER, COLLEAGUE}, where
        for header in ("From", "To", "Cc", "Reply-To", "Sender"):
            value = str(msg[header] or "").lower()
            assert "@support.example.com" not in value, (where, header, value)
        for eng in ENGINEERS:
            assert eng not in text, (where, eng)
        named = " ".join(str(msg[h] or "") for h in ("References", "In-Reply-To"))
        ids = {i.strip("<> ") for i in named.split() if i.strip()}
        assert ids <= visible, (where, ids - visible)
        assert not ids & internal_ids, where
        for secret in ("secret-note-7", "secret-reply-8", "secret-error-9", "#priority", "#note", "#handover"):
            assert secret not in text, (where, secret)
