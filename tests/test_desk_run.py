"""The desk-by-mail workflows as deployed: `supportgw run` (gateway.workers = 1), mail in over
SMTP with smtplib, mail out through a loopback relay, engineers answering the notifications
they received. One story per workflow: merge, a forward brought in, a stranger's mail held and
released, an answer sent later (and one cancelled by the customer writing first), an answer
held because a colleague answered first, a new question split into its own ticket. The
in-process tests (test_merge_split.py, test_forwards_in.py, test_hold_release.py,
test_send_later.py, test_collisions.py) cover every case, on a test clock; these show the same
flows in the process layout a team runs, on the real clock: the send-later story waits for
`#send-in 1m`, the shortest delay the command takes (nothing shortens it for a subprocess).

Li Wei's website project: primary alice, secondary bob, manager carol (routing/sample_rules.toml).
"""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import select

from gateway.app import build_app
from gateway.config import load_config
from gateway.outbox import intake_address
from storage.models import Event, Message, OutboxRow, Ticket
from tests.conftest import fresh_database_url, wait_for
from tests.engineer_mail import ALICE, BOB, CUSTOMER, SUPPORT, all_text, reply_to
from tests.gwproc import GatewayProcess, write_run_config
from tests.mail import body_text, build, parse, send

MALLORY = "mallory@evil.example"


@pytest.fixture
def gateway(tmp_path, relay):
    url = fresh_database_url(tmp_path)
    cfg, port = write_run_config(tmp_path, url, relay.port, workflow={"stranger_policy": "hold"})
    gw = GatewayProcess(cfg, port, tmp_path / "gw.log")
    gw.start()
    app = build_app(load_config(cfg), migrate=False)  # the test's own view of the same database
    try:
        yield gw, app
    finally:
        gw.terminate(30)
        gw.stop_quietly()
        app.db.dispose()


def _mail_to(relay, rcpt, subject=""):
    found = [parse(m["raw"]) for m in list(relay.messages) if rcpt in m["to"]]
    return [m for m in found if subject in (m["Subject"] or "")]


def _ref(msg) -> str:
    return re.search(r"\[(TS-\d+)\]", msg["Subject"]).group(1)


def _ticket(app, ref) -> Ticket:
    with app.db.session() as s:
        t = s.execute(select(Ticket).where(Ticket.ref == ref)).scalar_one()
        s.expunge(t)
        return t


def _new_case(gw, relay, subject, body):
    """Li Wei writes; returns alice's notification of the new ticket."""
    send(gw.port, build(frm=CUSTOMER, name="Li Wei", subject=subject, body=body), CUSTOMER, [SUPPORT])
    [note] = wait_for(lambda: _mail_to(relay, ALICE, subject), timeout=60, what=f"alice's notification of {subject!r}")
    return note


def _answer(gw, note, text, frm=ALICE):
    send(gw.port, reply_to(note, text, frm=frm), frm, [note["Reply-To"].addresses[0].addr_spec])


def test_merge_by_mail_through_supportgw_run(gateway, relay):
    gw, app = gateway
    first = _new_case(gw, relay, "Website returns 502", "Since 9:00 the website returns 502.\n")
    second = _new_case(gw, relay, "Login page broken too", "Also the login page shows an error.\n")
    a, b = _ref(first), _ref(second)
    _answer(gw, second, f"#merge {a}\n")
    [told] = wait_for(lambda: _mail_to(relay, CUSTOMER, "continues as"), timeout=60, what="the merge notice")
    assert told["Subject"].startswith(f"[{a}] Your request {b} continues as {a}")
    assert ALICE not in all_text(told.as_bytes()) and "#merge" not in body_text(told)
    src, dst = _ticket(app, b), _ticket(app, a)
    assert (src.status, src.merged_into_id) == ("closed", dst.id)
    with app.db.session() as s:
        subjects = set(s.execute(select(Message.subject).where(Message.ticket_id == dst.id)).scalars())
    assert {"Website returns 502", "Login page broken too"} <= subjects


