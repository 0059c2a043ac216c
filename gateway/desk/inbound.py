"""The customer side of the pipeline: a new ticket, or a follow-up on one.

Called by `gateway.pipeline.process` inside the one transaction that also holds the
spool status change; everything written here commits or rolls back together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from gateway.desk import acknowledge, handover, notify, send_later, topics
from gateway.compose import short_subject
from gateway.desk.automatic import may_send_automatic
from gateway.desk.threads import Match, find_ticket
from gateway.desk.ticket_ops import begin_new_resolution, resume_clock, sla_calendar
from parsers.model import ParsedEmail
from parsers.robots import UNCLASSIFIED
from parsers.thanks import is_thank_you
from storage import hot
from storage.history import record_event
from storage.models import AttachmentRow, Message, Participant, SpoolEntry, ThreadId, Ticket
from storage.queries import messages, participants
from storage.rows import append


class Unprocessable(Exception):
    """A handler's verdict that a mail cannot become ticket work (no sender to answer, say):
    the pipeline quarantines it with this message as the reason, without a traceback."""


@dataclass
class Inbound:
    """One inbound email on its way through the handlers."""

    app: object
    session: Session
    entry: SpoolEntry
    email: ParsedEmail
    recipients: list[str]
    match: Match | None = None
    ticket: Ticket | None = None  # a ticket this mail opened (create_ticket), for the spool row and the log
    notes: list[str] = field(default_factory=list)
    robot: object = UNCLASSIFIED  # the robot that sent it, when the parse pool asked (gateway.handlers.suspend)
    staged: dict = field(default_factory=dict)  # {sha256: stage file} the parse pool wrote its attachments to
    _found: Match | None = field(default=None, repr=False)

    @property
    def now(self):
        return self.app.now()

    def find_ticket(self) -> Match:
        """Which ticket this mail belongs to (gateway.desk.threads), asked once per message.

        Several handlers ask before one takes the mail; a handler that passes it on
        changes no thread id, ticket or participant, so the answer stays right."""
        if self._found is None:
            app = self.app
            self._found = find_ticket(self.session, self.email, recipients=self.recipients, signer=app.signer,
                                      ref_prefix=app.config.gateway.ref_prefix,
                                      engineers=app.engineer_addresses(), own_domain_check=app.is_own_address)
        return self._found


def store_message(ib: Inbound, ticket: Ticket, *, kind: str, internal: bool = False,
                  text: str | None = None, reply_text: str | None = None, at=None) -> Message:
    """Store the mail on the ticket. `at`: when it was written, for mail filed as history
    (gateway.handlers.history); live mail is dated by the gateway's clock."""
    e = ib.email
    when = ib.now if at is None else at
    msg = messages.received(e, ticket_id=ticket.id, spool_id=ib.entry.id, kind=kind, created_at=when,
                            internal=internal, text=text, reply_text=reply_text)
    hot.insert_now(ib.session, msg)  # one INSERT now, instead of a flush of the unit of work
    # Each row written at once, and the message's collection set to them as loaded, even when empty:
    # the notification reads them from here, with no query (gateway.desk.notify), and the message
    # is not left changed, so no flush of the unit of work is needed for it.
    rows = []
    for att in e.attachments:
        ib.app.attachments.put(att.sha256, att.content, staged=ib.staged.pop(att.sha256, None), session=ib.session)
        row = AttachmentRow(message_id=msg.id, filename=att.filename, content_type=att.content_type,
                            size=att.size, sha256=att.sha256)
        hot.insert_now(ib.session, row)
        rows.append(row)
    set_committed_value(msg, "attachments", rows)
    append(ib.session, ThreadId, message_id=e.message_id, ticket_id=ticket.id, outbound=False)
    ib.session.info.pop("ticket_references", None)  # the thread grew: recompute References
    if ticket.updated_at is None or when > ticket.updated_at:  # (set only when it moves: no needless flush)
        ticket.updated_at = when
    return msg


def within_participant_cap(cap: int, present: int, candidates: list[tuple[str, str]]):
    """(admitted, left_out): the candidates that fit a ticket already holding `present`
    customer participants (requester included) under `cap`, in the order they were named.
    Duplicates count once. Pure: one inbound mail with 10,000 CCs must not become
    10,000 recipients of every answer (the amplification an attacker wants)."""
    first: dict[str, str] = {}
    for addr, name in candidates:
        first.setdefault(addr, name)
    unique = list(first.items())
    room = max(0, cap - present)
    return unique[:room], unique[room:]


