"""The handover story over real SMTP sockets, the clock driven by hand:

customer mail -> the primary stays silent past the first response -> handover mail to
the secondary, manager on CC, and a notice to the primary -> the secondary resolves by replying to it -> handback
summary to the primary, manager on CC, and the ticket is the primary's again.
"""

from __future__ import annotations

from sqlalchemy import select

from gateway.jobs import scheduler
from gateway.clock import ManualClock
from storage.models import Ticket
from tests.conftest import wait_for
from tests.mail import body_text, build, parse, send
from tests.sla_kit import ALICE, BOB, CAROL, CUSTOMER, SUPPORT, utc


def _find(relay, pred):
    for m in list(relay.messages):
        msg = parse(m["raw"])
        if pred(m, msg):
            return m, msg
    return None


def _ticket(app):
    with app.db.session() as s:
        return s.execute(select(Ticket)).scalars().first()


def test_secondary_takes_over_after_silence_and_hands_back_by_mail(running, relay):
    clock = ManualClock(utc(2026, 3, 2, 1, 0))  # Monday 09:00 Shanghai
    gw = running(clock=clock)
    app = gw.app
    send(gw.smtp_port, build(frm=CUSTOMER, subject="Core banking batch is slow", name="Li Ming",
                             body="Hello,\nthe nightly batch takes hours since Friday.\n"), CUSTOMER, [SUPPORT])
    t = wait_for(lambda: _ticket(app), what="ticket")
    assert (t.owner, t.handler) == (ALICE, ALICE)
    wait_for(lambda: _find(relay, lambda m, msg: m["to"] == [CUSTOMER]), what="acknowledgement")

    # alice says nothing; the first response (2 business hours) is due at 11:00 Shanghai
    clock.set(utc(2026, 3, 2, 3, 0))
    assert scheduler.run_due_jobs(app, ["sla-watch"])["sla-watch"]["handover"] == 1
    gw.dispatcher.kick()
    # one copy each for the secondary and the manager on CC, each answering to its reader
    env, handover_mail = wait_for(lambda: _find(relay, lambda m, msg: "Handover" in msg["Subject"]
                                                and m["to"] == [BOB]), what="handover mail at the relay")
    _, manager_copy = wait_for(lambda: _find(relay, lambda m, msg: "Handover" in msg["Subject"]
                                             and m["to"] == [CAROL]), what="the manager's copy")
    for copy, reader in ((handover_mail, BOB), (manager_copy, CAROL)):
        assert copy["To"] == BOB and copy["Cc"] == CAROL
        assert app.signer.check_reply_token(copy["Reply-To"].split("@")[0].split("+", 1)[1], reader) == t.id
    assert "first-response deadline missed" in body_text(handover_mail)
    assert "the nightly batch takes hours" in body_text(handover_mail)
    takeover = wait_for(lambda: _find(relay, lambda m, msg: m["to"] == [CUSTOMER] and "taken over" in msg["Subject"]),
                        what="customer told")
    # the primary, who stays responsible for coordination (第六条), is told too, on her own signed address
    env, told = wait_for(lambda: _find(relay, lambda m, msg: "Handed over to" in msg["Subject"]),
                         what="primary told of the handover")
    assert env["to"] == [ALICE] and told["To"] == ALICE and told["Cc"] is None
    assert told["Reply-To"].startswith("support+") and told["Reply-To"] != handover_mail["Reply-To"]
    assert app.signer.check_reply_token(told["Reply-To"].split("@")[0].split("+", 1)[1], ALICE) == t.id
    assert "coordinating" in body_text(told)
    assert BOB not in body_text(takeover[1]) and CAROL not in body_text(takeover[1])

    # bob answers the handover mail through its signed Reply-To: logs time and resolves with a solution
    clock.advance(minutes=50)
    reply = build(frm=BOB, to=handover_mail["Reply-To"], name="Bob Zhang", subject=f"Re: {handover_mail['Subject']}",
                  body="#time 45m\n#solution\nRebuilt the batch index; the run takes 20 minutes again.\n",
                  in_reply_to=handover_mail["Message-ID"], references=handover_mail["Message-ID"])
    send(gw.smtp_port, reply, BOB, [handover_mail["Reply-To"]])

    env, back = wait_for(lambda: _find(relay, lambda m, msg: "Handback" in msg["Subject"] and m["to"] == [ALICE]),
                         timeout=15, what="handback summary at the relay")
    _, manager_back = wait_for(lambda: _find(relay, lambda m, msg: "Handback" in msg["Subject"]
                                             and m["to"] == [CAROL]), what="the manager's copy of the handback")
    for copy in (back, manager_back):
        assert copy["To"] == ALICE and copy["Cc"] == CAROL
    assert back["Reply-To"] != manager_back["Reply-To"]
    text = body_text(back)
    assert "Rebuilt the batch index" in text and "45 minutes" in text
    assert back["Reply-To"].startswith("support+")
    t = wait_for(lambda: (lambda x: x if x.status == "resolved" else None)(_ticket(app)), what="resolved")
    assert (t.owner, t.handler, t.handover_reason) == (ALICE, ALICE, "")
    # the customer got the closure from the closure module, and never an internal mail
    for m in relay.messages:
        if CUSTOMER in m["to"]:
            assert ALICE not in body_text(parse(m["raw"])) and CAROL not in body_text(parse(m["raw"]))