def test_an_engineers_forward_becomes_the_customers_ticket_through_supportgw_run(gateway, relay):
    gw, app = gateway
    wang = "wang.fang@newcustomer.example"
    inner = ("---------- Forwarded message ---------\nFrom: Wang Fang <wang.fang@newcustomer.example>\n"
             "Date: Sun, 1 Mar 2026 16:20:00 +0800\nSubject: Database backup failed\n"
             "To: Bob <bob@support.example.com>\n\nHello, last night's database backup failed with ORA-19502.\n")
    fwd = build(frm=BOB, name="Bob Li", to=intake_address(app, BOB), subject="Fwd: Database backup failed",
                body="Wang Fang wrote to me directly, please track it.\n\n" + inner)
    send(gw.port, fwd, BOB, [intake_address(app, BOB)])
    [note] = wait_for(lambda: [m for m in _mail_to(relay, BOB, "Database backup failed") if m["To"] == BOB],
                      timeout=60, what="bob's notification of the forwarded case")
    t = _ticket(app, _ref(note))
    assert (t.requester_email, t.owner, t.subject) == (wang, BOB, "Database backup failed")
    assert not _mail_to(relay, wang)  # workflow.ack_forwarded is off: the customer hears nothing yet
    _answer(gw, note, "Hello, please check the free space in the backup folder.\n", frm=BOB)
    [answer] = wait_for(lambda: _mail_to(relay, wang), timeout=60, what="bob's answer relayed to the customer")
    assert "check the free space" in body_text(answer) and BOB not in all_text(answer.as_bytes())


def test_a_strangers_mail_is_held_then_released_by_mail_through_supportgw_run(gateway, relay):
    gw, app = gateway
    note = _new_case(gw, relay, "Website down", "Our website returns 502.\n")
    ref = _ref(note)
    send(gw.port, build(frm=MALLORY, name="Mallory", msgid="<m1@evil.example>", to=SUPPORT,
                        subject=f"Re: [{ref}] hello", body="What is going on with this ticket?\n"),
         MALLORY, [SUPPORT])
    [held_note] = wait_for(lambda: [m for m in _mail_to(relay, ALICE) if _ref(m) != ref and "#release" in body_text(m)],
                           timeout=60, what="alice told of the held ticket")
    held = _ticket(app, _ref(held_note))
    assert held.held and not _mail_to(relay, MALLORY)
    _answer(gw, held_note, "#release\n")
    [ack] = wait_for(lambda: _mail_to(relay, MALLORY), timeout=60, what="the held acknowledgement, on release")
    assert held.ref in ack["Subject"] and ack["In-Reply-To"] == "<m1@evil.example>"
    assert "website down" not in all_text(ack.as_bytes()).lower()
    assert not _ticket(app, held.ref).held


def _customer_replies(gw, mail, body):
    """Li Wei answers one of our mails to him, through its signed Reply-To."""
    to = mail["Reply-To"].addresses[0].addr_spec
    send(gw.port, build(frm=CUSTOMER, name="Li Wei", to=to, subject="Re: " + mail["Subject"], body=body,
                        in_reply_to=mail["Message-ID"], references=mail["Message-ID"]), CUSTOMER, [to])


def _ack(relay, ref):
    return wait_for(lambda: [m for m in _mail_to(relay, CUSTOMER) if ref in m["Subject"]], timeout=60,
                    what=f"the acknowledgement of {ref}")[0]


def _events(app, ticket_id, kind):
    with app.db.session() as s:
        return list(s.execute(select(Event.data).where(Event.ticket_id == ticket_id, Event.kind == kind)
                              .order_by(Event.id)).scalars())


def _customer_saw(relay) -> str:
    """Everything the customer (and only the customer) was sent, for "never anywhere" checks."""
    return "\n".join(all_text(m["raw"]) for m in list(relay.messages) if CUSTOMER in m["to"])


