"""The relay as an ASGI application: mount it in FastAPI or Starlette, or run it with uvicorn
or hypercorn.

``app.mount("/gw", AsgiRelay([api]))`` serves ``ws://host/gw/<context>/<version>/<topic>``:
the route is matched on the path under the mount (the scope's ``root_path`` is removed). Each
upgrade is decided before it is accepted, as the relay's own listener decides it: route,
credential (header or query), backend URL, connection limit, then the backend is dialled and
its handshake completed, so the client is accepted with the backend's subprotocol. A refusal
is an HTTP answer (401, 403, 404, 502, 503, 504, with ``WWW-Authenticate`` where the listener
sends it) through the ASGI WebSocket Denial Response extension when the server offers it
(uvicorn >= 0.25 and hypercorn do); a server without it cannot answer an upgrade with a status
of its choice, so the client is accepted and closed at once with code ``4000 + status``
(4401, 4403, 4404, 4502, 4503, 4504) and the refusal's reason.

Once accepted, messages are copied both ways and each is judged (direction, size, quota,
message validation) with the same close codes as the listener: 1008, 1009, 4003, 1007 for the
side at fault, 1014 to the client when the backend is at fault, 1001 to the backend when the
client is. A close code passes through either way; a lost client closes the backend with
1001, a lost backend the client with 1014; an expired token 4001, an idle connection 1001,
a reload 1012 or 4001 (the backend gets 1001 whenever the relay closes for its own reasons).

What the server owns stays the server's: it completes the client's handshake and negotiates
permessage-deflate with the client by its own settings (the backend leg negotiates its own),
pings the client, bounds the client's message size (the relay's ``max_message_size`` still
applies), and closes clients when it shuts down (uvicorn sends 1012). ``await relay.aclose()``
(also run at the ASGI lifespan's shutdown) closes every relayed connection with 1001.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import quote

import attrs
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from asyncapi_gw.model import StreamingAPI
from asyncapi_gw.relay.closecode import RELAY_CLOSING, CloseCode, is_sendable
from asyncapi_gw.relay.config import RelayConfig
from asyncapi_gw.relay.embed import protocol_fault
from asyncapi_gw.relay.front import GatedFront
from asyncapi_gw.relay.gate import Admission, Deliver, Discard, Refusal
from asyncapi_gw.relay.handshake import forwarded_headers
from asyncapi_gw.relay.metrics import Traffic
from asyncapi_gw.relay.reload import Drop, Keep
from asyncapi_gw.relay.stream import Close

__all__ = ["REFUSAL_CLOSE_BASE", "AsgiRelay", "route_target"]


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DENIAL_EXTENSION = "websocket.http.response"
REFUSAL_CLOSE_BASE = 4000
"""Without the Denial Response extension a refusal is close ``REFUSAL_CLOSE_BASE + status``."""
_PLAIN_TEXT = (b"content-type", b"text/plain; charset=utf-8")


def _reason(text: str) -> str:
    """``text`` cut to fit a close frame (123 bytes of UTF-8)."""
    raw = text.encode()
    return text if len(raw) <= 123 else raw[:123].decode(errors="ignore")


def route_target(scope: Scope) -> str:
    """The request target under the mount: the path without the scope's ``root_path``, still
    percent-encoded as the client sent it (``raw_path`` when the server gives it), with the
    query string."""
    root = str(scope.get("root_path", ""))
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else quote(str(scope["path"]))
    encoded_root = quote(root)
    if root and path.startswith(encoded_root) and path[len(encoded_root) :][:1] in ("/", ""):
        path = path[len(encoded_root) :] or "/"
    query = scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


@attrs.frozen
class _Ended:
    """How the copy from one side ended: ``close`` is the code and reason of the close that
    side sent (``None``: it was lost); ``fault`` the relay's reason to close it."""

    from_client: bool
    close: tuple[int, str] | None
    fault: Close | None = None