LEFT_OUT_LISTED = 50  # the event names this many of the CCs left out; the message keeps them all


def record_left_out(ib: Inbound, ticket: Ticket, left_out: list[tuple[str, str]]) -> dict:
    """The CCs over the cap stay on the ticket as information (the message's Cc and this
    event), not as participants: they get no mail and may not write. Returns what the
    owner's notification says about them."""
    if not left_out:
        return {}
    cap = ib.app.config.workflow.max_customer_participants
    shown = [a for a, _ in left_out[:LEFT_OUT_LISTED]]
    record_event(ib.session, ticket, "cc_capped", ib.now,
                 f"{len(left_out)} CC address(es) not added: a ticket has at most {cap} customer participants "
                 f"(workflow.max_customer_participants); they are kept on the message only",
                 actor=ib.email.sender.email, count=len(left_out), cap=cap, addresses=shown)
    return {"ccs_left_out": len(left_out), "cc_cap": cap, "ccs_left_out_shown": shown[:10]}


def add_customer_ccs(ib: Inbound, ticket: Ticket) -> dict:
    """The requester decides who else is in the conversation: people they CC join it,
    up to the ticket's cap (the rest: `record_left_out`, whose words it returns)."""
    known = participants.cc_addresses(ib.session, ticket.id)
    fresh = [(addr, name) for addr, name in _support_ccs(ib.app, ib.email) if addr not in known]
    if not fresh:
        return {}
    present = 1 + len(participants.active_ccs(ib.session, ticket.id, autoflush=False))
    admitted, left_out = within_participant_cap(ib.app.config.workflow.max_customer_participants, present, fresh)
    for addr, name in admitted:
        append(ib.session, Participant, ticket_id=ticket.id, email=addr, name=name, role="cc")
        record_event(ib.session, ticket, "cc_added", ib.now, f"{addr} added by the requester's CC",
                     actor=ib.email.sender.email, address=addr)
    return record_left_out(ib, ticket, left_out)


def _support_ccs(app, email: ParsedEmail) -> list[tuple[str, str]]:
    """The customer's CCs (and other To addresses) that are not us: they stay on the ticket.

    "Us" is our support addresses and every engineer in the rules file: an engineer the
    customer CC'd is staff, never a customer participant, or their personal address
    would go out in Cc of our answers and they could answer the survey (DOMAIN.md §9)."""
    engineers = app.engineer_addresses()
    out = []
    for a in list(email.to) + list(email.cc):
        if a.email and not app.is_ours(a.email, engineers) and a.email != email.sender.email:
            out.append((a.email, a.name))
    return out


