"""The acknowledgement: the customer's initial feedback (初步反馈) with the ticket's
reference, priority and promised response time.

Owns composing and queueing it, for a new ticket (gateway.desk.inbound, at once) and
for a held one (gateway.desk.hold, when an engineer releases it). Whether an
automatic answer may go to this sender at all is the caller's to decide first.
"""

from __future__ import annotations

from gateway import outbox
from gateway.clock import fmt_due
from storage.models import Ticket


def queue(app, session, ticket: Ticket, *, rcpt: str, customer_name: str, about: str, in_reply_to: str,
          references: list[str], spool_id: int | None) -> str:
    """Queue the acknowledgement to `rcpt`; `about` (subject and text) picks the suggested articles."""
    articles = []
    if app.config.workflow.kb_suggestions:
        from gateway.desk import kb  # optional feature, off by default

        articles = kb.suggest(session, about, app.config.workflow.kb_suggestions)
    rendered = app.templates_for(ticket).render(
        "acknowledgement", ticket.language, ticket=ticket, customer_name=customer_name,
        team_name=app.team_name(ticket), first_response_due=fmt_due(app, ticket.first_response_due),
        articles=articles,
    )
    return outbox.reply_to_customer(app, session, ticket, "acknowledgement", rendered, to=rcpt,
                                    automatic="auto-replied", in_reply_to=in_reply_to, references=references,
                                    source_spool_id=spool_id)