class _Connection:
    """One accepted client: its gate admission, its backend, and once the relay closes it
    for its own reasons (shutdown, reload, expiry, idleness), the code and reason."""

    def __init__(self, admission: Admission, backend: ClientConnection) -> None:
        self.admission = admission
        self.backend = backend
        loop = asyncio.get_running_loop()
        self.dropped: asyncio.Future[tuple[int, str]] = loop.create_future()
        self.finished: asyncio.Future[None] = loop.create_future()  # both sides closed
        self.last_data = time.monotonic()
        # per direction (client to backend, then back): messages, payload bytes, dropped
        self.counts = [[0, 0, 0], [0, 0, 0]]

    def received(self, *, from_client: bool, size: int, delivered: bool) -> None:
        """Count a data message; it is not idle."""
        self.last_data = time.monotonic()
        counts = self.counts[0 if from_client else 1]
        counts[0] += 1
        counts[1] += size
        counts[2] += not delivered

    def traffic(self) -> tuple[Traffic, ...]:
        route = self.admission.route
        return tuple(
            Traffic(
                api=route.api.name,
                topic=route.topic.name,
                direction=direction,
                messages=messages,
                bytes=size,
                dropped=dropped,
            )
            for direction, (messages, size, dropped) in zip(("in", "out"), self.counts, strict=True)
        )

    def drop(self, code: int, reason: str) -> None:
        if not self.dropped.done():
            self.dropped.set_result((code, reason))


