"""The relay inside a ``websockets`` server someone else runs.

``serve(relay.handler, host, port, process_request=relay.process_request,
process_response=relay.process_response)`` routes, authenticates and dials the backend before
the upgrade (404/401/403/502/503/504 as plain text), hands the backend's subprotocol to the
client, then copies messages both ways. Because websockets owns that socket, this path uses
websockets connection objects and a per-message copy loop, not the raw byte splice of
:class:`~asyncapi_gw.relay.Relay`'s own listeners: it enforces direction, quotas, message
validation and the message size limit, and passes close codes through, but compression is
negotiated separately on each leg. ``idle_timeout`` closes a connection without a message
either way (1001 to both sides); ``ping_interval`` and ``ping_timeout`` keep the backend leg
alive (a backend that misses its pong closes the client with 1011), while the client's pings
are the server's own (``serve(ping_interval=...)``). A reload judges these connections as it
judges the relay's own (:mod:`asyncapi_gw.relay.reload`); a kept one follows its topic's new
direction, quota and validation from its next message.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from asyncapi_gw.relay.closecode import RELAY_CLOSING, CloseCode
from asyncapi_gw.relay.gate import Admission, Deliver, Discard, Gate, Refusal
from asyncapi_gw.relay.handshake import forwarded_headers, origin_form
from asyncapi_gw.relay.reload import Drop, Keep
from asyncapi_gw.relay.stream import Close

__all__ = ["WebsocketsAdapter", "protocol_fault"]

# Codes websockets fails a connection with when the peer breaks the protocol.
_PROTOCOL_ERRORS = frozenset(
    {CloseCode.PROTOCOL_ERROR, CloseCode.INVALID_DATA, CloseCode.MESSAGE_TOO_BIG}
)


class _Leg:
    """One admitted client: its gate admission, its backend connection, and, once a reload
    or the credential's expiry closes it, the close code and reason (``dropped``)."""

    def __init__(self, admission: Admission, backend: ClientConnection) -> None:
        self.admission = admission
        self.backend = backend
        self.loop = loop = asyncio.get_running_loop()
        self.dropped: asyncio.Future[tuple[int, str]] = loop.create_future()
        self.last_message = loop.time()  # a message either way (the idle timeout's start)

    def drop(self, code: int, reason: str) -> None:
        if not self.dropped.done():
            self.dropped.set_result((code, reason))


