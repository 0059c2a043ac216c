"""Threading: which ticket an email joins, by each method, and never a ticket
its sender has no part in."""

from __future__ import annotations

from sqlalchemy import func, select

from gateway.pipeline.process import Source, ingest, process_ids, spool
from gateway.tokens import reply_address
from storage.models import Event, Message, Participant, SpoolEntry, Ticket
from tests.mail import build

SUPPORT = "support@support.example.test"
ALICE = "alice@customer.example.com"
MALLORY = "mallory@evil.example"


def _run(app, raw, rcpts=(SUPPORT,)):
    return ingest(app, [(raw, Source("smtp", envelope_to=tuple(rcpts)))])


def _tickets(app):
    with app.db.session() as s:
        return list(s.execute(select(Ticket).order_by(Ticket.id)).scalars())


def _count_messages(app, ticket_id):
    with app.db.session() as s:
        return s.execute(select(func.count(Message.id)).where(Message.ticket_id == ticket_id)).scalar_one()


def test_reply_threads_by_in_reply_to(app):
    _run(app, build(msgid="<root@c>"))
    out = _run(app, build(msgid="<r1@c>", in_reply_to="<root@c>", subject="Re: whatever"))
    assert out["threaded"] == 1
    assert len(_tickets(app)) == 1


def test_reply_threads_by_references_when_in_reply_to_is_unknown(app):
    _run(app, build(msgid="<root@c>"))
    out = _run(app, build(msgid="<r1@c>", in_reply_to="<unknown@c>", references="<root@c> <unknown@c>",
                          subject="new words"))
    assert out["threaded"] == 1


def test_reply_threads_by_subject_token(app):
    _run(app, build(msgid="<root@c>"))
    ref = _tickets(app)[0].ref
    out = _run(app, build(msgid="<r2@c>", subject=f"Re: [{ref}] printer"))
    assert out["threaded"] == 1
    assert _count_messages(app, _tickets(app)[0].id) == 2


def test_reply_threads_by_signed_reply_address(app):
    _run(app, build(msgid="<root@c>"))
    t = _tickets(app)[0]
    addr = reply_address(SUPPORT, app.signer.reply_token(t.id, ALICE))
    out = _run(app, build(msgid="<r3@c>", to=addr, subject="totally different subject"), rcpts=(addr,))
    assert out["threaded"] == 1


def test_stranger_quoting_the_subject_token_opens_a_new_ticket(app):
    _run(app, build(msgid="<root@c>"))
    first = _tickets(app)[0]
    out = _run(app, build(frm=MALLORY, msgid="<m1@evil>", subject=f"Re: [{first.ref}] give me the data",
                          name="Mallory"))
    assert out["created"] == 1
    tickets = _tickets(app)
    assert len(tickets) == 2
    assert tickets[1].requester_email == MALLORY
    assert tickets[1].linked_ticket_id == first.id
    assert _count_messages(app, first.id) == 1  # nothing joined the original


def test_stranger_replying_by_references_opens_a_new_ticket(app):
    _run(app, build(msgid="<root@c>"))
    out = _run(app, build(frm=MALLORY, msgid="<m2@evil>", in_reply_to="<root@c>", name=""))
    assert out["created"] == 1
    assert _count_messages(app, _tickets(app)[0].id) == 1


def test_stranger_using_the_customers_reply_address_opens_a_new_ticket(app):
    _run(app, build(msgid="<root@c>"))
    t = _tickets(app)[0]
    addr = reply_address(SUPPORT, app.signer.reply_token(t.id, ALICE))  # issued to alice, used by mallory
    out = _run(app, build(frm=MALLORY, msgid="<m3@evil>", to=addr), rcpts=(addr,))
    assert out["created"] == 1
    assert _count_messages(app, t.id) == 1


def test_guessed_token_is_worthless(app):
    _run(app, build(msgid="<root@c>"))
    t = _tickets(app)[0]
    addr = f"support+t{t.id}xaaaaaaaaaaaaaaaa@support.example.test"
    out = _run(app, build(frm=MALLORY, msgid="<m4@evil>", to=addr, subject="hi"), rcpts=(addr,))
    assert out["created"] == 1


def test_cc_participant_reply_all_joins_the_same_ticket(app):
    bob = "bob@customer.example.com"
    _run(app, build(msgid="<root@c>", cc=bob))
    t = _tickets(app)[0]
    with app.db.session() as s:
        roles = {(p.email, p.role) for p in s.execute(select(Participant).where(Participant.ticket_id == t.id)).scalars()}
    assert (bob, "cc") in roles
    out = _run(app, build(frm=bob, name="Bob", msgid="<b1@c>", in_reply_to="<root@c>", cc=ALICE,
                          subject="Re: Printer on fire"))
    assert out["threaded"] == 1
    assert len(_tickets(app)) == 1


def test_reply_waits_while_its_parent_is_still_pending(app):
    """Two workers: the reply must not be threaded before its parent is stored."""
    parent, reply = spool(app, [
        (build(msgid="<p@c>"), Source("smtp")),
        (build(msgid="<c@c>", in_reply_to="<p@c>", subject="Re: Printer on fire"), Source("smtp")),
    ])
    first = process_ids(app, [reply.spool_id])  # a second worker picks the reply up first
    assert first == {"deferred": 1}
    with app.db.session() as s:
        assert s.get(SpoolEntry, reply.spool_id).status == "pending"
    assert process_ids(app, [parent.spool_id])["created"] == 1
    assert process_ids(app, [reply.spool_id])["threaded"] == 1
    assert len(_tickets(app)) == 1


def test_routing_history_names_each_rule_that_fired(app):
    _run(app, build(msgid="<o@c>", subject="Production outage, all users down", body="urgent please help\n"))
    t = _tickets(app)[0]
    with app.db.session() as s:
        routed = s.execute(select(Event).where(Event.ticket_id == t.id, Event.kind == "routed")).scalar_one()
    assert "rule '" in routed.detail
    assert routed.data["rules"], "the fired rules are kept as data too"
    assert t.priority in ("P1", "P2")


def test_people_the_requester_ccs_later_join_and_their_reply_all_threads(app):
    carol = "carol@customer.example.com"
    _run(app, build(msgid="<root@c>"))
    _run(app, build(msgid="<r@c>", in_reply_to="<root@c>", cc=carol, subject="Re: Printer on fire"))
    out = _run(app, build(frm=carol, name="Carol", msgid="<c1@c>", in_reply_to="<r@c>", subject="Re: Printer on fire"))
    assert out["threaded"] == 1
    assert len(_tickets(app)) == 1


def test_held_stranger_ticket_gets_no_acknowledgement(make_app):
    from storage.models import OutboxRow

    app = make_app(workflow={"stranger_policy": "hold"})
    _run(app, build(msgid="<root@c>"))
    ref = _tickets(app)[0].ref
    out = _run(app, build(frm=MALLORY, msgid="<m9@evil>", subject=f"Re: [{ref}] hello", name=""))
    assert out["held"] == 1
    held = _tickets(app)[1]
    assert held.held
    with app.db.session() as s:
        acks = s.execute(select(OutboxRow).where(OutboxRow.kind == "acknowledgement",
                                                 OutboxRow.ticket_id == held.id)).scalars().all()
    assert acks == []
