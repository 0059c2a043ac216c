"""Applying the `#` commands of an authorised engineer's reply to a ticket.

`check(app, s, ticket, block)` finds what the parser cannot know (an
assignee who is not an engineer, a CC to remove that is not on the ticket,
contradicting commands); the caller applies nothing when it or the parser
found a problem. `apply_simple` applies the commands that only change the
ticket; `apply_workflow` runs escalation/handover and closure after the relay,
so the customer reads the answer before any closure mail.

Who may run commands is decided in gateway.handlers.engineer, not here.
"""

from __future__ import annotations

from gateway.desk import closure, handover, hold, merge_split, notify, send_later, ticket_ops
from gateway import outbox
from parsers.commands import CommandBlock
from storage.history import record_event
from storage.models import Participant, Ticket
from storage.queries import tickets

CLOSING = ("close", "solution", "kb")
HANDOVER = ("escalate", "handover", "cannot")


def closure_status(block: CommandBlock) -> str | None:
    """'resolved'/'closed' when the block asks for closure, else None."""
    status = block.get("status")
    if block.get("close") or (status and status.args[0] == "closed"):
        return "closed"
    if (status and status.args[0] == "resolved") or block.get("solution") or block.get("kb"):
        return "resolved"
    return None


def check(app, session, ticket: Ticket, block: CommandBlock, *, actor: str = "",
          internal: bool = False, in_reply_to=()) -> list[str]:
    """`actor`: the engineer who wrote the commands; `internal`: the mail answers a note's
    notification, so its text stays a note; `in_reply_to`: the mail's In-Reply-To (#split)."""
    problems = _merge_split_problems(session, ticket, block, in_reply_to)
    problems += send_later.problems(app, block)
    if (block.get("send") or block.get("drop")) and (len(block.commands) > 1 or block.body):
        problems.append("#send and #drop go alone, answering the mail that told you your answer was held")
    if block.get("release") and (why := hold.refusal(app, ticket, actor)):
        problems.append(why)
    engineers = app.engineer_addresses()
    names = [c.name for c in block.commands]
    for name in set(names):
        if names.count(name) > 1 and name not in ("cc", "time", "kb"):
            problems.append(f"#{name} is given {names.count(name)} times; give it once")
    targets = {c.args[0] for c in block.commands if c.name == "status"}
    if block.get("close"):
        targets.add("closed")
    if len(targets) > 1:
        problems.append(f"contradicting status commands ({', '.join(sorted(targets))}); give one")
    if block.is_note and (block.is_solution or closure_status(block)):
        problems.append("#note keeps the text internal, so it cannot also be the solution or close the ticket; "
                        "send the note and the closure as two replies")
    elif internal and (block.is_solution or closure_status(block)):
        problems.append("this answers an internal note, so it stays internal and cannot be the solution or close "
                        "the ticket; close it by answering the ticket's own notification")
    if sum(1 for n in set(names) if n in HANDOVER) > 1:
        problems.append("give only one of #escalate, #handover, #cannot")
    for c in block.commands:
        if c.name == "assign" and c.args[0] not in engineers:
            problems.append(f'"{c.raw_line}": {c.args[0]} is not a configured engineer')
        if c.name == "cc":
            op, addr = c.args
            if app.is_own_address(addr) or addr in engineers:
                problems.append(f'"{c.raw_line}": {addr} is ours; #cc is for the customer\'s people')
            elif op == "remove" and not _cc_row(session, ticket, addr, active_only=True):
                problems.append(f'"{c.raw_line}": {addr} is not on the ticket\'s CC list')
    return problems


def _merge_split_problems(session, ticket: Ticket, block: CommandBlock, in_reply_to) -> list[str]:
    merge, split = block.get("merge"), block.get("split")
    if not (merge or split):
        return []
    if merge and split:
        return ["give #merge or #split, not both"]
    if closure_status(block) or any(block.get(n) for n in HANDOVER):
        return [f"#{'merge' if merge else 'split'} goes alone: resolve, close or escalate in another reply"]
    if merge:
        target = tickets.by_ref(session, merge.args[0])
        why = merge_split.merge_problem(session, ticket, target, merge.args[0])
    else:
        why = merge_split.split_problem(session, ticket, merge_split.split_target(session, ticket, in_reply_to))
    return [why] if why else []