def test_send_in_holds_an_answer_and_the_customer_writing_first_cancels_another_through_supportgw_run(
        gateway, relay):
    gw, app = gateway
    note_a = _new_case(gw, relay, "Website returns 502", "Since 9:00 the website returns 502.\n")
    note_b = _new_case(gw, relay, "Mail server rejects invoices", "Our invoices bounce since this morning.\n")
    a, b = _ref(note_a), _ref(note_b)
    ack_b = _ack(relay, b)
    asked = time.monotonic()
    _answer(gw, note_a, "#send-in 1m\nThe fix is deployed; please try again after lunch.\n")
    _answer(gw, note_b, "#send-in 1m\nPlease restart the mail relay tonight.\n")
    wait_for(lambda: len(_events(app, _ticket(app, b).id, "send_later")) == 1, timeout=60,
             what="both answers planned")
    assert _events(app, _ticket(app, a).id, "send_later")
    _customer_replies(gw, ack_b, "It works again, someone restarted the relay.\n")
    [told] = wait_for(lambda: _mail_to(relay, ALICE, "not sent"), timeout=60, what="alice told hers was not sent")
    assert b in told["Subject"] and "> Please restart the mail relay tonight." in body_text(told)
    assert _events(app, _ticket(app, b).id, "send_later_cancelled")[0]["author"] == ALICE
    with app.db.session() as s:
        waiting = s.execute(select(OutboxRow.status).where(OutboxRow.ticket_id == _ticket(app, a).id,
                                                           OutboxRow.kind == "relay")).scalars().all()
    held = _ticket(app, a)
    assert waiting == ["pending"] and (held.status, held.first_responded_at) == ("new", None)  # nothing yet
    assert "after lunch" not in _customer_saw(relay)
    [answer] = wait_for(lambda: [m for m in _mail_to(relay, CUSTOMER, a) if "after lunch" in body_text(m)],
                        timeout=120, what="the answer sent a minute later")
    assert time.monotonic() - asked >= 59  # not before its minute
    # b's minute is over too (it was asked after a's): still never sent
    time.sleep(max(0.0, asked + 65 - time.monotonic()))
    saw = _customer_saw(relay)
    assert "restart the mail relay" not in saw
    assert ALICE not in saw and "#send-in" not in saw and "not sent" not in saw
    assert answer["In-Reply-To"]  # threaded on the customer's conversation, as any answer
    with app.db.session() as s:
        rows = dict(s.execute(select(OutboxRow.ticket_id, OutboxRow.status).where(OutboxRow.kind == "relay")).all())
    assert rows == {_ticket(app, a).id: "sent", _ticket(app, b).id: "cancelled"}
    assert _ticket(app, a).first_responded_at is not None  # it counts once it went
    assert _ticket(app, b).first_responded_at is None  # the cancelled one never did


def test_an_answer_written_without_seeing_a_colleagues_is_held_until_send_through_supportgw_run(gateway, relay):
    gw, app = gateway
    note_alice = _new_case(gw, relay, "Website returns 502", "Since 9:00 the website returns 502.\n")
    ref = _ref(note_alice)
    _answer(gw, note_alice, f"#assign {BOB}\n")
    [note_bob] = wait_for(lambda: _mail_to(relay, BOB, ref), timeout=60, what="bob's notification of the assignment")
    _answer(gw, note_bob, "Please restart the nginx service.\n", frm=BOB)
    wait_for(lambda: [m for m in _mail_to(relay, CUSTOMER, ref) if "restart the nginx" in body_text(m)],
             timeout=60, what="bob's answer relayed")
    assert _ticket(app, ref).status == "pending"  # bob's answer set it
    # alice answers from her first notification: she never saw bob's answer
    _answer(gw, note_alice, "#status open\nTry clearing the browser cache.\n")
    [told] = wait_for(lambda: [m for m in _mail_to(relay, ALICE, ref) if "#send" in body_text(m)
                               and "> Try clearing the browser cache." in body_text(m)],
                      timeout=60, what="alice told her answer is held")
    assert "> Please restart the nginx service." in body_text(told)
    tid = _ticket(app, ref).id
    assert [d["name"] for d in _events(app, tid, "command")] == ["assign"]  # its #status did not run
    assert _ticket(app, ref).status == "pending" and "browser cache" not in _customer_saw(relay)
    _answer(gw, told, "#send\n")
    [sent] = wait_for(lambda: [m for m in _mail_to(relay, CUSTOMER, ref) if "browser cache" in body_text(m)],
                      timeout=60, what="alice's held answer sent on #send")
    assert _ticket(app, ref).status == "open"  # its commands ran when it was released
    assert [d["name"] for d in _events(app, tid, "command")] == ["assign", "status"]
    # a second #send is an error to alice, and the customer gets nothing twice
    _answer(gw, told, "#send\n")
    wait_for(lambda: [m for m in _mail_to(relay, ALICE, ref) if "already sent or dropped" in body_text(m)],
             timeout=60, what="alice told it went already")
    to_customer = _mail_to(relay, CUSTOMER, ref)
    assert len([m for m in to_customer if "browser cache" in body_text(m)]) == 1
    assert len([m for m in to_customer if "restart the nginx" in body_text(m)]) == 1
    saw = _customer_saw(relay)
    assert ALICE not in saw and BOB not in saw and "#status" not in saw and "#send" not in saw
    assert "held" not in body_text(sent).lower()


