"""One ticket's whole life through `supportgw run` as deployed: the default worker process
(gateway.workers = 1), real SMTP in, every mail out to a real aiosmtpd relay.

new ticket -> engineer's answer -> #handover to the secondary -> the secondary resolves ->
handback to the primary (manager on CC) -> closure with survey -> the customer's score.
At each step: what each party received, and who holds the ticket.

Li Wei's website project (routing/sample_rules.toml): primary alice, secondary bob, manager carol.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.app import load_secret_key
from gateway.config import load_config
from gateway.tokens import Signer
from storage.db import Database
from storage.models import OutboxRow, SurveyResponse, Ticket
from tests.conftest import drop_database, fresh_database_url, wait_for
from tests.engineer_mail import ALICE, BOB, CAROL, CUSTOMER, SUPPORT, reply_to

DAVE = "dave@support.example.com"  # tier 2, team l2: where the support team escalates
from tests.gwproc import GatewayProcess, write_run_config
from tests.mail import body_text, build, parse, send

ENGINEERS = (ALICE, BOB, CAROL, DAVE)


class Story:
    """The gateway process, its relay, and who received what since the last look."""

    def __init__(self, tmp_path, relay):
        self.relay = relay
        self.url = fresh_database_url(tmp_path)
        cfg, self.port = write_run_config(tmp_path, self.url, relay.port)
        assert "workers" not in cfg.read_text()  # the default: one worker process
        self.gw = GatewayProcess(cfg, self.port, tmp_path / "gw.log")
        self.db = Database(self.url)
        self.signer = Signer(load_secret_key(load_config(cfg)))  # the gateway's key, from its config
        self.seen = 0
        self.customer_knows: set[str] = set()  # Message-IDs the customer sent or received

    def mail(self, raw: bytes, mail_from: str, rcpt: str) -> None:
        if mail_from == CUSTOMER:
            self.customer_knows.add(parse(raw)["Message-ID"])
        send(self.port, raw, mail_from, [rcpt])

    def received(self, expect: dict[str, int], timeout: float = 60, exact: bool = True,
                 optional=()) -> dict[str, list]:
        """Wait until the relay got `expect[address]` new mails per address; then check that
        it got exactly those (no other address any, `optional` addresses aside) unless not
        `exact`. Returns {address: [parsed mail, ...]}."""
        def new():
            return list(self.relay.messages)[self.seen:]

        def counts():
            got: dict[str, int] = {}
            for m in new():
                for a in m["to"]:
                    got[a] = got.get(a, 0) + 1
            return got

        wait_for(lambda: all(counts().get(a, 0) >= n for a, n in expect.items()), timeout=timeout,
                 what=f"mail for {expect} at the relay")
        wait_for(self.outbox_sent, timeout=timeout, what="every queued mail sent")  # nothing still on its way
        arrived = new()
        out: dict[str, list] = {}
        for m in arrived:
            for a in m["to"]:
                out.setdefault(a, []).append(parse(m["raw"]))
        self.seen += len(arrived)
        if exact:
            got = {a: len(v) for a, v in out.items() if a not in optional or a in expect}
            assert got == expect, self.log_tail()
        for msg in out.get(CUSTOMER, []):
            # no internal Message-ID (our notifications, the engineers' own mails) reaches the customer
            named = set((msg["References"] or "").split()) | {msg["In-Reply-To"]} - {None}
            assert named <= self.customer_knows, (msg["Subject"], named - self.customer_knows)
            self.customer_knows.add(msg["Message-ID"])
        return out

    def outbox_sent(self) -> bool:
        with self.db.session() as s:
            return s.execute(select(OutboxRow.id).where(OutboxRow.status != "sent")).first() is None

    def ticket(self) -> Ticket:
        with self.db.session() as s:
            return s.execute(select(Ticket)).scalars().one()

    def workers(self) -> set[int]:
        """The gateway's worker processes (multiprocessing's resource tracker is a child too)."""
        pid = self.gw.proc.pid
        children = {int(c) for task in Path(f"/proc/{pid}/task").iterdir()
                    for c in (task / "children").read_text().split()}
        return {c for c in children if b"resource_tracker" not in Path(f"/proc/{c}/cmdline").read_bytes()}

    def log_tail(self) -> str:
        return self.gw.log.read_text()[-3000:]


@pytest.fixture
def story(tmp_path, relay):
    st = Story(tmp_path, relay)
    st.gw.start()
    try:
        yield st
        assert st.gw.terminate(30) == 0, st.log_tail()
    finally:
        st.gw.stop_quietly()
        st.db.dispose()
        drop_database(st.url)


def customer_sees_nothing_internal(msg) -> None:
    """What the customer reads: from the support address, answerable to it, no engineer in it."""
    assert msg["From"].addresses[0].addr_spec == SUPPORT
    assert msg["Reply-To"].startswith("support+") and msg["Reply-To"].endswith("@support.example.test")
    visible = "\n".join([body_text(msg)] + [str(msg[h] or "") for h in ("From", "To", "Cc", "Reply-To", "Subject")])
    for engineer in ENGINEERS:
        assert engineer not in visible.lower(), (engineer, msg["Subject"])


def _same_mail(copy, original) -> bool:
    """The manager's copy is the same mail (one mail with a CC, or one copy per recipient)."""
    return all(copy[h] == original[h] for h in ("Subject", "To", "Cc")) and body_text(copy) == body_text(original)


