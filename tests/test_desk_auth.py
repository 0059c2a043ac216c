"""Desk sign-in rules without a browser: CSRF on the forms, links that expire, sessions that are signed."""

from __future__ import annotations

import time

import pytest
from starlette.testclient import TestClient

from gateway.edges import desk_auth
from gateway.edges.web import build_web_app
from storage.models import OutboxRow

ALICE = "alice@support.example.com"


@pytest.fixture
def client(make_app):
    app = make_app()
    with TestClient(build_web_app(app), base_url="https://desk.example.test") as c:
        yield app, c


def _outbox(app):
    with app.db.session() as s:
        return [(r.kind, r.to) for r in s.query(OutboxRow).all()]


def test_the_login_form_needs_its_csrf_token(client):
    app, c = client
    assert c.post("/desk/login", data={"email": ALICE}).status_code == 403  # no token at all
    c.get("/desk/login")
    assert c.post("/desk/login", data={"email": ALICE, "csrf": "forged"}).status_code == 403
    assert _outbox(app) == []
    token = c.cookies.get(desk_auth.CSRF_COOKIE)
    assert c.post("/desk/login", data={"email": ALICE, "csrf": token}).status_code == 200
    assert _outbox(app) == [("desk_signin", [ALICE])]


def test_strangers_get_the_same_page_and_no_mail(client):
    app, c = client
    c.get("/desk/login")
    token = c.cookies.get(desk_auth.CSRF_COOKIE)
    stranger = c.post("/desk/login", data={"email": "wang@bigbank.example", "csrf": token}).text
    engineer = c.post("/desk/login", data={"email": ALICE, "csrf": token}).text
    assert stranger == engineer
    assert _outbox(app) == [("desk_signin", [ALICE])]


def test_links_expire_and_sessions_cannot_be_forged(client, monkeypatch):
    app, c = client
    link = desk_auth.signin_token(app, ALICE)
    later = time.time() + desk_auth.LINK_MINUTES * 60 + 1
    monkeypatch.setattr(desk_auth.time, "time", lambda: later)
    assert c.get(f"/desk/login/{link}", follow_redirects=False).status_code == 403
    monkeypatch.undo()
    r = c.get(f"/desk/login/{link}", follow_redirects=False)
    assert r.status_code == 303 and "secure" in r.headers["set-cookie"].lower()  # https: Secure
    assert "httponly" in r.headers["set-cookie"].lower() and "samesite=lax" in r.headers["set-cookie"].lower()
    assert c.get("/desk", follow_redirects=False).status_code == 200
    c.cookies.clear()
    c.cookies.set(desk_auth.COOKIE, desk_auth.session_cookie(app, ALICE)[:-2] + "xx")
    assert c.get("/desk", follow_redirects=False).headers["location"] == "/desk/login"
