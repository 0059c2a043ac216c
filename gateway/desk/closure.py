"""Closing a ticket: the solution to the customer, a satisfaction survey, knowledge capture.

Owns `resolve()` (called by the engineer's `#status resolved` / `#close` and by
the pending-ticket job) and the survey links in the closure email. It does not
read mail: the survey answers arrive through `gateway.handlers.survey_handler`, a
customer's non-score reply through the customer handler (which reopens).
"""

from __future__ import annotations

from gateway.desk import handover, kb, ticket_ops
from gateway import outbox
from gateway.desk.automatic import may_send_automatic
from storage.history import record_event
from storage.models import Ticket
from storage.queries import messages, participants

SURVEY_PURPOSE = "survey"
SCORES = (5, 4, 3, 2, 1)


def resolve(app, s, ticket: Ticket, *, actor: str, solution: str, kb_tags: tuple[str, ...] | None = None,
            status: str = "resolved") -> None:
    """Mark resolved/closed, send the customer the closure email with the solution and a survey."""
    if status not in ("resolved", "closed"):
        raise ValueError(f"resolve() closes a ticket: status must be 'resolved' or 'closed', not {status!r}")
    # The explicit #solution text, else one given earlier in this resolution, else the engineer's
    # last reply to the customer since the ticket was last reopened (gateway.desk.ticket_ops).
    solution = (solution or "").strip() or ticket.solution or last_engineer_reply(s, ticket)
    ticket.solution = solution
    ticket_ops.set_status(app, s, ticket, status, actor=actor, why="solution sent to the customer")
    send_closure(app, s, ticket, actor=actor)
    handover.on_resolved(app, s, ticket, actor=actor)
    if kb_tags is not None:
        article = kb.save_article(s, title=ticket.subject, problem=first_problem(s, ticket), solution=solution,
                                  tags=kb_tags, ticket_id=ticket.id, now=app.now())
        record_event(s, ticket, "kb_saved", app.now(), f"knowledge article {article.id}: {article.title}",
                     actor=actor, article=article.id, tags=list(article.tags))


def send_closure(app, s, ticket: Ticket, *, actor: str) -> None:
    rcpt = ticket.requester_email
    if not may_send_automatic(app, s, rcpt, "closure"):
        record_event(s, ticket, "auto_suppressed", app.now(), "no closure email: no customer address")
        return
    rendered = app.templates_for(ticket).render(
        "closure", ticket.language, ticket=ticket, customer_name=ticket.requester_name,
        solution=app.scrub_engineer_addresses(ticket.solution or ""), team_name=app.team_name(ticket),
        reopen_days=app.config.workflow.reopen_window_days, survey_links=survey_links(app, ticket),
    )
    outbox.reply_to_customer(app, s, ticket, "closure", rendered, cc=customer_ccs(app, s, ticket))
    record_event(s, ticket, "closure_sent", app.now(), f"closure email with survey to {rcpt}", actor=actor,
                 solution=ticket.solution)  # each resolution's own solution stays in the history


def customer_ccs(app, s, ticket: Ticket) -> list[str]:
    """The customer's own CCs stay informed of the outcome (never watchers: they are internal)."""
    if not app.config.workflow.relay_to_cc:
        return []
    rows = participants.active_ccs(s, ticket.id)
    # Filtered again on the way out: rows written before engineers were kept off the list
    # (or an engineer added to the rules file since) must not put staff in a customer's Cc.
    engineers = app.engineer_addresses()
    return [a for a in dict.fromkeys(rows) if a != ticket.requester_email and not app.is_ours(a, engineers)]


def first_problem(s, ticket: Ticket) -> str:
    msg = messages.first_from_customer(s, ticket.id)
    if msg is None:
        return ""
    return msg.reply_text or msg.text


def last_engineer_reply(s, ticket: Ticket) -> str:
    """The engineer's newest answer to the customer in this resolution (after the last reopen)."""
    msg = messages.newest_answer(s, ticket.id, after_id=ticket.reopen_message_id or 0)
    return (msg.reply_text or msg.text).strip() if msg is not None else ""


def survey_stamp(ticket: Ticket) -> str:
    """One survey per resolution: a reopen and a new resolution give fresh links."""
    when = ticket.resolved_at or ticket.closed_at
    return str(int(when.timestamp())) if when else "0"


def survey_links(app, ticket: Ticket) -> list[tuple[int, str]]:
    """(score, URL) for the one-click survey, empty when the web endpoint is off."""
    base = app.config.workflow.survey_url.rstrip("/")
    if not base:
        return []
    stamp = survey_stamp(ticket)
    return [(n, f"{base}/survey/{app.signer.link_token(SURVEY_PURPOSE, str(ticket.id), stamp, str(n))}")
            for n in SCORES]
