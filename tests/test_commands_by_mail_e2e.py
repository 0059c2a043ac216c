"""#handover, #cannot and #kb by mail, through the real modules: an engineer's reply to the
notification they received (its signed Reply-To), through the pipeline, and what really
follows: who owns and handles the ticket, which mails are queued to whom, what is stored.

Li Wei's website project: primary alice, secondary bob, manager carol (routing/sample_rules.toml).
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from gateway.desk import kb
from storage.models import KbArticle, Message
from tests.engineer_mail import (
    ALICE, BOB, CAROL, CUSTOMER, Desk, customer_mail, events, open_ticket, reply_to, ticket,
)
from tests.hardening import cli, write_config
from tests.mail import body_text

EN = dict(subject="Website returns 502", body="Hello,\nour website returns 502 since 9:00.\n")
INTERNAL = (ALICE, BOB, CAROL, "support.example.com")


@pytest.fixture
def desk(make_app, clock):
    return Desk(make_app(clock=clock))


def _to(mails, who):
    return [m for m in mails if who in m["to"]]


def _signed_for(desk, msg, engineer) -> int | None:
    token = msg["Reply-To"].split("+", 1)[1].split("@")[0]
    return desk.app.signer.check_reply_token(token, engineer)


def _no_internal_detail_reaches_the_customer(mails):
    """No engineer's address in what the customer reads (text and address headers)."""
    for m in customer_mail(mails):
        msg = m["msg"]
        parts = [body_text(msg)] + [str(msg[h] or "") for h in ("From", "To", "Cc", "Reply-To", "Subject")]
        text = "\n".join(parts).lower()
        for secret in INTERNAL:
            assert secret not in text, (secret, msg["Subject"])


def _handed_over(desk):
    """alice's notification, alice answers `#handover`; returns (ticket id, bob's handover mail, sent)."""
    tid, note = open_ticket(desk, **EN)
    desk.new_mail()
    desk.receive(reply_to(note, "#handover\n"))
    sent = desk.new_mail()
    [to_bob] = _to(sent, BOB)
    return tid, to_bob, sent


def test_handover_by_mail_gives_the_incident_to_the_secondary_manager_on_cc(desk):
    tid, to_bob, sent = _handed_over(desk)
    t = ticket(desk.app, tid)
    assert t.handler == BOB and t.owner == ALICE  # bob handles this incident; the project stays alice's
    [ev] = events(desk.app, tid, "handover")
    assert (ev.actor, ev.data["primary"], ev.data["secondary"], ev.data["manager"]) == (ALICE, ALICE, BOB, CAROL)
    # the escalation mail: to the secondary, the manager on CC, the full history; bob's copy is
    # answerable by bob only, the manager's copy (same To and Cc) by the manager only
    assert to_bob["to"] == [BOB]
    msg = to_bob["msg"]
    assert msg["To"] == BOB and msg["Cc"] == CAROL
    [carols] = [m for m in _to(sent, CAROL) if m["msg"]["To"] == BOB]
    assert carols["msg"]["Cc"] == CAROL and _signed_for(desk, carols["msg"], CAROL) == tid
    assert "our website returns 502 since 9:00." in body_text(msg)
    assert _signed_for(desk, msg, BOB) == tid
    _no_internal_detail_reaches_the_customer(sent)


def test_secondary_resolving_after_a_handover_hands_back_to_the_primary_manager_on_cc(desk):
    tid, to_bob, _ = _handed_over(desk)
    desk.receive(reply_to(to_bob["msg"], "#status resolved\nThe upstream pool was exhausted; it is enlarged.\n",
                          frm=BOB, name="Bob Zhang"))
    sent = desk.new_mail()
    t = ticket(desk.app, tid)
    assert t.status == "resolved" and (t.owner, t.handler) == (ALICE, ALICE)
    [back] = [m for m in _to(sent, ALICE) if "upstream pool" in body_text(m["msg"])]
    assert back["to"] == [ALICE] and back["msg"]["Cc"] == CAROL
    assert [m for m in _to(sent, CAROL) if "upstream pool" in body_text(m["msg"]) and m["msg"]["To"] == ALICE]
    # the customer: bob's answer, then the closure with the survey; neither names an engineer
    answer, closure = [m["msg"] for m in customer_mail(sent)]
    assert "The upstream pool was exhausted" in body_text(answer)
    assert "1" in body_text(closure) and "5" in body_text(closure) and "reply" in body_text(closure).lower()
    _no_internal_detail_reaches_the_customer(sent)