def create_ticket(ib: Inbound, *, linked_to: Ticket | None = None, held: bool = False, acknowledge: bool = True,
                  owner_default: str = "", brought_in_by: str = "", history: str = "", at=None) -> Ticket:
    """A new ticket. `held`: a stranger's mail kept for the owner's approval before anything goes out.
    `owner_default`: the owner when the rules name none; `brought_in_by`: the engineer who
    forwarded the customer's mail in (gateway.handlers.forwards), named in the notification.

    `history`: why this is an old mail filed as history (gateway.handlers.history): routed, but dated
    `at` (the mail's own time), with no SLA deadline, acknowledgement or notification."""
    app, s, e = ib.app, ib.session, ib.email
    now = ib.now if at is None else at
    decision = app.route(e, recipients=tuple(ib.recipients), now=now)
    owner = decision.owner_email or owner_default
    brand = app.config.brand_for(ib.recipients)
    team = app.config.team_for(decision.team, brand, app.rules.current.defaults.team)
    language = app.config.language_for(e.language, brand)
    ticket = hot.new_row(
        Ticket,
        subject=short_subject(e.subject) or "(no subject)", status="new", priority=decision.priority,
        category=decision.category, team=team, owner=owner or "", handler=owner or "",
        requester_email=e.sender.email, requester_name=e.sender.name, organisation=decision.organisation or "",
        project=getattr(decision.project, "name", "") if decision.project else "",
        customer_tier=decision.customer_tier or "", language=language, address=brand.address if brand else "",
        tags=list(decision.tags), created_at=now, updated_at=now,
        first_response_due=None if history else decision.first_response_due,
        resolution_due=None if history else decision.resolution_due,
        sla_policy=decision.sla_policy or "", linked_ticket_id=linked_to.id if linked_to else None,
        held=held,
    )
    ticket.id = hot.next_id(s, Ticket)
    ticket.ref = f"{app.config.gateway.ref_prefix}-{ticket.id:06d}"
    hot.insert_now(s, ticket)  # one INSERT with its ref, instead of a flush and an UPDATE
    ib.ticket = ticket
    append(s, Participant, ticket_id=ticket.id, email=e.sender.email, name=e.sender.name, role="requester")
    admitted, left_out = within_participant_cap(app.config.workflow.max_customer_participants, 1, _support_ccs(app, e))
    for addr, name in admitted:
        append(s, Participant, ticket_id=ticket.id, email=addr, name=name, role="cc")
    for w in decision.watchers:
        append(s, Participant, ticket_id=ticket.id, email=w, name="", role="watcher")
    record_event(s, ticket, "created", now, f"ticket {ticket.ref} opened by {e.sender.email}",
                 actor=e.sender.email, source=ib.entry.source)
    if linked_to is not None:
        record_event(s, ticket, "linked", now, f"linked to {linked_to.ref}", linked=linked_to.ref)
    # one event holds every rule that fired, in order, so the history explains the routing
    fired = [step for step in decision.trace if step.matched]
    record_event(s, ticket, "routed", now,
                 "\n".join([str(step) for step in fired] +
                            [f"category={ticket.category} team={ticket.team} priority={ticket.priority} "
                             f"owner={ticket.owner or '-'}"]),
                 category=ticket.category, team=ticket.team, priority=ticket.priority, owner=ticket.owner,
                 rules=[{"rule": st.rule, "changes": list(st.changes)} for st in fired],
                 rules_generation=getattr(app.rules, "generation", None))
    msg = store_message(ib, ticket, kind="automatic" if e.automatic else "customer", at=now)  # the same moment
    capped = record_left_out(ib, ticket, left_out)
    if history:
        record_event(s, ticket, "history", ib.now, history, actor=e.sender.email, message_id=e.message_id)
        return ticket
    if held:
        record_event(s, ticket, "held", now, f"held for the owner of {linked_to.ref if linked_to else '-'}: "
                     "the sender is not on that ticket; no acknowledgement until released")
    elif acknowledge:  # an engineer who brought the mail in vouches for its sender
        send_acknowledgement(ib, ticket, vouched=bool(brought_in_by))
    handover.on_created(app, s, ticket, decision)
    notify.on_new_ticket(app, s, ticket, msg, brought_in_by=brought_in_by, extra=capped, email=e)
    return ticket


def automatic_allowed(ib: Inbound, ticket: Ticket, rcpt: str) -> bool:
    """RFC 3834: no automatic answer to automatic mail, and not too many to anyone
    (gateway.desk.automatic); when not, the ticket's history says why."""
    answer = may_send_automatic(ib.app, ib.session, rcpt, "acknowledgement", answering=ib.email,
                                verdict=ib.entry.verdict)
    if answer:
        return True
    if answer.reason in ("no address", "own address"):
        record_event(ib.session, ticket, "auto_suppressed", ib.now, "no automatic reply to our own address")
    elif answer.reason == "rate limit":
        record_event(ib.session, ticket, "auto_suppressed", ib.now, answer.detail)
    else:  # the mail's own automatic reason, or the check that said no
        record_event(ib.session, ticket, "auto_suppressed", ib.now, f"no automatic reply: {answer.detail}",
                     reason=answer.detail if answer.reason == "automatic" else answer.reason)
    return False


def send_acknowledgement(ib: Inbound, ticket: Ticket, *, vouched: bool = False) -> None:
    e = ib.email
    if not automatic_allowed(ib, ticket, e.sender.email):
        return
    blind = "" if vouched else blind_copy_from_stranger(ib, ticket)
    if blind:  # [spam] quiet_unaddressed: the ticket stays in the queue, only the acknowledgement is held back
        record_event(ib.session, ticket, "auto_suppressed", ib.now, f"no automatic reply: {blind}",
                     reason="not addressed to us")
        return
    acknowledge.queue(ib.app, ib.session, ticket, rcpt=e.sender.email, customer_name=e.sender.name,
                      about=e.subject + "\n" + e.reply_text, in_reply_to=e.message_id,
                      references=list(e.references) + [e.message_id], spool_id=ib.entry.id)


