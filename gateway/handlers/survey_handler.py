"""Pipeline handler: a customer's survey answer on a resolved or closed ticket.

The answer is a reply whose first meaningful line is a score (`parsers.survey`):
"5", "5 - great", "4/5", "★★★★", "非常满意". It is stored with the comment and the
engineers who handled the ticket; a score of 1-2 reopens the ticket for its
owner and alerts the manager. Anything else on a resolved ticket is not ours:
the customer handler reopens it (within the reopen window) or opens a linked
ticket (after it). Only the requester and the customer's CCs may answer.

`record_answer()` is shared with the one-click web endpoint (gateway/edges/survey_web.py).
"""

from __future__ import annotations

from gateway import outbox
from gateway.desk import ticket_ops
from gateway.desk.inbound import automatic_allowed, store_message
from parsers.survey import parse_score
from storage.history import record_event
from storage.models import SurveyResponse, Ticket
from storage.queries import events, surveys

NAME = "survey_handler"  # the name the pipeline logs (handler=) and gateway/handlers/registry.py lists

LOW_SCORE = 2
ANSWERING_ROLES = ("requester", "cc")


def handle(ib) -> str | None:
    e = ib.email
    if e.automatic:
        return None
    app = ib.app
    m = ib.find_ticket()
    ticket = m.ticket
    if ticket is None or ticket.status not in ("resolved", "closed") or m.sender_role not in ANSWERING_ROLES:
        return None
    if app.is_ours(e.sender.email):
        return None  # staff on a customer's CC list (an old row) do not rate our service
    # An HTML-only reply has its text in `text` (converted); reply_text may then be empty.
    answer = parse_score(e.reply_text) or (None if e.reply_text.strip() else parse_score(e.text))
    if answer is None:
        return None
    ib.match = m
    store_message(ib, ticket, kind="survey")
    reopened = record_answer(app, ib.session, ticket, score=answer.score, comment=answer.comment,
                             actor=e.sender.email, via="email")
    if automatic_allowed(ib, ticket, e.sender.email):
        rendered = app.templates_for(ticket).render("survey_thanks", ticket.language, ticket=ticket,
                                                    score=answer.score, customer_name=e.sender.name,
                                                    reopened=reopened, team_name=app.team_name(ticket))
        outbox.reply_to_customer(app, ib.session, ticket, "survey_thanks", rendered, to=e.sender.email,
                                 automatic="auto-replied", in_reply_to=e.message_id, source_spool_id=ib.entry.id)
    return "survey"


def record_answer(app, s, ticket: Ticket, *, score: int, comment: str, actor: str, via: str,
                  token: str = "") -> bool:
    """Store (or replace) this resolution's answer; a low score reopens. Returns True when reopened."""
    now = app.now()
    since = ticket.resolved_at or ticket.closed_at
    engineers = handled_by(app, s, ticket)
    # One answer per resolution: a second reply ("5", then "4 actually") corrects the first,
    # so the reports do not count one ticket twice.
    existing = surveys.newest_answer(s, ticket.id, since) if since else None
    if existing is not None:
        existing.score, existing.comment, existing.engineers, existing.at = score, comment, engineers, now
        existing.token = token or existing.token
    else:
        s.add(SurveyResponse(ticket_id=ticket.id, score=score, comment=comment, engineers=engineers, at=now,
                             token=token))
    detail = f"satisfaction {score}/5 by {via}" + (f": {comment[:200]}" if comment else "")
    record_event(s, ticket, "survey", now, detail, actor=actor, score=score, via=via, engineers=engineers)
    if score > LOW_SCORE:
        return False
    rated = ticket.solution  # the reopen clears it: the next resolution has its own
    reopen_for_owner(app, s, ticket, actor=actor, why=f"low satisfaction score {score}/5")
    alert_low_score(app, s, ticket, score=score, comment=comment, customer=actor, engineers=engineers,
                    solution=rated)
    return True


def handled_by(app, s, ticket: Ticket) -> list[str]:
    """The engineers who worked on the ticket: owner, handler, and every engineer who acted on it."""
    engineers = app.engineer_addresses()
    names = [ticket.owner, ticket.handler]
    rows = events.actors_and_data(s, ticket.id)
    for actor, data in rows:
        names.append(actor)
        for key in ("new", "to", "from"):  # assignments and handovers name engineers in their data
            value = (data or {}).get(key)
            if isinstance(value, str):
                names.append(value)
    return [n for n in dict.fromkeys(x.lower() for x in names if x) if n in engineers]


def reopen_for_owner(app, s, ticket: Ticket, *, actor: str, why: str) -> None:
    old = ticket.status
    ticket_ops.set_status(app, s, ticket, "open", actor=actor, why=why)
    record_event(s, ticket, "reopened", app.now(), why, actor=actor, old=old)
    if ticket.owner and ticket.handler != ticket.owner:
        ticket_ops.assign(app, s, ticket, ticket.owner, actor="system", why=why, owner_too=False)


def managers_for(app, ticket: Ticket) -> list[str]:
    """The project's manager from the routing rules, else every engineer marked manager."""
    rules = app.rules.current
    project = rules.project_for(ticket.organisation, ticket.requester_email, ticket.project) \
        if ticket.organisation else None
    if project is not None and project.manager in rules.engineers:
        return [rules.engineers[project.manager].email.lower()]
    return sorted(e.email.lower() for e in rules.engineers.values() if e.manager)


def alert_low_score(app, s, ticket: Ticket, *, score: int, comment: str, customer: str, engineers: list[str],
                    solution: str = "") -> None:
    managers = managers_for(app, ticket)
    to = [ticket.owner] if ticket.owner else []
    cc = [m for m in managers if m not in to]
    if not to:
        to, cc = cc[:1], cc[1:]
    if not to:
        record_event(s, ticket, "alert_skipped", app.now(), "low score: no owner and no manager to tell")
        return
    rendered = app.templates.render("low_score_alert", app.config.report.language, ticket=ticket, score=score,
                                    comment=comment, customer=customer, owner=ticket.owner, engineers=engineers,
                                    solution=solution)
    # owner and manager each get their own copy and reply address: either may answer with commands
    outbox.mail_engineer(app, s, ticket, "low_score_alert", rendered, to=to, cc=cc, automatic="auto-generated")
    record_event(s, ticket, "low_score_alert", app.now(), f"owner {', '.join(to)}, manager {', '.join(cc) or '-'}",
                 score=score, to=to, cc=cc)