def test_cannot_by_mail_from_the_secondary_gives_the_ticket_to_the_manager(desk):
    tid, to_bob, _ = _handed_over(desk)
    desk.receive(reply_to(to_bob["msg"], "#cannot\n", frm=BOB, name="Bob Zhang"))
    sent = desk.new_mail()
    t = ticket(desk.app, tid)
    assert (t.owner, t.handler, t.manager_escalated) == (CAROL, CAROL, True)
    [ev] = events(desk.app, tid, "manager_escalation")
    assert ev.actor == BOB and ev.data["previous"] == BOB
    [alert] = _to(sent, CAROL)
    assert _signed_for(desk, alert["msg"], CAROL) == tid  # the manager can act by replying
    assert customer_mail(sent) == []  # a command alone says nothing to the customer
    # the manager answers: relayed to the customer as from the support desk
    desk.receive(reply_to(alert["msg"], "We are replacing the load balancer tonight.\n", frm=CAROL, name="Carol Li"))
    [relayed] = customer_mail(desk.new_mail())
    assert "replacing the load balancer" in body_text(relayed["msg"])
    _no_internal_detail_reaches_the_customer([relayed])


def test_cannot_without_a_handover_is_refused_and_the_engineer_told_why(desk):
    tid, note = open_ticket(desk, **EN)
    desk.new_mail()
    desk.receive(reply_to(note, "#cannot\n"))
    sent = desk.new_mail()
    t = ticket(desk.app, tid)
    assert (t.owner, t.handler, t.manager_escalated) == (ALICE, ALICE, False)
    assert events(desk.app, tid, "manager_escalation") == []
    [refused] = _to(sent, ALICE)
    assert "#cannot" in refused["msg"]["Subject"] and "no handover is in progress" in body_text(refused["msg"])
    assert _to(sent, CAROL) == [] and customer_mail(sent) == []


def test_handover_twice_is_refused_and_bob_keeps_it(desk):
    tid, _, _ = _handed_over(desk)
    note = next(m["msg"] for m in desk.transport.sent if ALICE in m["to"])
    desk.receive(reply_to(note, "#handover\n"))
    [refused] = _to(desk.new_mail(), ALICE)
    assert "already handed over" in body_text(refused["msg"])
    assert ticket(desk.app, tid).handler == BOB and len(events(desk.app, tid, "handover")) == 1


def test_solution_with_kb_by_mail_stores_a_findable_article_and_closes(desk, tmp_path):
    tid, note = open_ticket(desk, **EN)
    desk.new_mail()
    desk.receive(reply_to(note, "#solution\n#kb nginx 502\nRaise proxy_read_timeout to 120s and reload nginx.\n"))
    sent = desk.new_mail()
    t = ticket(desk.app, tid)
    assert t.status == "resolved" and t.solution == "Raise proxy_read_timeout to 120s and reload nginx."
    with desk.app.db.session() as s:
        [article] = s.execute(select(KbArticle)).scalars().all()
        assert (article.ticket_id, article.title, article.tags) == (tid, "Website returns 502", ["nginx", "502"])
        assert "our website returns 502 since 9:00." in article.problem  # the customer's problem, not the reply
        assert article.solution == t.solution
        [hit] = kb.search(s, "proxy_read_timeout nginx")
        assert hit.article.id == article.id
    [saved] = events(desk.app, tid, "kb_saved")
    assert saved.actor == ALICE and saved.data["article"] == article.id
    # the customer gets the solution in the closure mail, once, and no separate relay of it
    [closure] = customer_mail(sent)
    assert "Raise proxy_read_timeout to 120s" in body_text(closure["msg"])
    # and the support team finds it with `supportgw kb search`
    out = cli(write_config(desk.app, tmp_path / "gw.toml"), "kb", "search", "--json", "nginx", "502")
    assert out.returncode == 0, out.stderr
    [found] = json.loads(out.stdout)
    assert (found["id"], found["ticket_id"], found["tags"]) == (article.id, tid, ["nginx", "502"])


def test_customer_mail_threads_only_on_what_the_customer_has_seen(desk):
    """No internal Message-ID reaches a customer: not an engineer's own reply's, not one of our
    notifications to engineers. A customer mail's In-Reply-To and References name only mail the
    customer sent or received."""
    tid, to_bob, _ = _handed_over(desk)
    desk.receive(reply_to(to_bob["msg"], "Could you send the nginx error log?\n", frm=BOB, name="Bob Zhang"))
    desk.receive(reply_to(to_bob["msg"], "#status resolved\nThe upstream pool is enlarged.\n", frm=BOB,
                          name="Bob Zhang"))
    desk.new_mail()
    with desk.app.db.session() as s:  # what the customer sent
        seen = {f"<{x.strip('<>')}>" for x in s.execute(
            select(Message.message_id).where(Message.ticket_id == tid, Message.sender_email == CUSTOMER)).scalars()}
    customer_mails = [m["msg"] for m in customer_mail(desk.transport.sent)]
    assert len(customer_mails) >= 4  # acknowledgement, takeover, bob's question, his answer, the closure
    for msg in customer_mails:  # in sending order: what the customer had seen when each was sent
        named = set((msg["References"] or "").split()) | {msg["In-Reply-To"]} - {None}
        assert named <= seen, (msg["Subject"], named - seen)
        seen.add(msg["Message-ID"])