def test_split_by_mail_turns_a_new_question_into_its_own_ticket_through_supportgw_run(gateway, relay):
    gw, app = gateway
    note = _new_case(gw, relay, "Website returns 502", "Since 9:00 the website returns 502.\n")
    first = _ticket(app, _ref(note))
    _customer_replies(gw, _ack(relay, first.ref), "Another thing: how do I add a user to the admin group?\n")
    [about] = wait_for(lambda: [m for m in _mail_to(relay, ALICE, first.ref) if "admin group" in body_text(m)],
                       timeout=60, what="alice's notification of the new question")
    _answer(gw, about, "#split\n")
    [ack] = wait_for(lambda: [m for m in _mail_to(relay, CUSTOMER) if _ref(m) != first.ref],
                     timeout=60, what="the customer's acknowledgement of the new ticket")
    new = _ticket(app, _ref(ack))
    assert (new.linked_ticket_id, new.requester_email) == (first.id, CUSTOMER)
    assert _events(app, first.id, "split")[0]["into"] == new.ref
    with app.db.session() as s:
        texts = {tid: [t for t, i in s.execute(select(Message.text, Message.ticket_id)).all() if i == tid]
                 for tid in (first.id, new.id)}
    assert any("admin group" in t for t in texts[new.id]) and not any("admin group" in t for t in texts[first.id])
    # alice works on the new ticket: a note for colleagues, then the answer
    [note_new] = wait_for(lambda: _mail_to(relay, ALICE, new.ref), timeout=60, what="alice notified of the new ticket")
    _answer(gw, note_new, "#note Carol manages the admin group; she agreed.\n")
    _answer(gw, note_new, "Open Settings > Users, choose the user and tick Admin.\n")
    [answer] = wait_for(lambda: [m for m in _mail_to(relay, CUSTOMER, new.ref) if "tick Admin" in body_text(m)],
                        timeout=60, what="alice's answer on the new ticket")
    # the customer's next reply on that thread reaches the new ticket, not the old one
    _customer_replies(gw, answer, "Thanks, it is for the user zhou.\n")
    wait_for(lambda: [m for m in _mail_to(relay, ALICE, new.ref) if "user zhou" in body_text(m)],
             timeout=60, what="alice notified of the reply on the new ticket")
    with app.db.session() as s:
        [(on,)] = s.execute(select(Message.ticket_id).where(Message.text.contains("user zhou"))).all()
    assert on == new.id
    with app.db.session() as s:
        [(note_on, internal)] = s.execute(select(Message.ticket_id, Message.internal)
                                          .where(Message.text.contains("she agreed"))).all()
    assert (note_on, internal) == (new.id, True)
    saw = _customer_saw(relay)
    assert ALICE not in saw and "she agreed" not in saw and "#split" not in saw and "#note" not in saw
