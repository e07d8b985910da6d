"""The relay inside a ``websockets`` server someone else runs.

``serve(relay.handler, host, port, process_request=relay.process_request,
process_response=relay.process_response)`` routes, authenticates and dials the backend before
the upgrade (404/401/403/502/503/504 as plain text), hands the backend's subprotocol to the
client, then copies messages both ways. Because websockets owns that socket, this path uses
websockets connection objects and a per-message copy loop, not the raw byte splice of
:class:`~asyncapi_gw.relay.Relay`'s own listeners: it enforces direction, quotas, message
validation and the message size limit, and passes close codes through, but compression is
negotiated separately on each leg. A reload judges these connections as it judges the relay's
own (:mod:`asyncapi_gw.relay.reload`); a kept one follows its topic's new direction, quota and
validation from its next message.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.frames import CloseCode
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from asyncapi_gw.model import Operation
from asyncapi_gw.relay.handshake import HandshakeError, origin_form
from asyncapi_gw.relay.principal import header_value, quota_key
from asyncapi_gw.relay.quota import THROTTLED_MESSAGE, ConnectionQuota, QuotaRegistry
from asyncapi_gw.relay.reload import Drop, Keep, Session
from asyncapi_gw.relay.stream import Close

if TYPE_CHECKING:
    from asyncapi_gw.relay.server import Relay

__all__ = ["WebsocketsAdapter"]

# Codes websockets fails a connection with when the peer breaks the protocol.
_PROTOCOL_ERRORS = frozenset({1002, 1007, 1009})


class _Leg:
    """What ``process_request`` prepared for one accepted client, and what a reload changes:
    its ``session``, its ``quota``, or ``dropped`` (the close code and reason)."""

    def __init__(self, session: Session, backend: ClientConnection, generation: int) -> None:
        self.session = session
        self.backend = backend
        self.generation = generation  # the relay's reloads when it was routed
        self.peer = "local"  # the client's address, for its principal's quota when anonymous
        self.quota: ConnectionQuota | None = None
        self.dropped: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()

    def take_quota(self, quotas: QuotaRegistry) -> None:
        """A quota for the connection's API and principal, in place of the one it held."""
        self.release_quota()
        principal = quota_key(self.session.principal, self.peer)
        self.quota = quotas.for_connection(
            self.session.route.api, principal=principal, now=time.monotonic()
        )

    def release_quota(self) -> None:
        if self.quota is not None:
            self.quota.release()
            self.quota = None

    def reloaded(self, verdict: Keep | Drop, quotas: QuotaRegistry) -> None:
        """Close as a reload decided, or go on under its route and principal (with a new
        quota from ``quotas`` when the throttling changed)."""
        if isinstance(verdict, Drop):
            if not self.dropped.done():
                self.dropped.set_result((verdict.code, verdict.reason))
            return
        self.session = attrs.evolve(self.session, route=verdict.route, principal=verdict.principal)
        if verdict.quota_changed:
            self.take_quota(quotas)


