"""The relay inside a ``websockets`` server someone else runs.

``serve(relay.handler, host, port, process_request=relay.process_request,
process_response=relay.process_response)`` routes, authenticates and dials the backend before
the upgrade (404/401/403/502/503/504 as plain text), hands the backend's subprotocol to the
client, then copies messages both ways. Because websockets owns that socket, this path uses
websockets connection objects and a per-message copy loop, not the raw byte splice of
:class:`~asyncapi_gw.relay.Relay`'s own listeners: it enforces direction, quotas, message
validation and the message size limit, and passes close codes through, but compression is
negotiated separately on each leg.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from typing import TYPE_CHECKING

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.frames import CloseCode
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from asyncapi_gw.model import Operation
from asyncapi_gw.relay.handshake import HandshakeError
from asyncapi_gw.relay.quota import THROTTLED_MESSAGE, ConnectionQuota
from asyncapi_gw.relay.routing import Route

if TYPE_CHECKING:
    from asyncapi_gw.relay.server import Relay

__all__ = ["WebsocketsAdapter"]


class _Leg:
    """What ``process_request`` prepared for one accepted client."""

    def __init__(self, route: Route, backend: ClientConnection, expires_at: float | None) -> None:
        self.route = route
        self.backend = backend
        self.expires_at = expires_at


class WebsocketsAdapter:
    """``process_request``, ``process_response`` and ``handler`` for ``websockets.serve``."""

    def __init__(self, relay: Relay) -> None:
        self._relay = relay
        self._legs: weakref.WeakKeyDictionary[ServerConnection, _Leg] = weakref.WeakKeyDictionary()

    async def process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        """Decide before the upgrade; ``None`` lets websockets accept the client."""
        relay = self._relay
        try:
            route = relay._route(request)
            principal, url = relay._authorize(route, request)
            offered = [
                Subprotocol(p.strip())
                for v in request.headers.get_all("Sec-WebSocket-Protocol")
                for p in v.split(",")
                if p.strip()
            ]
            try:
                backend = await connect(
                    url,
                    subprotocols=offered or None,
                    open_timeout=relay.config.open_timeout,
                    max_size=relay.config.max_message_size,
                    ping_interval=None,
                )
            except TimeoutError:
                raise HandshakeError(504, "the backend did not complete its handshake") from None
            except (OSError, InvalidHandshake, InvalidStatus) as exc:
                raise HandshakeError(502, f"cannot reach the backend: {exc}") from None
        except HandshakeError as exc:
            relay._metrics.rejected(exc.status)
            return connection.respond(exc.status, exc.reason.rstrip("\n") + "\n")
        self._legs[connection] = _Leg(route, backend, principal.expires_at)
        return None

    def process_response(
        self, connection: ServerConnection, request: Request, response: Response
    ) -> Response | None:
        """Give the client the subprotocol the backend chose."""
        leg = self._legs.get(connection)
        if leg is not None and response.status_code == 101 and leg.backend.subprotocol:
            response.headers["Sec-WebSocket-Protocol"] = leg.backend.subprotocol
        return None

    async def handler(self, client: ServerConnection) -> None:
        """Copy messages both ways until one side closes; close codes pass through."""
        leg = self._legs.pop(client, None)
        if leg is None:
            await client.close(CloseCode.INTERNAL_ERROR, "not prepared by process_request")
            return
        relay, route, backend = self._relay, leg.route, leg.backend
        relay._metrics.opened(route.api.name)
        quota = relay._quotas.for_connection(route.api)
        copies = [
            asyncio.create_task(self._copy(client, backend, route, Operation.PUBLISH, quota)),
            asyncio.create_task(self._copy(backend, client, route, Operation.SUBSCRIBE, None)),
        ]
        timeout = None if leg.expires_at is None else max(0.0, leg.expires_at - time.time())
        done, _ = await asyncio.wait(copies, timeout=timeout, return_when="FIRST_COMPLETED")
        if not done:
            await asyncio.gather(client.close(4001, "token expired"), backend.close())
        for task in copies:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await task
        code = client.close_code or 1006
        relay._metrics.closed(code, ())

    async def _copy(
        self,
        source: ServerConnection | ClientConnection,
        sink: ServerConnection | ClientConnection,
        route: Route,
        operation: Operation,
        quota: ConnectionQuota | None,
    ) -> None:
        config = self._relay.config
        allowed = route.topic.allows(operation)
        check = self._relay._validator(route, operation)
        try:
            async for message in source:
                if not allowed:
                    if config.on_wrong_direction == "close":
                        await source.close(1008, f"topic does not allow {operation.value}")
                        break
                    continue
                if quota is not None and not quota.take(time.monotonic()):
                    if config.on_throttle == "close":
                        await source.close(4003, "Websocket frame throttled out")
                        break
                    await source.send(THROTTLED_MESSAGE)
                    continue
                if check is not None:
                    text = isinstance(message, str)
                    raw = message.encode() if isinstance(message, str) else message
                    if not check(1 if text else 2, raw):
                        if config.on_invalid == "close":
                            await source.close(1007, "message failed validation")
                            break
                        continue
                await sink.send(message)
        except ConnectionClosed:
            pass
        frame = source.protocol.close_rcvd or source.protocol.close_sent
        if frame is not None:
            await sink.close(frame.code, frame.reason)
        else:
            lost = 1014 if operation is Operation.SUBSCRIBE else 1001
            await sink.close(lost, "backend connection lost" if lost == 1014 else "going away")