def _cc_row(session, ticket: Ticket, addr: str, *, active_only: bool = False) -> Participant | None:
    for p in ticket.participants:
        if p.role == "cc" and p.email == addr and (p.active or not active_only):
            return p
    return None


def apply_simple(app, session, ticket: Ticket, block: CommandBlock, *, actor: str) -> None:
    """Commands that change the ticket only: release, priority, assign, cc, time, status open/pending."""
    now = app.now()
    if block.get("release"):  # first: the customer's acknowledgement goes before any answer
        hold.release(app, session, ticket, actor=actor, via="#release by mail")
    for c in block.commands:
        if c.name == "priority" and c.args[0] != ticket.priority:
            old, ticket.priority = ticket.priority, c.args[0]
            record_event(session, ticket, "priority", now, f"priority {old} → {ticket.priority}", actor=actor,
                         old=old, new=ticket.priority)
        elif c.name == "assign":
            ticket_ops.assign(app, session, ticket, c.args[0], actor=actor, why="#assign by mail")
            notify.on_assigned(app, session, ticket, engineer=c.args[0], actor=actor)
        elif c.name == "cc":
            _apply_cc(session, ticket, c.args[0], c.args[1], actor=actor, now=now)
        elif c.name == "time":
            record_event(session, ticket, "time", now, f"{c.minutes} minutes logged by {actor}", actor=actor,
                         minutes=c.minutes)
        elif c.name == "status" and c.args[0] in ("open", "pending"):
            ticket_ops.set_status(app, session, ticket, c.args[0], actor=actor, why="#status by mail")
    ticket.updated_at = now


def _apply_cc(session, ticket: Ticket, op: str, addr: str, *, actor: str, now) -> None:
    row = _cc_row(session, ticket, addr)
    if op == "add":
        if row is None:
            row = Participant(ticket_id=ticket.id, email=addr, name="", role="cc", active=True)
            session.add(row)
            ticket.participants.append(row)
        row.active = True
    elif row is not None:
        row.active = False
    record_event(session, ticket, "cc", now, f"cc {op} {addr}", actor=actor, op=op, address=addr)


def apply_workflow(app, session, ticket: Ticket, block: CommandBlock, *, actor: str, body: str,
                   in_reply_to=()) -> None:
    """Escalation/handover, merge/split and closure: each owned by its own module; called after the relay."""
    if block.get("merge"):
        target = tickets.by_ref(session, block.get("merge").args[0])
        merge_split.merge(app, session, ticket, target, actor=actor)
    elif block.get("split"):
        merge_split.split(app, session, ticket, merge_split.split_target(session, ticket, in_reply_to), actor=actor)

    result, name = None, None
    if block.get("escalate"):
        result, name = handover.escalate(app, session, ticket, actor=actor, note=body), "escalate"
    elif block.get("handover"):
        result, name = handover.handover(app, session, ticket, reason="#handover by mail", actor=actor), "handover"
    elif block.get("cannot"):
        result, name = handover.cannot(app, session, ticket, actor=actor), "cannot"
    if result is not None and not result:
        _tell_refused(app, session, ticket, actor=actor, command=name, why=getattr(result, "detail", ""))
    status = closure_status(block)
    if status:
        kb = block.get("kb")
        closure.resolve(app, session, ticket, actor=actor, solution=body if block.is_solution else "",
                        kb_tags=tuple(kb.args) if kb else None, status=status)


def _tell_refused(app, session, ticket: Ticket, *, actor: str, command: str, why: str) -> None:
    """A workflow command the rules refused (already at tier 2, nobody to hand over to): say so."""
    rendered = app.templates.render("command_refused", ticket.language, ticket=ticket, command=command, why=why)
    outbox.mail_engineer(app, session, ticket, "command_refused", rendered, to=actor,
                         extra_headers=notify.AUTOMATIC_HEADERS)
