"""The relay's fronts, each started on a free loopback port: its own listener, and the ASGI
app run directly by uvicorn and hypercorn or mounted in FastAPI and Starlette.

``async with front(kind, apis, **options) as served:`` -- clients connect to
``served.url(gateway_path)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Iterable
from typing import Any

import attrs

from asyncapi_gw.model import StreamingAPI
from asyncapi_gw.relay import AsgiRelay, Relay

# kind: "listener", or "<server>[-<its WebSocket implementation>][+<app the relay is mounted in>]"
FRONTS = (
    "listener",
    "uvicorn",  # uvicorn's `websockets` implementation (websockets' legacy server)
    "uvicorn-sansio+fastapi",  # `websockets-sansio`, mounted under /gw in FastAPI
    "uvicorn-wsproto+starlette",  # `wsproto`, mounted under /gw in Starlette
    "hypercorn",
    "hypercorn+fastapi",
)
ASGI_FRONTS = tuple(kind for kind in FRONTS if kind != "listener")
MOUNT = "/gw"
_UVICORN_WS = {"uvicorn": "websockets", "uvicorn-sansio": "websockets-sansio"}


@attrs.frozen
class Served:
    """A running front: its ``port``, the ``base`` path it is mounted under, and the relay
    object behind it (:class:`Relay` or :class:`AsgiRelay`: ``reload``, ``stats``)."""

    kind: str
    port: int
    base: str
    relay: Relay | AsgiRelay

    async def shutdown(self) -> None:
        """The listener's ``close()``, the ASGI app's ``aclose()``."""
        if isinstance(self.relay, Relay):
            await self.relay.close()
        else:
            await self.relay.aclose()

    def path(self, gateway_path: str) -> str:
        return self.base + gateway_path

    def url(self, gateway_path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{self.base}{gateway_path}"


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


@contextlib.asynccontextmanager
async def front(kind: str, apis: Iterable[StreamingAPI], **options: Any) -> AsyncIterator[Served]:
    """Serve ``apis`` through the front ``kind`` (one of :data:`FRONTS`)."""
    if kind == "listener":
        async with Relay(apis, ws_port=0, **options) as relay:
            yield Served(kind, relay.ports["ws"], "", relay)
        return
    asgi = AsgiRelay(apis, **options)
    app, base = mounted(kind, asgi)
    async with server(kind, app) as port:
        yield Served(kind, port, base, asgi)
