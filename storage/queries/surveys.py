"""Satisfaction survey answers (`SurveyResponse` rows)."""

from __future__ import annotations

from sqlalchemy import select

from storage.models import SurveyResponse


def newest_answer(session, ticket_id: int, since) -> SurveyResponse | None:
    """The ticket's newest survey answer given at `since` or later (one per resolution)."""
    return session.execute(select(SurveyResponse).where(
        SurveyResponse.ticket_id == ticket_id, SurveyResponse.at >= since).order_by(SurveyResponse.id.desc())
    ).scalars().first()


def of_ticket(session, ticket_id: int) -> list[SurveyResponse]:
    return list(session.execute(select(SurveyResponse).where(SurveyResponse.ticket_id == ticket_id)).scalars())
