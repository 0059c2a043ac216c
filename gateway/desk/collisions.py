"""Two engineers answering the same customer at once.

An engineer's answer that reaches us within `workflow.collision_minutes` after a
colleague's answer to the same customer on the same ticket, and that was written without
having seen it (every mail its In-Reply-To names is older than that answer), is held:
nothing of it is applied or sent, it is kept on the ticket as an internal `held_answer`
message, and its author gets the colleague's answer quoted (`answer_held`) with a reply
address of their own: `#send` sends theirs anyway (the held mail is handled as if it had
just arrived, commands and all), `#drop` discards it (it stays in the history). Nothing is
sent twice by accident and nothing is lost.

Owns the detection and the hold; gateway.handlers.engineer calls it and replays a released answer.
"""

from __future__ import annotations

from datetime import timedelta

from gateway.desk import notify
from gateway import outbox
from storage.history import record_event
from storage.models import Message, Ticket
from storage.queries import events, messages, outbox as outbox_rows


def first_answer(app, session, ticket: Ticket, engineer: str, in_reply_to) -> Message | None:
    """The colleague's answer this one collides with, or None."""
    minutes = app.config.workflow.collision_minutes
    if minutes <= 0:
        return None
    since = app.now() - timedelta(minutes=minutes)
    other = messages.newest_answer_by_other(session, ticket.id, engineer, since)
    if other is None or ticket.requester_email not in (other.to or []):
        return None
    return None if _saw(session, ticket, other, in_reply_to) else other


def _saw(session, ticket: Ticket, first: Message, in_reply_to) -> bool:
    """The answer replies to a mail at least as new as `first`: its author had it in front of them."""
    ids = [i for i in in_reply_to if i]
    if not ids:
        return False
    times = outbox_rows.queued_at(session, ids)
    times += messages.written_at(session, ticket.id, ids)
    return any(t >= first.created_at for t in times)


def hold(app, session, ticket: Ticket, *, engineer: str, email, held: Message, first: Message) -> None:
    """Tell the author, with the colleague's answer quoted; `held` is their stored mail."""
    colleague = notify.engineer_name(app, first.sender_email) or first.sender_email
    rendered = app.templates.render("answer_held", ticket.language, ticket=ticket, colleague=colleague,
                                    first_text=first.text, first_at=first.created_at,
                                    own_text=held.text, minutes=app.config.workflow.collision_minutes)
    [notice] = outbox.mail_engineer(app, session, ticket, "answer_held", rendered, to=engineer,
                                    in_reply_to=email.message_id,
                                    references=list(email.references) + [email.message_id],
                                    extra_headers=notify.AUTOMATIC_HEADERS)
    record_event(session, ticket, "answer_held", app.now(),
                 f"answer by {engineer} held: {first.sender_email} answered the customer "
                 f"{_ago(app, first)} before, and it was written without having seen that answer",
                 actor=engineer, held=held.id, first=first.id, notice=notice)


def _ago(app, first: Message) -> str:
    seconds = max(0, int((app.now() - first.created_at).total_seconds()))
    return f"{seconds // 60} min {seconds % 60} s"


def held_answer(session, ticket: Ticket, engineer: str, in_reply_to) -> tuple[Message | None, str]:
    """(the held answer a `#send`/`#drop` reply is about, a problem to tell its author)."""
    ids = {i for i in in_reply_to if i}
    holds = events.of_ticket(session, ticket.id, "answer_held", actor=engineer, newest_first=True)
    for ev in holds:
        if ev.data.get("notice") in ids:
            if _released(session, ticket, ev.data["held"]):
                return None, "that held answer was already sent or dropped"
            return session.get(Message, ev.data["held"]), ""
    return None, ("#send and #drop answer the mail that told you your answer was held; reply to that mail")


def _released(session, ticket: Ticket, held_id: int) -> bool:
    for ev in events.of_ticket(session, ticket.id, ("answer_sent", "answer_dropped")):
        if (ev.data or {}).get("held") == held_id:
            return True
    return False
