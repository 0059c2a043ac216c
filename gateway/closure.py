"""Closure with the solution and a survey; reopen; knowledge capture. Stub: being implemented."""

from __future__ import annotations


def resolve(app, session, ticket, *, actor: str, solution: str, kb_tags: tuple[str, ...] | None = None,
            status: str = "resolved") -> None:
    """Mark resolved/closed, send the customer the closure email with the solution and a survey."""
    raise NotImplementedError