def _signed_for(story, msg, engineer: str) -> bool:
    """msg's Reply-To is the signed address of `engineer` for the story's ticket."""
    token = msg["Reply-To"].split("+", 1)[1].split("@")[0]
    return story.signer.check_reply_token(token, engineer) == story.ticket().id


def answer(story, original, text: str, *, frm: str, name: str) -> None:
    """An engineer replies, from their own mail client, to the signed Reply-To of `original`."""
    assert original["Reply-To"].startswith("support+")
    story.mail(reply_to(original, text, frm=frm, name=name), frm, original["Reply-To"])


def test_a_ticket_from_first_mail_to_survey_through_the_worker_process(story):
    # 1. the customer writes: an acknowledgement to them, a notification to the primary, nobody else
    story.mail(build(frm=CUSTOMER, name="Li Wei", subject="Website returns 502",
                     body="Hello,\nour website returns 502 since 9:00.\n"), CUSTOMER, SUPPORT)
    got = story.received({CUSTOMER: 1, ALICE: 1})
    assert len(story.workers()) == 1  # processing and sending happen in the one worker process
    t = story.ticket()
    assert (t.owner, t.handler, t.status) == (ALICE, ALICE, "new")
    [ack] = got[CUSTOMER]
    assert t.ref in ack["Subject"] and t.priority in body_text(ack)
    assert ack["Auto-Submitted"] == "auto-replied"
    customer_sees_nothing_internal(ack)
    [note] = got[ALICE]
    assert t.ref in note["Subject"] and "our website returns 502 since 9:00." in body_text(note)
    assert _signed_for(story, note, ALICE)  # her reply is recognised as hers, for this ticket

    # 2. alice answers from her mail client: relayed to the customer from the support address
    answer(story, note, "Hello Li Wei,\nplease clear the proxy cache and tell us if it helps.\n",
           frm=ALICE, name="Alice Wang")
    [relayed] = story.received({CUSTOMER: 1})[CUSTOMER]
    assert "please clear the proxy cache" in body_text(relayed)
    assert relayed["From"].addresses[0].display_name == "Alice (Support)"
    customer_sees_nothing_internal(relayed)
    assert story.ticket().first_responded_at is not None

    # 3. alice hands the incident over by command: bob gets it with the history, carol on CC
    answer(story, note, "#handover\n", frm=ALICE, name="Alice Wang")
    wait_for(lambda: story.ticket().handler == BOB, timeout=60, what="bob handles the incident")
    # carol: the CC of bob's mail. The customer may be told a colleague took over (the
    # regulations leave it open for a handover); whatever they get names no engineer.
    got = story.received({BOB: 1, CAROL: 1}, optional={CUSTOMER})
    [handover] = got[BOB]
    assert _same_mail(got[CAROL][0], handover)  # the manager's copy of it (CC)
    assert handover["To"] == BOB and handover["Cc"] == CAROL and _signed_for(story, handover, BOB)
    assert "our website returns 502 since 9:00." in body_text(handover)
    assert "please clear the proxy cache" in body_text(handover)  # what was already said
    for m in got.get(CUSTOMER, []):
        customer_sees_nothing_internal(m)
    assert story.ticket().owner == ALICE

    # 4. bob resolves by answering the handover mail: the customer gets his answer and the closure
    #    with the survey; alice gets the handback summary, carol on CC; the ticket is alice's again
    answer(story, handover, "#status resolved\n#time 40m\nThe upstream pool was exhausted; it is enlarged "
                            "and the site answers again.\n", frm=BOB, name="Bob Zhang")
    got = story.received({CUSTOMER: 2, ALICE: 1, CAROL: 1})
    relayed, closure = got[CUSTOMER]
    assert "The upstream pool was exhausted" in body_text(relayed)
    assert relayed["From"].addresses[0].display_name == "Bob (Support)"
    assert t.ref in closure["Subject"] and "1" in body_text(closure) and "5" in body_text(closure)
    assert "The upstream pool was exhausted" in body_text(closure)  # the solution, with the survey
    for m in (relayed, closure):
        customer_sees_nothing_internal(m)
    [back] = got[ALICE]
    assert _same_mail(got[CAROL][0], back)
    assert back["To"] == ALICE and back["Cc"] == CAROL
    assert "The upstream pool was exhausted" in body_text(back) and "40 minutes" in body_text(back)
    t = story.ticket()
    assert (t.status, t.owner, t.handler) == ("resolved", ALICE, ALICE)

    # 5. the customer answers the survey by replying to the closure mail: recorded, thanked
    reply = build(frm=CUSTOMER, name="Li Wei", to=closure["Reply-To"], subject=f"Re: {closure['Subject']}",
                  body="5 - fixed within the hour, thank you\n", in_reply_to=closure["Message-ID"],
                  references=closure["Message-ID"])
    story.mail(reply, CUSTOMER, closure["Reply-To"])
    [thanks] = story.received({CUSTOMER: 1})[CUSTOMER]
    assert t.ref in thanks["Subject"] and "5" in body_text(thanks)
    customer_sees_nothing_internal(thanks)
    with story.db.session() as s:
        [score] = s.execute(select(SurveyResponse)).scalars().all()
    assert (score.ticket_id, score.score) == (t.id, 5) and "fixed within the hour" in score.comment
    assert story.ticket().status == "resolved"  # a good score leaves it resolved


