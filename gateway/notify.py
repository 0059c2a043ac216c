"""Notifications to engineers (owner and watchers). Stub: being implemented."""

from __future__ import annotations


def on_new_ticket(app, session, ticket, message) -> None:
    """A new ticket: tell its owner (or team) and watchers."""


def on_customer_message(app, session, ticket, message) -> None:
    """A customer follow-up on an existing ticket: tell the handler and watchers."""
