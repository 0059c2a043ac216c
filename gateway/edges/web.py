"""The gateway's one web application: every page and endpoint served over HTTP.

An ASGI app (Starlette) served by uvicorn in a thread of the gateway process,
started by `supportgw run` when `[web] listen = "host:port"` is set; off by
default, and meant to sit behind a reverse proxy (TLS, public name) in production.
Starlette because it is small, typed, maintained, and its test client and
routing need nothing else; uvicorn because it is the reference ASGI server and
can run inside our process on a socket we bind (so a port in use fails `run`
at once, like SMTP).

Owns the route table and the server's life; the pages themselves live in
their own modules (survey_web, health_web). No access log: survey tokens are
in paths, and tokens never belong in logs.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse

log = logging.getLogger("supportgw.web")


def build_web_app(app) -> Starlette:
    from gateway.edges import desk_web, health_web, survey_web

    async def not_found(request, exc):
        return PlainTextResponse("not found\n", status_code=404)

    routes: list = [*survey_web.routes(app), *health_web.routes(app), *desk_web.routes(app)]
    return Starlette(routes=routes, exception_handlers={404: not_found})


def listen_address(config) -> str:
    """[web] listen, or the older [workflow] survey_listen it replaces."""
    return config.web.listen or config.workflow.survey_listen


class WebServer:
    """uvicorn serving the web app on a socket bound here; `.port`, `.stop()`."""

    def __init__(self, app, host: str, port: int) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((host, port))
        except OSError:
            self.sock.close()
            raise
        self.sock.listen(128)
        self.host, self.port = host, self.sock.getsockname()[1]
        cfg = uvicorn.Config(build_web_app(app), log_config=None, access_log=False, lifespan="off",
                             server_header=False, proxy_headers=True, timeout_graceful_shutdown=3)
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name="web", daemon=True)

    def start(self) -> "WebServer":
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)
        self.sock.close()


def start_web_server(app) -> WebServer | None:
    """Start the web app when [web] listen is set; returns the server (call .stop()) or None."""
    listen = listen_address(app.config)
    if not listen:
        return None
    host, _, port = listen.rpartition(":")
    server = WebServer(app, host.strip("[]") or "127.0.0.1", int(port)).start()
    log.info("web listening on %s", server.base_url)
    return server
