"""The one-click survey pages: /survey/<signed token>, served by the web app (gateway/edges/web.py).

survey_url (the public base URL the closure email links to; a reverse proxy
usually sits between) is in [workflow]; where the pages are served is [web] listen.
The token (gateway.desk.closure.survey_links) signs ticket, resolution and score, so
it needs no login and cannot be altered; it is single use per resolution,
enforced by a unique JobRun row, so two gateways or a double click record one answer.

GET only shows a confirmation page (with an optional comment box); the answer
is recorded on POST. Mail security scanners open every link in a message, and
recording on GET would let them cast the "1" vote for the customer.

Owns the survey routes only; it knows nothing of how they are served.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qs

from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from gateway.desk.closure import SURVEY_PURPOSE, survey_stamp
from gateway.handlers.survey_handler import record_answer
from storage.models import JobRun, Ticket
from storage.queries import job_runs

log = logging.getLogger("supportgw.survey_web")
MAX_FORM = 8192


def _check(app, s, token: str):
    """(ticket, score, state) with state ok|invalid|expired."""
    values = app.signer.check_link_token(SURVEY_PURPOSE, token)
    if not values or len(values) != 3 or not all(v.isdigit() for v in values) or not 1 <= int(values[2]) <= 5:
        return None, 0, "invalid"
    ticket = s.get(Ticket, int(values[0]))
    if ticket is None:
        return None, 0, "invalid"
    if ticket.status not in ("resolved", "closed") or survey_stamp(ticket) != values[1]:
        return ticket, int(values[2]), "expired"  # reopened, or resolved again with a new survey
    return ticket, int(values[2]), "ok"


def page(app, status: int, state: str, ticket=None, score=0, token="") -> HTMLResponse:
    lang = ticket.language if ticket is not None else app.config.report.language
    rendered = app.templates_for(ticket).render("survey_page", lang, state=state, ticket=ticket, score=score,
                                                token=token, team_name=app.team_name(ticket))
    body = f"<!doctype html><html><head><meta charset='utf-8'><title>{rendered.subject}</title></head>" \
           f"<body>{rendered.html}</body></html>"
    return HTMLResponse(body, status_code=status,
                        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


def _show(app, token: str) -> HTMLResponse:
    with app.db.session() as s:
        ticket, score, state = _check(app, s, token)
        if state == "ok" and _answered(s, ticket):
            state = "answered"
        code = {"ok": 200, "answered": 200, "expired": 410}.get(state, 404)
        return page(app, code, "confirm" if state == "ok" else state, ticket, score, token)


def _answer(app, token: str, comment: str) -> HTMLResponse:
    # The page is written after the commit: "thank you" must mean "stored".
    with app.db.session() as s:
        ticket, score, state = _check(app, s, token)
        if state == "ok":
            state = _record(app, s, ticket, score, comment, token)
        view = (ticket.language, ticket.ref) if ticket is not None else None
    code = {"expired": 410, "invalid": 404}.get(state, 200)
    return page(app, code, state, _View(*view) if view else None, score)


def _record(app, s, ticket, score: int, comment: str, token: str) -> str:
    try:
        with s.begin_nested():
            s.add(JobRun(job="survey", due_key=f"{ticket.id}.{survey_stamp(ticket)}",
                         at=app.now(), holder=app.worker_id))
            s.flush()
    except IntegrityError:
        return "answered"
    reopened = record_answer(app, s, ticket, score=score, comment=comment,
                             actor=ticket.requester_email, via="link", token=token)
    return "reopened" if reopened else "thanks"


class _View:
    """What a page shows of a ticket once the session is closed."""

    def __init__(self, language: str, ref: str) -> None:
        self.language, self.ref = language, ref


def _answered(s, ticket: Ticket) -> bool:
    key = f"{ticket.id}.{survey_stamp(ticket)}"
    return job_runs.done(s, "survey", key)


def routes(app) -> list[Route]:
    """The survey routes for the web app. Tokens are in the path, so the access log stays off."""

    async def survey(request: Request):
        token = request.path_params["token"]
        if request.method == "GET":
            return await run_in_threadpool(_show, app, token)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM:
                return page(app, 404, "invalid")
        form = parse_qs(body.decode("utf-8", "replace"))
        comment = (form.get("comment") or [""])[0].strip()[:4000]
        return await run_in_threadpool(_answer, app, token, comment)

    return [Route("/survey/{token:path}", survey, methods=["GET", "POST"])]
