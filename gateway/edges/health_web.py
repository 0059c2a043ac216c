"""/healthz, /readyz and /metrics for the web app (gateway/edges/web.py).

/healthz: the process is up and its web thread answers (no database call, so a
slow database never makes a supervisor restart a healthy process). /readyz:
gateway.edges.health.readiness() as JSON, 200 or 503. /metrics: gateway.metrics.render().
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.edges import health
from gateway import metrics


def routes(app) -> list[Route]:
    async def healthz(request):
        return JSONResponse({"ok": True, "process": app.worker_id})

    async def readyz(request):
        report = await run_in_threadpool(health.readiness, app)
        return JSONResponse(report, status_code=200 if report["ok"] else 503,
                            headers={"Cache-Control": "no-store"})

    async def scrape(request):
        body, ctype = await run_in_threadpool(metrics.render, app)
        return Response(body, media_type=ctype)

    return [Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", scrape)]
