"""/healthz, /readyz and /metrics for every service, on one port."""
from __future__ import annotations

from typing import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


async def start_http(port: int, is_ready: Callable[[], bool], is_alive: Callable[[], bool] = lambda: True,
                     host: str = "0.0.0.0") -> web.AppRunner:
    async def healthz(_request):
        return web.Response(text="ok\n") if is_alive() else web.Response(status=503, text="unhealthy\n")

    async def readyz(_request):
        return web.Response(text="ready\n") if is_ready() else web.Response(status=503, text="not ready\n")

    async def metrics(_request):
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
