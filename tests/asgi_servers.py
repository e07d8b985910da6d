"""Real ASGI servers for the tests, started on a free loopback port on the running loop:
uvicorn (with any of its WebSocket implementations) and hypercorn, serving an app alone or
mounted under ``/gw`` in FastAPI or Starlette.

A front ``kind`` names the server, its WebSocket implementation and the app the relay is
mounted in: ``"<server>[-<implementation>][+<app>]"``, for example ``uvicorn-wsproto+starlette``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

MOUNT = "/gw"
_UVICORN_WS = {"uvicorn": "websockets", "uvicorn-sansio": "websockets-sansio"}


def mounted(kind: str, relay: Any) -> tuple[Any, str]:
    """The ASGI app a front ``kind`` runs (the relay, or an app mounting it) and the mount."""
    if kind.endswith("+fastapi"):
        from fastapi import FastAPI

        app = FastAPI()

        @app.get("/health")
        def health() -> dict[str, str]:
            return {"status": "ok"}

        app.mount(MOUNT, relay)
        return app, MOUNT
    if kind.endswith("+starlette"):
        from starlette.applications import Starlette
        from starlette.routing import Mount

        return Starlette(routes=[Mount(MOUNT, app=relay)]), MOUNT
    return relay, ""


def _listening() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


@contextlib.asynccontextmanager
async def uvicorn_server(app: Any, ws: str = "websockets-sansio") -> AsyncIterator[int]:
    """``app`` under a real uvicorn server on this loop; yields its port."""
    import uvicorn

    sock = _listening()
    config = uvicorn.Config(app, ws=ws, lifespan="on", log_level="warning", loop="none")
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task
        sock.close()


@contextlib.asynccontextmanager
async def hypercorn_server(app: Any) -> AsyncIterator[int]:
    """``app`` under a real hypercorn server on this loop; yields its port."""
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    logging.getLogger("hypercorn.error").setLevel(logging.WARNING)
    sock = _listening()
    port = sock.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]  # hypercorn owns (and closes) it
    config.graceful_timeout = 2
    stop = asyncio.Event()
    task = asyncio.ensure_future(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    try:
        yield port
    finally:
        stop.set()
        await task


@contextlib.asynccontextmanager
async def server(kind: str, app: Any) -> AsyncIterator[int]:
    """``app`` under the server of front ``kind``; yields its port."""
    name = kind.partition("+")[0]
    if name.startswith("uvicorn"):
        async with uvicorn_server(app, _UVICORN_WS.get(name, "wsproto")) as port:
            yield port
    else:
        async with hypercorn_server(app) as port:
            yield port
