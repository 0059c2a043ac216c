"""Answers sent later: `#send-at 2026-12-02 09:00` and `#send-in 2h`.

`when(app, block)` reads the time (send-at in `report.timezone`, the team's clock); the
engineer handler relays the answer as usual but with the outbox row due then, and records
a `send_later` event. `on_sent(app, s, row)`, called by the dispatcher when a row went,
counts the first response then (gateway.desk.relay does not count a planned answer) and
sets the status the answer was to leave. `cancel(app, s, ticket)`, called when the customer
writes again before it went, cancels every such answer still waiting (the outbox row
`cancelled`, the stored answer made internal, out of the customer's References) and tells
its author, with the answer quoted and a reply address of their own to answer anew.
Nothing here decides who may write.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.desk import notify, ticket_ops
from gateway import outbox
from storage.history import record_event
from storage.models import Ticket
from storage.queries import events, messages, outbox as outbox_rows


def when(app, block) -> datetime | None:
    at, later = block.get("send-at"), block.get("send-in")
    if later is not None:
        return app.now() + timedelta(minutes=later.minutes)
    if at is not None:
        local = datetime.strptime(at.args[0], "%Y-%m-%d %H:%M")
        return local.replace(tzinfo=ZoneInfo(app.config.report.timezone))
    return None


def problems(app, block) -> list[str]:
    at, later = block.get("send-at"), block.get("send-in")
    if not (at or later):
        return []
    if at and later:
        return ["give #send-at or #send-in, not both"]
    clash = [c.raw_line for c in block.commands
             if c.name in ("note", "solution", "kb", "close", "escalate", "handover", "cannot", "merge", "split",
                           "send", "drop") or (c.name == "status" and c.args[0] in ("resolved", "closed"))]
    if clash:
        return [f"#send-at and #send-in hold an answer to the customer; {clash[0]} does not go with them: "
                "send it in another reply"]
    if not block.body:
        return ["#send-at and #send-in need the answer to send: write it below the command"]
    due = when(app, block)
    if due <= app.now():
        return [f'"{at.raw_line}" is in the past ({app.config.report.timezone}); give a time to come']
    return []


def record(app, session, ticket: Ticket, *, engineer: str, message_id: str, due: datetime,
           then_status: str = "") -> None:
    """`then_status`: the status the ticket takes when the answer goes (workflow.status_after_reply,
    as for an answer sent at once; "" when the engineer's own #status already set it)."""
    record_event(session, ticket, "send_later", app.now(), f"answer by {engineer} to be sent at "
                 f"{due.astimezone(ZoneInfo(app.config.report.timezone)):%Y-%m-%d %H:%M %Z} unless the "
                 "customer writes first", actor=engineer, message_id=message_id, at=due.isoformat(),
                 then_status=then_status)


def on_sent(app, session, row) -> None:
    """An outbox row went: when it is a planned answer, the customer has it only now, so the
    first response counts now (until then the SLA's first-response clock kept running)."""
    if row.kind != "relay" or row.ticket_id is None:
        return
    planned = [ev for ev in events.of_ticket(session, row.ticket_id, "send_later")
               if ev.data.get("message_id") == row.message_id]
    ticket = session.get(Ticket, row.ticket_id)
    if not planned or ticket is None:
        return
    by = planned[0].actor
    if ticket_ops.mark_first_response(app, ticket, app.now()):
        record_event(session, ticket, "first_response", app.now(), f"first response by {by} "
                     "(an answer planned with #send-at/#send-in, sent now)", actor=by)
    # the status an answer sets, now that the customer has it; not over a status someone chose
    # meanwhile (pending, resolved, closed): only a ticket still waiting on us moves
    then = planned[0].data.get("then_status") or ""
    if then and ticket.status in ("new", "open"):
        ticket_ops.set_status(app, session, ticket, then, actor=by, why="planned answer sent")


def cancel(app, session, ticket: Ticket) -> int:
    """The customer wrote first: every answer of this ticket still waiting is cancelled."""
    if not events.any_of(session, ticket.id, "send_later"):  # most tickets never had one: one small query
        return 0
    waiting = {ev.data.get("message_id"): ev for ev in events.of_ticket(session, ticket.id, "send_later")}
    if not waiting:
        return 0
    rows = outbox_rows.waiting(session, ticket.id, list(waiting), app.now())
    for row in rows:
        row.status = "cancelled"
        ev = waiting[row.message_id]
        answer = messages.by_message_id(session, ticket.id, row.message_id)
        text = answer.text if answer is not None else ""
        if answer is not None:
            answer.internal, answer.kind = True, "cancelled_answer"
        record_event(session, ticket, "send_later_cancelled", app.now(), f"the customer wrote before the answer "
                     f"by {ev.actor} went out: cancelled, {ev.actor} told", actor="system",
                     message_id=row.message_id, author=ev.actor)
        rendered = app.templates.render("send_later_cancelled", ticket.language, ticket=ticket, own_text=text,
                                        due=_local(app, ev.data.get("at", "")))
        outbox.mail_engineer(app, session, ticket, "send_later_cancelled", rendered, to=ev.actor,
                             extra_headers=notify.AUTOMATIC_HEADERS)
    return len(rows)


def _local(app, iso: str) -> str:
    try:
        return f"{datetime.fromisoformat(iso).astimezone(ZoneInfo(app.config.report.timezone)):%Y-%m-%d %H:%M %Z}"
    except ValueError:
        return iso
