"""The optional one-click survey endpoint: /survey/<signed token>, stdlib HTTP, off by default.

Enabled by [workflow] survey_listen = "host:port" (where to listen) and
survey_url (the public base URL the closure email links to; a reverse proxy
usually sits between). The token (gateway.closure.survey_links) signs ticket,
resolution and score, so it needs no login and cannot be altered; it is single
use per resolution, enforced by a unique JobRun row, so two gateways or a
double click record one answer.

GET only shows a confirmation page (with an optional comment box); the answer
is recorded on POST. Mail security scanners open every link in a message, and
recording on GET would let them cast the "1" vote for the customer.
"""

from __future__ import annotations

import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gateway.closure import SURVEY_PURPOSE, survey_stamp
from gateway.survey_handler import record_answer
from storage.models import JobRun, Ticket

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


class SurveyHandler(BaseHTTPRequestHandler):
    app = None  # set by make_server
    server_version = "supportgw-survey"

    def _page(self, status: HTTPStatus, state: str, ticket=None, score=0, token=""):
        lang = ticket.language if ticket is not None else self.app.config.report.language
        page = self.app.templates.render("survey_page", lang, state=state, ticket=ticket, score=score, token=token,
                                         team_name=self.app.config.gateway.display_name)
        body = f"<!doctype html><html><head><meta charset='utf-8'><title>{page.subject}</title></head>" \
               f"<body>{page.html}</body></html>".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        self.wfile.write(body)

    def _token(self) -> str | None:
        path = self.path.split("?", 1)[0]
        if not path.startswith("/survey/"):
            return None
        return path[len("/survey/"):]

    def do_GET(self):  # noqa: N802 (http.server's naming)
        token = self._token()
        if token is None:
            return self._page(HTTPStatus.NOT_FOUND, "invalid")
        with self.app.db.session() as s:
            ticket, score, state = _check(self.app, s, token)
            if state == "ok" and _answered(s, ticket):
                state = "answered"
            code = {"ok": HTTPStatus.OK, "answered": HTTPStatus.OK, "expired": HTTPStatus.GONE}.get(
                state, HTTPStatus.NOT_FOUND)
            self._page(code, "confirm" if state == "ok" else state, ticket, score, token)

    def do_POST(self):  # noqa: N802
        token = self._token()
        length = int(self.headers.get("Content-Length") or 0)
        if token is None or length > MAX_FORM:
            return self._page(HTTPStatus.NOT_FOUND, "invalid")
        form = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
        comment = (form.get("comment") or [""])[0].strip()[:4000]
        # The page is written after the commit: "thank you" must mean "stored".
        with self.app.db.session() as s:
            ticket, score, state = _check(self.app, s, token)
            if state == "ok":
                state = self._record(s, ticket, score, comment, token)
            view = (ticket.language, ticket.ref) if ticket is not None else None
        code = {"expired": HTTPStatus.GONE, "invalid": HTTPStatus.NOT_FOUND}.get(state, HTTPStatus.OK)
        self._page(code, state, _View(*view) if view else None, score)

    def _record(self, s, ticket, score: int, comment: str, token: str) -> str:
        try:
            with s.begin_nested():
                s.add(JobRun(job="survey", due_key=f"{ticket.id}.{survey_stamp(ticket)}",
                             at=self.app.now(), holder=self.app.worker_id))
                s.flush()
        except IntegrityError:
            return "answered"
        reopened = record_answer(self.app, s, ticket, score=score, comment=comment,
                                 actor=ticket.requester_email, via="link", token=token)
        return "reopened" if reopened else "thanks"

    def log_message(self, fmt, *args):  # quiet: tokens do not belong in logs
        log.debug("survey %s", self.command)


class _View:
    """What a page shows of a ticket once the session is closed."""

    def __init__(self, language: str, ref: str) -> None:
        self.language, self.ref = language, ref


def _answered(s, ticket: Ticket) -> bool:
    key = f"{ticket.id}.{survey_stamp(ticket)}"
    return s.execute(select(JobRun.id).where(JobRun.job == "survey", JobRun.due_key == key)).first() is not None


def make_server(app, host: str, port: int) -> ThreadingHTTPServer:
    handler = type("BoundSurveyHandler", (SurveyHandler,), {"app": app})
    return ThreadingHTTPServer((host, port), handler)


def start_survey_server(app):
    """Start the endpoint in a daemon thread when configured; returns the server (call .shutdown()) or None."""
    listen = app.config.workflow.survey_listen
    if not listen:
        return None
    host, _, port = listen.rpartition(":")
    server = make_server(app, host or "127.0.0.1", int(port))
    threading.Thread(target=server.serve_forever, name="survey-web", daemon=True).start()
    return server
