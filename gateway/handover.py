"""The handover rule and tier escalation (DOMAIN.md §4–5). Stub: being implemented."""

from __future__ import annotations


def handover(app, session, ticket, *, reason: str, actor: str) -> None:
    """Primary -> secondary for this incident; escalation mail to the secondary, manager on CC."""
    raise NotImplementedError


def cannot(app, session, ticket, *, actor: str) -> None:
    """The secondary cannot handle it: the manager is told and becomes the owner."""
    raise NotImplementedError


def escalate(app, session, ticket, *, actor: str, note: str) -> None:
    """Tier 1 -> the tier-2 team of the ticket's category, with full history and what tier 1 tried."""
    raise NotImplementedError


def on_resolved(app, session, ticket, *, actor: str) -> None:
    """After resolution: handback summary to the primary (manager CC), tier-2 report back to tier 1."""


def on_created(app, session, ticket, decision) -> None:
    """A new ticket whose primary is out of office is handed over at once."""