def _new_ticket(story, subject: str, body: str):
    story.mail(build(frm=CUSTOMER, name="Li Wei", subject=subject, body=body), CUSTOMER, SUPPORT)
    got = story.received({CUSTOMER: 1, ALICE: 1})
    return story.ticket(), got[ALICE][0]


def test_escalation_to_tier_two_and_a_low_score_through_the_worker_process(story):
    t, note = _new_ticket(story, "Checkout page hangs", "Hello,\nthe checkout page hangs after the payment step.\n")

    # alice escalates, telling the customer (the text around a command is her answer): dave (tier 2)
    # gets it with the history, the customer gets her answer and the notice that a specialist has it
    answer(story, note, "#escalate\nWe are bringing in a specialist for the payment step.\n",
           frm=ALICE, name="Alice Wang")
    got = story.received({DAVE: 1, CUSTOMER: 2})
    [to_dave] = got[DAVE]
    assert "We are bringing in a specialist" in body_text(to_dave)  # what tier 1 said and tried
    assert "the checkout page hangs after the payment step." in body_text(to_dave)
    assert _signed_for(story, to_dave, DAVE)
    relayed, told = got[CUSTOMER]
    assert "We are bringing in a specialist" in body_text(relayed)
    assert "specialist" in told["Subject"].lower()
    for m in (relayed, told):
        customer_sees_nothing_internal(m)
    t = story.ticket()
    assert (t.tier, t.handler, t.escalated_from) == (2, DAVE, ALICE)

    # dave resolves with a solution: the customer gets the closure, alice the tier-2 report
    answer(story, to_dave, "#solution\nA lock in the payment callback never timed out; it does now.\n",
           frm=DAVE, name="Dave Müller")
    got = story.received({CUSTOMER: 1, ALICE: 1})
    [closure] = got[CUSTOMER]
    assert "A lock in the payment callback never timed out" in body_text(closure)
    customer_sees_nothing_internal(closure)
    [report] = got[ALICE]
    assert "A lock in the payment callback never timed out" in body_text(report)
    assert story.ticket().status == "resolved"

    # the customer is not satisfied: recorded, reopened for the owner, owner and manager alerted
    story.mail(build(frm=CUSTOMER, name="Li Wei", to=closure["Reply-To"], subject=f"Re: {closure['Subject']}",
                     body="1 - it hangs again since this morning\n", in_reply_to=closure["Message-ID"],
                     references=closure["Message-ID"]), CUSTOMER, closure["Reply-To"])
    got = story.received({CUSTOMER: 1, ALICE: 1, CAROL: 1})
    [thanks] = got[CUSTOMER]
    assert "reopened" in body_text(thanks)
    customer_sees_nothing_internal(thanks)
    [alert] = got[ALICE]
    assert _same_mail(got[CAROL][0], alert) and alert["Cc"] == CAROL
    assert "it hangs again since this morning" in body_text(alert)
    t = story.ticket()
    assert t.status == "open" and t.owner == ALICE
    with story.db.session() as s:
        [score] = s.execute(select(SurveyResponse)).scalars().all()
    assert score.score == 1


def test_the_secondary_cannot_and_the_manager_takes_it_through_the_worker_process(story):
    t, note = _new_ticket(story, "Mail form broken", "Hello,\nthe contact form sends nothing.\n")
    answer(story, note, "#handover\n", frm=ALICE, name="Alice Wang")
    got = story.received({BOB: 1, CAROL: 1}, exact=False)  # (the customer may be told of the takeover)
    [handover] = got[BOB]
    answer(story, handover, "#cannot\n", frm=BOB, name="Bob Zhang")
    wait_for(lambda: story.ticket().handler == CAROL, timeout=60, what="the manager holds the ticket")
    got = story.received({CAROL: 1}, exact=False)
    [alert] = [m for m in got[CAROL] if m["To"] == CAROL]
    assert "the contact form sends nothing." in body_text(alert)
    for m in got.get(CUSTOMER, []):
        customer_sees_nothing_internal(m)
    # the manager answers by replying to the alert: the customer gets it from the support desk
    answer(story, alert, "We found the cause; the form works again.\n", frm=CAROL, name="Carol Li")
    [relayed] = story.received({CUSTOMER: 1})[CUSTOMER]
    assert "the form works again" in body_text(relayed)
    customer_sees_nothing_internal(relayed)