class WebsocketsAdapter:
    """``process_request``, ``process_response`` and ``handler`` for ``websockets.serve``."""

    def __init__(self, relay: Relay) -> None:
        self._relay = relay
        self._legs: weakref.WeakKeyDictionary[ServerConnection, _Leg] = weakref.WeakKeyDictionary()
        self._open: set[_Leg] = set()  # legs whose handler runs
        self._reapers: set[asyncio.Task[None]] = set()

    def reload(self, judge: Callable[[Session], Keep | Drop]) -> list[Keep | Drop]:
        """Judge every open connection with ``judge`` and act on the verdicts (a reload)."""
        verdicts = []
        for leg in list(self._open):
            verdict = judge(leg.session)
            leg.reloaded(verdict, self._relay._quotas)
            verdicts.append(verdict)
        return verdicts

    async def process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        """Decide before the upgrade; ``None`` lets websockets accept the client."""
        relay = self._relay
        generation = relay._generation
        try:
            route = relay._route(request)
            principal, built = relay._authorize(route, request)
            url = built.url
            offered = [
                Subprotocol(p.strip())
                for v in request.headers.get_all("Sec-WebSocket-Protocol")
                for p in v.split(",")
                if p.strip()
            ]
            config = relay.config
            headers = []
            if config.principal_header is not None:
                headers.append((config.principal_header, header_value(principal)))
            try:
                backend = await connect(
                    url,
                    subprotocols=offered or None,
                    additional_headers=headers,
                    compression="deflate" if config.compression else None,
                    open_timeout=config.open_timeout,
                    max_size=config.max_message_size,
                    ping_interval=None,
                )
            except TimeoutError:
                raise HandshakeError(504, "the backend did not complete its handshake") from None
            except (OSError, InvalidHandshake, InvalidStatus) as exc:
                raise HandshakeError(502, f"cannot reach the backend: {exc}") from None
        except HandshakeError as exc:
            relay._metrics.rejected(exc.status)
            response = connection.respond(exc.status, exc.reason.rstrip("\n") + "\n")
            for name, value in exc.headers:
                response.headers[name] = value
            return response
        target = origin_form(request.path)[0]  # as _route read it
        session = Session(target=target, route=route, principal=principal, backend_url=url)
        leg = self._legs[connection] = _Leg(session, backend, generation)
        reaper = asyncio.get_running_loop().create_task(self._reap(connection, leg))
        self._reapers.add(reaper)
        reaper.add_done_callback(self._reapers.discard)
        return None

    async def _reap(self, client: ServerConnection, leg: _Leg) -> None:
        """Close ``leg``'s backend once ``client`` is gone if the handler never took it:
        websockets may still refuse the client after ``process_request`` (a request that is
        no valid upgrade, the server shutting down, its open timeout, a lost connection)."""
        await client.wait_closed()
        if self._legs.get(client) is leg:
            del self._legs[client]
            await leg.backend.close()

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
        relay, backend = self._relay, leg.backend
        relay._metrics.opened(leg.session.route.api.name)
        peer = client.remote_address
        leg.peer = str(peer[0]) if peer else "local"
        leg.take_quota(relay._quotas)
        self._open.add(leg)
        if leg.generation != relay._generation:  # a reload came while the backend was dialled
            leg.reloaded(relay._judge(leg.session, compressed=False), relay._quotas)
        copies: list[asyncio.Future[None]] = [
            asyncio.create_task(self._copy(client, backend, leg, Operation.PUBLISH)),
            asyncio.create_task(self._copy(backend, client, leg, Operation.SUBSCRIBE)),
        ]
        waits: list[asyncio.Future[Any]] = [*copies, leg.dropped]
        done: set[asyncio.Future[Any]] = set()
        while not done:  # until a side closes, a reload drops it or its token expires
            expires_at = leg.session.principal.expires_at
            timeout = None if expires_at is None else max(0.0, expires_at - time.time())
            done, _ = await asyncio.wait(waits, timeout=timeout, return_when="FIRST_COMPLETED")
            if leg.session.principal.expires_at is not None:
                break  # (a reload may have put it on a topic that asks for no credential)
        self._open.discard(leg)
        leg.release_quota()
        if leg.dropped.done():
            code, reason = leg.dropped.result()
            await asyncio.gather(client.close(code, reason), backend.close())
        elif not done:
            await asyncio.gather(client.close(4001, "token expired"), backend.close())
        leg.dropped.cancel()
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
        leg: _Leg,
        operation: Operation,
    ) -> None:
        config = self._relay.config
        from_client = operation is Operation.PUBLISH
        fault: Close | None = None  # why the relay closed ``source``
        try:
            async for message in source:
                route = leg.session.route  # a reload may have changed it
                quota = leg.quota if from_client else None
                check = self._relay._validator(route, operation)
                if not route.topic.allows(operation):
                    if config.on_wrong_direction == "close":
                        fault = Close(1008, f"topic does not allow {operation.value}")
                        break
                    continue
                if quota is not None and not quota.take(time.monotonic()):
                    if config.on_throttle == "close":
                        fault = Close(4003, "Websocket frame throttled out")
                        break
                    await source.send(THROTTLED_MESSAGE)
                    continue
                if check is not None:
                    text = isinstance(message, str)
                    raw = message.encode() if isinstance(message, str) else message
                    if not check(1 if text else 2, raw):
                        if config.on_invalid == "close":
                            fault = Close(1007, "message failed validation")
                            break
                        continue
                await sink.send(message)
        except ConnectionClosed as exc:
            sent, rcvd = exc.sent, exc.rcvd
            if rcvd is None and sent is not None and sent.code in _PROTOCOL_ERRORS:
                fault = Close(sent.code, sent.reason)  # websockets failed the connection
        if fault is not None:
            to_client, to_backend = fault.closes(from_client=from_client)
            own, other = (to_client, to_backend) if from_client else (to_backend, to_client)
            await asyncio.gather(source.close(*own), sink.close(*other))
            return
        frame = source.protocol.close_rcvd or source.protocol.close_sent
        if frame is not None:
            await sink.close(frame.code, frame.reason)
        else:
            lost = 1001 if from_client else 1014
            await sink.close(lost, "going away" if from_client else "backend connection lost")
