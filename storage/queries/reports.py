"""What the reports count: a period's tickets, events and survey answers, read in bulk."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from storage.models import Event, SlaMark, SurveyResponse, Ticket

CHUNK = 500  # ids per IN (...): well under every database's limit on bound parameters


def opened_in(session, start: datetime, end: datetime) -> list[Ticket]:
    return list(session.execute(
        select(Ticket).where(Ticket.created_at >= start, Ticket.created_at < end).order_by(Ticket.id)).scalars())


def events_in(session, start: datetime, end: datetime) -> list[Event]:
    return list(session.execute(select(Event).where(Event.at >= start, Event.at < end).order_by(Event.id)).scalars())


def resolved_in(session, start: datetime, end: datetime, statuses) -> list[Ticket]:
    """Tickets resolved in [start, end) and now in one of `statuses`."""
    return list(session.execute(
        select(Ticket).where(Ticket.resolved_at >= start, Ticket.resolved_at < end,
                             Ticket.status.in_(statuses))).scalars())


def survey_answers_in(session, start: datetime, end: datetime) -> list[SurveyResponse]:
    return list(session.execute(
        select(SurveyResponse).where(SurveyResponse.at >= start, SurveyResponse.at < end)).scalars())


def sla_breaches(session, ids: list[int], asof: datetime) -> set[tuple[int, str]]:
    """(ticket id, kind) of the SLA marks of these tickets recorded before `asof`."""
    marks: set[tuple[int, str]] = set()
    for chunk in range(0, len(ids), CHUNK):
        rows = session.execute(select(SlaMark.ticket_id, SlaMark.kind).where(
            SlaMark.ticket_id.in_(ids[chunk:chunk + CHUNK]), SlaMark.at < asof)).all()
        marks.update((tid, kind) for tid, kind in rows)
    return marks


def tickets_by_id(session, ids) -> dict[int, Ticket]:
    found: dict[int, Ticket] = {}
    ordered = sorted(ids)
    for chunk in range(0, len(ordered), CHUNK):
        for t in session.execute(select(Ticket).where(Ticket.id.in_(ordered[chunk:chunk + CHUNK]))).scalars():
            found[t.id] = t
    return found
