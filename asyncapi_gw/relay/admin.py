"""The admin listener: ``GET /health`` and ``GET /metrics`` over plain HTTP/1.1, apart from the
client listeners (which answer 404 for those paths), as Envoy's, Kong's and Zilla's admin ports.

- ``/health``: 200 ``ok`` while the relay serves; 503 ``draining`` once it shuts down, so that
  a load balancer stops sending it clients.
- ``/metrics``: the Prometheus text exposition (format 0.0.4).
- ``HEAD`` is answered as ``GET`` without a body; other methods get 405, other paths 404.

One request per connection (``Connection: close``); a request not complete within the timeout
is dropped unanswered.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, cast

from asyncapi_gw.relay.handshake import HandshakeError, HttpRequest, RequestParser, plain_response
from asyncapi_gw.relay.metrics import CONTENT_TYPE

__all__ = ["AdminConnection", "AdminSource", "admin_answer"]


class AdminSource(Protocol):
    """What the admin listener reports on."""

    @property
    def draining(self) -> bool: ...

    def metrics_text(self) -> str: ...


def admin_answer(request: HttpRequest, source: AdminSource) -> bytes:
    """The whole HTTP response to one admin request."""
    path = request.path.split("?", 1)[0]
    if path not in ("/health", "/metrics"):
        return plain_response(404, "not found: the admin listener serves /health and /metrics\n")
    if request.method not in ("GET", "HEAD"):
        return plain_response(405, "method not allowed\n", headers=[("Allow", "GET, HEAD")])
    if path == "/metrics":
        answer = plain_response(200, source.metrics_text(), content_type=CONTENT_TYPE)
    elif source.draining:
        answer = plain_response(503, "draining\n")
    else:
        answer = plain_response(200, "ok\n")
    if request.method == "HEAD":
        return answer[: answer.index(b"\r\n\r\n") + 4]
    return answer


class AdminConnection(asyncio.Protocol):
    """One admin client: reads its request, answers, closes."""

    def __init__(self, source: AdminSource, timeout: float, live: set[asyncio.Transport]) -> None:
        self._source = source
        self._timeout = timeout
        self._live = live
        self._parser = RequestParser()
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._live.add(self._transport)
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._timeout, self._transport.abort)

    def data_received(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        try:
            request = self._parser.feed(data)
        except HandshakeError as exc:
            self._answer(plain_response(exc.status, exc.reason + "\n"))
            return
        if request is not None:
            self._answer(admin_answer(request, self._source))

    def _answer(self, response: bytes) -> None:
        transport = cast(asyncio.Transport, self._transport)
        transport.write(response)
        transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._transport is not None:
            self._live.discard(self._transport)