class WebsocketsAdapter:
    """``process_request``, ``process_response`` and ``handler`` for ``websockets.serve``,
    deciding everything through ``gate``."""

    def __init__(self, gate: Gate) -> None:
        self._gate = gate
        self._legs: weakref.WeakKeyDictionary[ServerConnection, _Leg] = weakref.WeakKeyDictionary()
        self._open: set[_Leg] = set()  # legs whose handler runs
        self._reapers: set[asyncio.Task[None]] = set()

    def reload(self) -> list[Keep | Drop]:
        """Judge every open connection again after the gate's reload and act on the verdicts."""
        verdicts: list[Keep | Drop] = []
        for leg in list(self._open):
            verdict = self._gate.rejudge(leg.admission, compressed=False)
            if isinstance(verdict, Drop):
                leg.drop(verdict.code, verdict.reason)
            verdicts.append(verdict)
        return verdicts

    async def process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        """Decide before the upgrade; ``None`` lets websockets accept the client."""
        gate = self._gate
        peer = connection.remote_address
        headers = list(request.headers.raw_items())
        admitted = gate.admit(
            origin_form(request.path)[0], headers, peer=str(peer[0]) if peer else "local"
        )
        if isinstance(admitted, Refusal):
            return _respond(connection, admitted)
        config = gate.config
        try:
            backend = await connect(
                admitted.backend_url,
                subprotocols=[Subprotocol(p) for p in admitted.subprotocols] or None,
                additional_headers=forwarded_headers(
                    headers,
                    forward_headers=config.forward_headers,
                    relay_headers=admitted.backend_headers,
                    client_host=admitted.peer,
                    secure_client=connection.transport.get_extra_info("ssl_object") is not None,
                    host=request.headers.get("Host"),
                ),
                compression="deflate" if config.compression else None,
                open_timeout=config.open_timeout,
                max_size=config.max_message_size,
                ping_interval=config.ping_interval,
                ping_timeout=config.ping_timeout,
                close_timeout=config.close_timeout,
            )
        except TimeoutError:
            refusal = gate.refuse(504, "the backend did not complete its handshake")
        except (OSError, InvalidHandshake, InvalidStatus) as exc:
            refusal = gate.refuse(502, f"cannot reach the backend: {exc}")
        else:
            leg = self._legs[connection] = _Leg(admitted, backend)
            reaper = asyncio.get_running_loop().create_task(self._reap(connection, leg))
            self._reapers.add(reaper)
            reaper.add_done_callback(self._reapers.discard)
            return None
        gate.release(admitted)
        return _respond(connection, refusal)

    async def _reap(self, client: ServerConnection, leg: _Leg) -> None:
        """Close ``leg``'s backend once ``client`` is gone if the handler never took it:
        websockets may still refuse the client after ``process_request`` (a request that is
        no valid upgrade, the server shutting down, its open timeout, a lost connection)."""
        await client.wait_closed()
        if self._legs.get(client) is leg:
            del self._legs[client]
            self._gate.release(leg.admission)
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
        gate, backend, admission = self._gate, leg.backend, leg.admission
        if admission.generation != gate.generation:  # a reload came while the backend was dialled
            verdict = gate.rejudge(admission, compressed=False)
            if isinstance(verdict, Drop):
                leg.drop(verdict.code, verdict.reason)
        gate.accept(admission, compressed=False)  # judged above: it accepts
        self._open.add(leg)
        copies: list[asyncio.Future[None]] = [
            asyncio.create_task(self._copy(client, backend, leg, from_client=True)),
            asyncio.create_task(self._copy(backend, client, leg, from_client=False)),
        ]
        waits: list[asyncio.Future[Any]] = [*copies, leg.dropped]
        done: set[asyncio.Future[Any]] = set()
        while not done:  # until a side closes, a reload drops it, its credential expires
            timeout = gate.deadline(admission, leg.last_message, leg.loop.time())  # or idle
            done, _ = await asyncio.wait(waits, timeout=timeout, return_when="FIRST_COMPLETED")
            if not done:  # a deadline: its drop is among the waits, the next wait returns
                ending = gate.overdue(admission, leg.last_message, leg.loop.time())
                if ending is not None:
                    leg.drop(*ending)
        self._open.discard(leg)
        if leg.dropped.done():
            code, reason = leg.dropped.result()
            await asyncio.gather(client.close(code, reason), backend.close(*RELAY_CLOSING))
        leg.dropped.cancel()
        for task in copies:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await task
        gate.release(admission, client.close_code)

    async def _copy(
        self,
        source: ServerConnection | ClientConnection,
        sink: ServerConnection | ClientConnection,
        leg: _Leg,
        *,
        from_client: bool,
    ) -> None:
        gate = self._gate
        fault: Close | None = None  # why the relay closed ``source``
        try:
            async for message in source:
                leg.last_message = leg.loop.time()
                text = isinstance(message, str)
                raw = message.encode() if isinstance(message, str) else message
                verdict = gate.verdict(
                    leg.admission, from_client=from_client, text=text, payload=raw
                )
                if type(verdict) is Deliver:
                    await sink.send(message)
                elif isinstance(verdict, Discard):
                    if verdict.reply is not None:
                        await source.send(verdict.reply)
                elif isinstance(verdict, Close):
                    fault = verdict
                    break
        except ConnectionClosed as exc:
            fault = protocol_fault(exc)
        if fault is not None:
            to_client, to_backend = fault.closes(from_client=from_client)
            own, other = (to_client, to_backend) if from_client else (to_backend, to_client)
            await asyncio.gather(source.close(*own), sink.close(*other))
            return
        frame = source.protocol.close_rcvd or source.protocol.close_sent
        if frame is not None:
            await sink.close(frame.code, frame.reason)
        elif from_client:
            await sink.close(CloseCode.GOING_AWAY, "going away")
        else:
            await sink.close(CloseCode.BAD_GATEWAY, "backend connection lost")


def _respond(connection: ServerConnection, refusal: Refusal) -> Response:
    response = connection.respond(refusal.status, refusal.body)
    for name, value in refusal.headers:
        response.headers[name] = value
    return response


def protocol_fault(exc: ConnectionClosed) -> Close | None:
    """The close websockets failed a connection with because the peer broke the protocol
    (1002, 1007, 1009 sent, nothing received), as the relay's fault close; else ``None``."""
    sent, rcvd = exc.sent, exc.rcvd
    if rcvd is None and sent is not None and sent.code in _PROTOCOL_ERRORS:
        return Close(sent.code, sent.reason)
    return None