def blind_copy_from_stranger(ib: Inbound, ticket: Ticket) -> str:
    """Why a new ticket's sender gets no acknowledgement ([spam] quiet_unaddressed), or "".

    Spam reaches a support mailbox as one of many blind copies: the To and Cc name its
    other victims (or nobody), never us, and the sender, often forged, has never written
    to us. An acknowledgement to it is backscatter that repeats the spam's subject to a
    stranger. A person asking for help writes *to* us; one who blind-copies us, or writes
    through an address of ours that is not configured, loses only this acknowledgement:
    the ticket is in the queue as usual and its history says why. Anyone we already know
    (a participant on an earlier ticket, or a sender the customer directory names) keeps it.
    """
    app, e = ib.app, ib.email
    if not app.config.spam.quiet_unaddressed or (ib.entry.verdict or {}).get("released"):
        return ""
    staff = app.engineer_addresses()
    named = [a.email for a in (*e.to, *e.cc) if a.email]
    if any(app.is_own_address(a) or a.lower() in staff for a in named):
        return ""
    if ticket.organisation:  # the customer directory knows this sender
        return ""
    if participants.on_another_ticket(ib.session, e.sender.email, ticket.id):
        return ""
    return ("not addressed to us (To/Cc name " + (", ".join(named[:3]) + (" ..." if len(named) > 3 else "")
            if named else "nobody") + ") and the sender has never written to us: a blind copy, as spam arrives")


def follow_up(ib: Inbound, ticket: Ticket) -> str:
    """A customer (or CC'd participant) wrote again on an existing ticket."""
    app, s, now = ib.app, ib.session, ib.now
    window = timedelta(days=app.config.workflow.reopen_window_days)
    topic = topics.verdict(s, ticket, ib.email)  # a new question in the old thread?
    if not ib.email.automatic:
        send_later.cancel(app, s, ticket)  # the customer wrote first: answers still waiting are stale
    if ticket.status in ("resolved", "closed"):
        since = ticket.resolved_at or ticket.closed_at or ticket.updated_at
        if ib.email.automatic:
            store_message(ib, ticket, kind="automatic")
            return "threaded"
        if _only_thanks(ib.email):
            return keep_thanks(ib, ticket)
        if topic and app.config.workflow.auto_split_new_topic:
            new = create_ticket(ib, linked_to=ticket)
            record_event(s, ticket, "new_topic", now, f"a new question from {ib.email.sender.email} opened "
                         f"{new.ref} instead of reopening ({topic})", reason=topic, into=new.ref)
            return "created"
        if since is not None and now - since > window:
            create_ticket(ib, linked_to=ticket)
            return "created"
        reopen(ib, ticket, f"customer replied within the {window.days}-day reopen window")
    elif ticket.status == "pending" and not ib.email.automatic:
        resume_clock(ticket, now, sla_calendar(app, ticket))
        ticket.status = "open"
        record_event(s, ticket, "status", now, "pending → open: the customer replied", old="pending", new="open")
    msg = store_message(ib, ticket, kind="automatic" if ib.email.automatic else "customer")
    capped = {}
    if ib.email.sender.email == ticket.requester_email and not ib.email.automatic:
        capped = add_customer_ccs(ib, ticket)
    record_event(s, ticket, "customer_reply", now, f"message from {ib.email.sender.email}",
                 actor=ib.email.sender.email, method=ib.match.method if ib.match else "")
    notify.on_customer_message(app, s, ticket, msg, new_topic=topic, extra=capped)
    return "threaded"


def _only_thanks(email: ParsedEmail) -> bool:
    # an attachment (a screenshot, a log) is more than a thank-you
    return not email.attachments and is_thank_you(email.reply_text or email.text)


def keep_thanks(ib: Inbound, ticket: Ticket) -> str:
    """"Thanks, it works!" after the resolution: kept on the ticket for its history, at any age;
    it reopens nothing, opens nothing and pages nobody (the owner reads it in the history)."""
    store_message(ib, ticket, kind="thanks")
    record_event(ib.session, ticket, "thanks", ib.now, f"thank-you from {ib.email.sender.email}: kept, "
                 f"the ticket stays {ticket.status}", actor=ib.email.sender.email)
    return "thanks"


def reopen(ib: Inbound, ticket: Ticket, why: str) -> None:
    old = ticket.status
    ticket.status = "open"
    begin_new_resolution(ib.session, ticket)
    record_event(ib.session, ticket, "reopened", ib.now, why, old=old)
