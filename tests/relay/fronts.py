"""The relay's fronts, each started on a free loopback port: its own listener, and the ASGI
app run directly by uvicorn and hypercorn or mounted in FastAPI and Starlette.

``async with front(kind, apis, **options) as served:`` -- clients connect to
``served.url(gateway_path)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

import attrs
from asgi_servers import mounted, server

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