class AsgiRelay(GatedFront):
    """The relay as an ASGI 3 application (``websocket``, ``http`` and ``lifespan`` scopes).

    ``AsgiRelay(apis, config=..., **options)`` takes the same :class:`RelayConfig` as
    :class:`~asyncapi_gw.relay.Relay`; what the server owns is not read (ports, TLS, the admin
    listener, the access log, the client-side ping). Raises :class:`RelayError` for an invalid
    configuration or duplicate gateway paths. A plain ``http`` request gets 426. ``reload``
    judges open connections as :meth:`Relay.reload <asyncapi_gw.relay.Relay.reload>` does;
    call it on the server's event loop.
    """

    def __init__(
        self,
        apis: Iterable[StreamingAPI],
        *,
        config: RelayConfig | None = None,
        **options: Any,
    ) -> None:
        super().__init__(apis, config=config, **options)
        self._open: set[_Connection] = set()

    def _live_traffic(self) -> Iterable[Traffic]:
        for connection in self._open:
            yield from connection.traffic()

    def _rejudge(self) -> list[Keep | Drop]:
        verdicts: list[Keep | Drop] = []
        for connection in list(self._open):
            verdict = self._gate.rejudge(connection.admission, compressed=False)
            if isinstance(verdict, Drop):
                connection.drop(verdict.code, verdict.reason)
            verdicts.append(verdict)
        return verdicts

    async def aclose(self) -> None:
        """Refuse new upgrades (503) and close every relayed connection with 1001; waits up to
        ``drain_timeout`` for them to end. Run at the ASGI lifespan's shutdown; an app that
        mounts the relay calls it from its own lifespan."""
        self._gate.close()
        open_now = list(self._open)
        for connection in open_now:
            connection.drop(CloseCode.GOING_AWAY, "relay shutting down")
        if open_now:
            finished = [c.finished for c in open_now]
            await asyncio.wait(finished, timeout=self.config.drain_timeout)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "http":
            await self._http(send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    # -- lifespan and plain HTTP ---------------------------------------------------------------

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    @staticmethod
    async def _http(send: Send) -> None:
        """A request that is no upgrade: 426, as the listener answers it."""
        body = b"426 Upgrade Required: only WebSocket upgrades are served here\n"
        await send(
            {
                "type": "http.response.start",
                "status": 426,
                "headers": [
                    _PLAIN_TEXT,
                    (b"content-length", str(len(body)).encode()),
                    (b"upgrade", b"websocket"),
                    (b"connection", b"Upgrade"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    # -- the WebSocket -------------------------------------------------------------------------

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return  # the client left before the server handed the connection over
        gate = self._gate
        client = scope.get("client")
        headers = _request_headers(scope)
        admission = gate.admit(
            route_target(scope), headers, peer=str(client[0]) if client else "local"
        )
        if isinstance(admission, Refusal):
            await _refuse(scope, send, admission)
            return
        code: int | None = None
        traffic: tuple[Traffic, ...] = ()
        try:
            backend = await self._dial(admission, scope, headers)
            if isinstance(backend, Refusal):
                await _refuse(scope, send, backend)
                return
            refusal = gate.accept(admission, compressed=False)
            if refusal is not None:  # a reload came while the backend was dialled
                await backend.close(CloseCode.GOING_AWAY, "relay refused the client")
                await _refuse(scope, send, refusal)
                return
            try:
                await send({"type": "websocket.accept", "subprotocol": backend.subprotocol})
            except OSError:  # the client left while the backend was dialled
                await backend.close(CloseCode.GOING_AWAY, "client went away")
                return
            connection = _Connection(admission, backend)
            self._open.add(connection)
            try:
                code = await self._relay(connection, receive, send)
            finally:
                self._open.discard(connection)
                traffic = connection.traffic()
                connection.finished.set_result(None)
                backend.transport.abort()  # closed by now, unless the server cancelled the app
        finally:
            gate.release(admission, code, traffic)

    async def _dial(
        self, admission: Admission, scope: Scope, headers: list[tuple[str, str]]
    ) -> ClientConnection | Refusal:
        """The backend's connection, its handshake complete; else a 502 or 504."""
        config = self.config
        try:
            return await connect(
                admission.backend_url,
                subprotocols=[Subprotocol(p) for p in admission.subprotocols] or None,
                additional_headers=_backend_headers(admission, scope, headers, config),
                compression="deflate" if admission.offer_compression else None,
                open_timeout=config.open_timeout,
                max_size=config.max_message_size,
                ping_interval=config.ping_interval,
                ping_timeout=config.ping_timeout,
                close_timeout=config.close_timeout,
                user_agent_header=None,
            )
        except TimeoutError:
            return self._gate.refuse(504, "the backend did not complete its handshake in time")
        except InvalidStatus as exc:
            answer = exc.response
            why = f"backend refused the upgrade: {answer.status_code} {answer.reason_phrase}"
            return self._gate.refuse(502, why)
        except (OSError, InvalidHandshake) as exc:
            return self._gate.refuse(502, f"cannot reach the backend: {exc}")

    async def _relay(self, connection: _Connection, receive: Receive, send: Send) -> int:
        """Copy both ways until a side ends, then close the other as the listener does.
        Returns the close code of the client's connection."""
        backend, gate, admission = connection.backend, self._gate, connection.admission
        client_copy = asyncio.ensure_future(self._from_client(connection, receive, send))
        backend_copy = asyncio.ensure_future(self._from_backend(connection, send))
        waits: set[asyncio.Future[Any]] = {client_copy, backend_copy, connection.dropped}
        try:
            done: set[asyncio.Future[Any]] = set()
            while not done:
                timeout = gate.deadline(admission, connection.last_data, time.monotonic())
                done, _ = await asyncio.wait(waits, timeout=timeout, return_when="FIRST_COMPLETED")
                if not done:  # a deadline: its drop is among the waits, the next wait returns
                    ending = gate.overdue(admission, connection.last_data, time.monotonic())
                    if ending is not None:
                        connection.drop(*ending)
        finally:
            for task in (client_copy, backend_copy):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if connection.dropped.done():
            code, reason = connection.dropped.result()
            await asyncio.gather(_close_client(send, code, reason), backend.close(*RELAY_CLOSING))
            return code
        connection.dropped.cancel()
        ended: _Ended = (client_copy if client_copy in done else backend_copy).result()
        if ended.fault is not None:
            to_client, to_backend = ended.fault.closes(from_client=ended.from_client)
            await asyncio.gather(_close_client(send, *to_client), backend.close(*to_backend))
            return to_client[0]
        if ended.from_client:
            if ended.close is None or ended.close[0] in (
                CloseCode.ABNORMAL_CLOSURE,
                CloseCode.TLS_HANDSHAKE,
            ):
                await backend.close(CloseCode.GOING_AWAY, "client went away")
                return CloseCode.ABNORMAL_CLOSURE
            code, reason = ended.close
            if is_sendable(code):
                await backend.close(code, reason)
            else:  # 1005: a close frame without a code
                await backend.close()
            return code
        if ended.close is None:
            await _close_client(send, CloseCode.BAD_GATEWAY, "backend connection lost")
            return CloseCode.BAD_GATEWAY
        code, reason = ended.close
        if not is_sendable(code):
            code, reason = CloseCode.NORMAL_CLOSURE, ""
        await _close_client(send, code, reason)
        return code

    async def _from_client(self, connection: _Connection, receive: Receive, send: Send) -> _Ended:
        gate, admission, backend = self._gate, connection.admission, connection.backend
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.disconnect":
                code = message.get("code", CloseCode.NO_STATUS_RCVD)
                return _Ended(True, (int(code), str(message.get("reason") or "")))
            if kind != "websocket.receive":
                continue
            text = message.get("text")
            data: str | bytes = text if text is not None else message.get("bytes") or b""
            payload = data.encode() if isinstance(data, str) else data
            verdict = gate.verdict(
                admission, from_client=True, text=text is not None, payload=payload
            )
            connection.received(
                from_client=True, size=len(payload), delivered=type(verdict) is Deliver
            )
            if type(verdict) is Deliver:
                try:
                    await backend.send(data)
                except ConnectionClosed as exc:
                    return _backend_closed(exc)
            elif isinstance(verdict, Discard) and verdict.reply is not None:
                try:
                    await send({"type": "websocket.send", "text": verdict.reply})
                except OSError:  # the client is gone: its disconnect comes next
                    continue
            elif isinstance(verdict, Close):
                return _Ended(True, None, verdict)

    async def _from_backend(self, connection: _Connection, send: Send) -> _Ended:
        gate, admission, backend = self._gate, connection.admission, connection.backend
        try:
            async for data in backend:
                text = isinstance(data, str)
                payload = data.encode() if isinstance(data, str) else data
                verdict = gate.verdict(admission, from_client=False, text=text, payload=payload)
                delivered = type(verdict) is Deliver
                connection.received(from_client=False, size=len(payload), delivered=delivered)
                if type(verdict) is Deliver:
                    try:
                        await send({"type": "websocket.send", "text" if text else "bytes": data})
                    except OSError:  # the client is gone: its disconnect ends the relay
                        return _Ended(True, None)
                elif isinstance(verdict, Close):
                    return _Ended(False, None, verdict)
        except ConnectionClosed as exc:
            return _backend_closed(exc)
        frame = backend.protocol.close_rcvd  # the backend closed cleanly
        return _Ended(False, None if frame is None else (frame.code, frame.reason))


def _request_headers(scope: Scope) -> list[tuple[str, str]]:
    """The upgrade request's headers; the offered subprotocols from the scope's
    ``subprotocols`` when its headers lack them (uvicorn's wsproto server removes the
    handshake's own headers)."""
    headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in scope["headers"]]
    offered = scope.get("subprotocols")
    if offered and all(name.lower() != "sec-websocket-protocol" for name, _ in headers):
        headers.append(("Sec-WebSocket-Protocol", ", ".join(offered)))
    return headers


def _backend_closed(exc: ConnectionClosed) -> _Ended:
    fault = protocol_fault(exc)
    if fault is not None:
        return _Ended(False, None, fault)
    sent, rcvd = exc.sent, exc.rcvd
    if rcvd is None and sent is not None and sent.code == CloseCode.INTERNAL_ERROR:
        return _Ended(False, (sent.code, sent.reason))  # no pong in time: 1011 to the client
    return _Ended(False, None if rcvd is None else (rcvd.code, rcvd.reason))


def _backend_headers(
    admission: Admission, scope: Scope, headers: list[tuple[str, str]], config: RelayConfig
) -> list[tuple[str, str]]:
    """What the backend request carries besides the handshake, as the listener sends it."""
    return forwarded_headers(
        headers,
        forward_headers=config.forward_headers,
        relay_headers=admission.backend_headers,
        client_host=admission.peer,
        secure_client=scope.get("scheme") == "wss",
        host=next((value for name, value in headers if name.lower() == "host"), None),
    )


async def _refuse(scope: Scope, send: Send, refusal: Refusal) -> None:
    """Answer a refused upgrade with its HTTP status (the Denial Response extension), or,
    on a server without the extension, accept and close with ``4000 + status``."""
    if DENIAL_EXTENSION in (scope.get("extensions") or {}):
        body = refusal.body.encode()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": refusal.status,
                "headers": [
                    _PLAIN_TEXT,
                    (b"content-length", str(len(body)).encode()),
                    *((n.encode("latin-1"), v.encode("latin-1")) for n, v in refusal.headers),
                ],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})
        return
    await send({"type": "websocket.accept"})
    code = REFUSAL_CLOSE_BASE + refusal.status
    await send({"type": "websocket.close", "code": code, "reason": _reason(refusal.reason)})


async def _close_client(send: Send, code: int, reason: str) -> None:
    with contextlib.suppress(OSError, RuntimeError):  # the client may be gone already
        await send({"type": "websocket.close", "code": code, "reason": _reason(reason)})
