"""What the handover, escalation and SLA mails say: the ticket's history and the people.

Owns the look-ups those mails share (the project's primary, secondary and
manager as configured engineers; a ticket's message history and responsibility
timeline; time logged) and `mail_engineer()`, which renders a template and
queues it to engineers with their own signed Reply-To. No state changes here.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway import outbox
from gateway.desk import notify
from gateway.clock import fmt_due
from gateway.desk.automatic import may_send_automatic
from storage.history import record_event
from storage.models import Event, Ticket
from storage.queries import events, messages

RESPONSIBILITY_EVENTS = ("routed", "assigned", "handover", "handover_refused", "handback", "manager_escalation",
                         "escalated", "escalation_refused", "cannot_refused", "sla_breach", "tier2_reported")


@dataclass(frozen=True)
class People:
    """The ticket's project roles as configured engineers (None when not configured)."""

    project: object | None
    primary: object | None
    secondary: object | None
    manager: object | None


def people(app, ticket: Ticket) -> People:
    cfg = app.rules.current
    project = None
    if ticket.organisation and ticket.project:
        p = cfg.project_for(ticket.organisation, "", ticket.project)
        project = p if p is not None and p.name == ticket.project else None
    if project is None:
        return People(None, None, None, None)

    def eng(eid):
        return cfg.engineers.get(eid) if eid else None

    return People(project, eng(project.primary), eng(project.secondary), eng(project.manager))


def engineer(app, email: str):
    return app.rules.current.engineer_by_email(email) if email else None


def name_of(app, email: str) -> str:
    """The engineer's name, else the address itself (for a sentence that must name someone)."""
    return notify.engineer_name(app, email) or email


def history(session, ticket: Ticket, *, since=None, limit: int | None = None) -> list[dict]:
    """The messages on the ticket, oldest first (internal notes included: this is for engineers)."""
    rows = messages.on_ticket(session, ticket.id, since=since)
    if limit is not None:
        rows = rows[-limit:]
    return [{
        "at": m.created_at, "sender": m.sender_name or m.sender_email, "email": m.sender_email,
        "direction": m.direction, "kind": m.kind, "internal": m.internal,
        "text": (m.reply_text or m.text or "").strip()[:4000],
    } for m in rows]


def timeline(session, ticket: Ticket) -> list[dict]:
    """Who was responsible when: routing, assignments, handovers, escalations."""
    rows = events.of_ticket(session, ticket.id, RESPONSIBILITY_EVENTS)
    return [{"at": e.at, "kind": e.kind, "actor": e.actor, "detail": e.detail.splitlines()[-1] if e.detail else ""}
            for e in rows]


def minutes_logged(session, ticket: Ticket, *, since=None, by: str | None = None) -> int:
    """Minutes from the engineers' `#time` events."""
    total = 0
    for e in events.since(session, ticket.id, "time", since):
        if by is None or e.actor == by:
            total += int((e.data or {}).get("minutes") or 0)
    return total


def last_event(session, ticket: Ticket, kind: str) -> Event | None:
    return events.newest(session, ticket.id, kind)


def context(app, session, ticket: Ticket, **extra) -> dict:
    """What every engineer-facing template gets: reference, priority, deadlines, history."""
    ctx = dict(
        ticket=ticket, team_name=app.config.gateway.display_name,
        first_response_due=fmt_due(app, ticket.first_response_due),
        resolution_due=fmt_due(app, ticket.resolution_due),
        history=[dict(h, at=fmt_due(app, h["at"])) for h in history(session, ticket)],
        timeline=[dict(t, at=fmt_due(app, t["at"])) for t in timeline(session, ticket)],
    )
    ctx.update(extra)
    return ctx


def mail_engineer(app, session, ticket: Ticket, kind: str, *, to: str, cc=(), **extra) -> None:
    """Queue template `kind` to engineer `to` (CC `cc`, the manager of a handover), threaded on
    the ticket. Each engineer gets a copy of their own with the Reply-To signed for them (To and
    Cc shown as written), so whoever answers it, their `#` commands are theirs."""
    cc_list = [a for a in dict.fromkeys(a.lower() for a in cc if a) if a != to.lower()]
    rendered = app.templates.render(kind, ticket.language,
                                    **context(app, session, ticket, recipient_name=name_of(app, to), **extra))
    outbox.mail_engineer(app, session, ticket, kind, rendered, to=[to], cc=cc_list, automatic="auto-generated")


def tell_customer(app, session, ticket: Ticket, *, new_handler: str, specialist: bool) -> bool:
    """The templated "a colleague has taken over" notice: no reason, no internal detail, no addresses."""
    rcpt = ticket.requester_email
    if not may_send_automatic(app, session, rcpt, "customer_takeover"):
        record_event(session, ticket, "auto_suppressed", app.now(), f"no takeover notice to {rcpt or 'nobody'}")
        return False
    first = (name_of(app, new_handler) or "").split(" ")[0]
    rendered = app.templates_for(ticket).render("customer_takeover", ticket.language, ticket=ticket,
                                                customer_name=ticket.requester_name, engineer_first_name=first,
                                                specialist=specialist, team_name=app.team_name(ticket),
                                                resolution_due=fmt_due(app, ticket.resolution_due))
    outbox.reply_to_customer(app, session, ticket, "customer_takeover", rendered, automatic="auto-generated")
    return True
