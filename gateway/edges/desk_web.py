"""The desk pages for managers and engineers: /desk (queue, SLA risk, who holds what),
/desk/ticket/<ref> (one ticket), sign-in by mail (/desk/login). Read-only.

Pages are jinja2 templates templates/<locale>/desk_*.html (autoescaped), in
English or Chinese (?lang=, then a cookie, then Accept-Language). Access rules
are gateway.edges.desk_view's; sign-in, sessions and CSRF gateway.edges.desk_auth's.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse
from starlette.routing import Route

from gateway.edges import desk_auth, desk_view
from gateway import outbox
from templates import TEMPLATE_DIR

HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
           "Content-Security-Policy":
               "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'"}
_env = Environment(loader=FileSystemLoader(str(TEMPLATE_DIR)), autoescape=select_autoescape(default=True))


def _locale(request: Request) -> str:
    lang = request.query_params.get("lang") or request.cookies.get("supportgw_lang") or ""
    if lang not in ("en", "zh-CN"):
        lang = "zh-CN" if request.headers.get("accept-language", "").lower().startswith("zh") else "en"
    return lang


def _page(request: Request, name: str, status: int = 200, **ctx) -> HTMLResponse:
    lang = _locale(request)
    html = _env.get_template(f"{lang}/desk_{name}.html").render(lang=lang, **ctx)
    resp = HTMLResponse(html, status_code=status, headers=HEADERS)
    if request.query_params.get("lang") == lang:
        resp.set_cookie("supportgw_lang", lang, httponly=True, samesite="lax", secure=_tls(request))
    return resp


def _tls(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


async def _form(request: Request) -> dict:
    body = (await request.body())[:8192]
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}


def routes(app) -> list[Route]:
    def person(request: Request):
        return desk_auth.session_person(app, request.cookies.get(desk_auth.COOKIE))

    async def login(request: Request):
        if request.method == "GET":
            token = desk_auth.new_csrf()
            resp = _page(request, "login", csrf=token)
            resp.set_cookie(desk_auth.CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_tls(request),
                            path="/desk")
            return resp
        form = await _form(request)
        if not desk_auth.csrf_ok(request.cookies.get(desk_auth.CSRF_COOKIE), form.get("csrf")):
            return _page(request, "message", 403, key="csrf")
        address = (form.get("email") or "").strip().lower()[:320]
        await run_in_threadpool(_mail_link, app, request, address, _locale(request))
        return _page(request, "message", key="sent")  # the same whoever asked

    async def redeem(request: Request):
        address = await run_in_threadpool(desk_auth.redeem, app, request.path_params["token"])
        if address is None:
            return _page(request, "message", 403, key="expired")
        resp = RedirectResponse("/desk", status_code=303)
        resp.set_cookie(desk_auth.COOKIE, desk_auth.session_cookie(app, address), httponly=True, samesite="lax",
                        secure=_tls(request), path="/desk", max_age=desk_auth.SESSION_HOURS * 3600)
        return resp

    async def logout(request: Request):
        form = await _form(request)
        if not desk_auth.csrf_ok(request.cookies.get(desk_auth.CSRF_COOKIE), form.get("csrf")):
            return _page(request, "message", 403, key="csrf")
        resp = RedirectResponse("/desk/login", status_code=303)
        resp.delete_cookie(desk_auth.COOKIE, path="/desk")
        return resp

    def _signed_in(request: Request, name: str, build):
        who = person(request)
        if who is None:
            return RedirectResponse("/desk/login", status_code=303)
        token = request.cookies.get(desk_auth.CSRF_COOKIE) or desk_auth.new_csrf()
        with app.db.session() as s:
            data = build(s, who)
            if data is None:
                return _page(request, "message", 404, key="notfound", me=who, csrf=token)
            resp = _page(request, name, me=who, csrf=token, **data)
        resp.set_cookie(desk_auth.CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_tls(request),
                        path="/desk")
        return resp

    async def queue(request: Request):
        return await run_in_threadpool(_signed_in, request, "queue", lambda s, who: desk_view.queue(app, s, who))

    async def ticket(request: Request):
        ref = request.path_params["ref"]
        return await run_in_threadpool(_signed_in, request, "ticket",
                                       lambda s, who: desk_view.ticket_page(app, s, who, ref))

    async def report(request: Request):
        weeks = request.query_params.get("weeks", "8")
        weeks = min(int(weeks), 52) if weeks.isdigit() and int(weeks) > 0 else 8
        return await run_in_threadpool(_signed_in, request, "report",
                                       lambda s, who: desk_view.report(app, s, who, weeks))

    return [Route("/desk", queue), Route("/desk/report", report), Route("/desk/login", login, methods=["GET", "POST"]),
            Route("/desk/login/{token:path}", redeem), Route("/desk/logout", logout, methods=["POST"]),
            Route("/desk/ticket/{ref}", ticket)]


def _mail_link(app, request: Request, address: str, lang: str) -> None:
    who = desk_auth.desk_person(app, address)
    if who is None:
        return  # not on the desk: nothing is sent, and the page says the same as for anyone
    base = (app.config.web.public_url or str(request.base_url)).rstrip("/")
    link = f"{base}/desk/login/{desk_auth.signin_token(app, who.email)}"
    with app.db.write_lock(), app.db.session() as s:
        rendered = app.templates.render("desk_signin", lang, link=link, minutes=desk_auth.LINK_MINUTES,
                                        name=who.name or who.email, team_name=app.config.gateway.display_name)
        outbox.mail_engineer(app, s, None, "desk_signin", rendered, to=who.email)
