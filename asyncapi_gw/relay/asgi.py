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
1001, a lost backend the client with 1014; an expired token 4001, an idle connection 1001.

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

from asyncapi_gw.errors import RelayError
from asyncapi_gw.model import StreamingAPI
from asyncapi_gw.relay.asgi_gate import Admitted, AsgiGate, Refused, Verdict
from asyncapi_gw.relay.config import RelayConfig
from asyncapi_gw.relay.metrics import Metrics, RelayStats
from asyncapi_gw.relay.stream import Close

__all__ = ["AsgiRelay"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DENIAL_EXTENSION = "websocket.http.response"
REFUSAL_CLOSE_BASE = 4000  # without the denial extension a refusal closes with 4000 + status
# Close codes a close frame may carry (RFC 6455 section 7.4); others are not sent on.
_SENDABLE = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})
# Codes websockets fails a connection with when the peer breaks the protocol.
_PROTOCOL_ERRORS = frozenset({1002, 1007, 1009})


def _sendable(code: int | None) -> bool:
    return code is not None and (code in _SENDABLE or 3000 <= code <= 4999)


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
    """How the copy from one side ended: ``close`` is the frame that side sent or the fault
    the relay found (``None``: the side was lost); ``fault`` the relay closes it for cause."""

    from_client: bool
    close: tuple[int, str] | None
    fault: Close | None = None


class _Connection:
    """One accepted client and its backend."""

    def __init__(self, admitted: Admitted, backend: ClientConnection, peer: str) -> None:
        self.admitted = admitted
        self.backend = backend
        self.peer = peer
        self.dropped: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
        self.last_data = time.monotonic()

    def drop(self, code: int, reason: str) -> None:
        if not self.dropped.done():
            self.dropped.set_result((code, reason))


class AsgiRelay:
    """The relay as an ASGI 3 application (``websocket``, ``http`` and ``lifespan`` scopes).

    ``AsgiRelay(apis, config=..., **options)`` takes the same :class:`RelayConfig` as
    :class:`~asyncapi_gw.relay.Relay`; the listener options (ports, TLS, admin, access log,
    ping interval) are the server's business and are not read. Raises :class:`RelayError` for
    an invalid configuration or duplicate gateway paths. A plain ``http`` request gets 426.
    """

    def __init__(
        self,
        apis: Iterable[StreamingAPI],
        *,
        config: RelayConfig | None = None,
        **options: Any,
    ) -> None:
        try:
            self.config = attrs.evolve(config or RelayConfig(), **options)
        except (TypeError, ValueError) as exc:
            raise RelayError(f"invalid relay configuration: {exc}") from None
        self._gate = AsgiGate(apis, self.config)
        self._metrics = Metrics()
        self._open: set[_Connection] = set()
        self._pending = 0
        self._closing = False

    @property
    def stats(self) -> RelayStats:
        return self._metrics.stats(())

    def metrics_text(self) -> str:
        """The Prometheus text of the relay's counters (as the listener's ``/metrics``)."""
        return self._metrics.render(())

    async def aclose(self) -> None:
        """Refuse new upgrades (503) and close every relayed connection with 1001; waits up to
        ``drain_timeout`` for them to end."""
        self._closing = True
        for connection in list(self._open):
            connection.drop(1001, "relay shutting down")
        deadline = time.monotonic() + self.config.drain_timeout
        while self._open and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

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

    async def _http(self, send: Send) -> None:
        """A request that is no upgrade: 426, as the listener answers it."""
        body = b"426 Upgrade Required: only WebSocket upgrades are served here\n"
        await send(
            {
                "type": "http.response.start",
                "status": 426,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
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
            return  # the client left before the server handed over the connection
        client = scope.get("client")
        peer = str(client[0]) if client else "local"
        headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in scope["headers"]]
        decision = self._gate.admit(route_target(scope), headers, peer)
        if isinstance(decision, Refused):
            await self._refuse(scope, send, decision)
            return
        limit = self.config.max_connections
        if self._closing:
            await self._refuse(scope, send, Refused(503, "the relay is shutting down"))
            return
        if limit is not None and len(self._open) + self._pending >= limit:
            await self._refuse(scope, send, Refused(503, "too many connections"))
            return
        self._pending += 1
        try:
            dialled = await self._dial(decision, scope, headers, peer)
        finally:
            self._pending -= 1
        if isinstance(dialled, Refused):
            await self._refuse(scope, send, dialled)
            return
        connection = _Connection(decision, dialled, peer)
        try:
            await send({"type": "websocket.accept", "subprotocol": dialled.subprotocol})
        except (OSError, RuntimeError):  # the client left while the backend was dialled
            await dialled.close(1001, "client went away")
            return
        self._open.add(connection)
        self._metrics.opened(decision.api_name)
        code = 1006
        try:
            code = await self._relay(connection, receive, send)
        finally:
            self._open.discard(connection)
            self._gate.release(decision)
            self._metrics.closed(code, ())

    async def _refuse(self, scope: Scope, send: Send, refused: Refused) -> None:
        self._metrics.rejected(refused.status)
        if DENIAL_EXTENSION in (scope.get("extensions") or {}):
            body = (refused.reason.rstrip("\n") + "\n").encode()
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": refused.status,
                    "headers": [
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"content-length", str(len(body)).encode()),
                        *((n.encode("latin-1"), v.encode("latin-1")) for n, v in refused.headers),
                    ],
                }
            )
            await send({"type": "websocket.http.response.body", "body": body})
            return
        await send({"type": "websocket.accept"})
        await send(
            {
                "type": "websocket.close",
                "code": REFUSAL_CLOSE_BASE + refused.status,
                "reason": _reason(refused.reason),
            }
        )

    async def _dial(
        self, admitted: Admitted, scope: Scope, headers: list[tuple[str, str]], peer: str
    ) -> ClientConnection | Refused:
        config = self.config
        offered = [Subprotocol(p) for p in scope.get("subprotocols") or ()]
        forwarded = self._gate.backend_headers(admitted, headers)
        forwarded.append(("X-Forwarded-For", peer))
        forwarded.append(("X-Forwarded-Proto", "wss" if scope.get("scheme") == "wss" else "ws"))
        host = next((v for n, v in headers if n.lower() == "host"), None)
        if host is not None:
            forwarded.append(("X-Forwarded-Host", host))
        try:
            return await connect(
                admitted.backend_url,
                subprotocols=offered or None,
                additional_headers=forwarded,
                compression="deflate" if config.compression else None,
                open_timeout=config.open_timeout,
                max_size=config.max_message_size,
                ping_interval=config.ping_interval,
                ping_timeout=config.ping_timeout,
                close_timeout=config.close_timeout,
                user_agent_header=None,
            )
        except TimeoutError:
            return Refused(504, "the backend did not complete its handshake in time")
        except InvalidStatus as exc:
            response = exc.response
            return Refused(
                502, f"backend refused the upgrade: {response.status_code} {response.reason_phrase}"
            )
        except (OSError, InvalidHandshake) as exc:
            return Refused(502, f"cannot reach the backend: {exc}")

    async def _relay(self, connection: _Connection, receive: Receive, send: Send) -> int:
        """Copy both ways until a side ends; close the other as the listener does. Returns
        the close code the client got or sent."""
        backend = connection.backend
        client_copy = asyncio.ensure_future(self._from_client(connection, receive, send))
        backend_copy = asyncio.ensure_future(self._from_backend(connection, send))
        waits: set[asyncio.Future[Any]] = {client_copy, backend_copy, connection.dropped}
        try:
            while True:
                done, _ = await asyncio.wait(
                    waits, timeout=self._next_timer(connection), return_when="FIRST_COMPLETED"
                )
                if done:
                    break
                self._timer_fired(connection)
        finally:
            for task in (client_copy, backend_copy):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if connection.dropped.done():
            code, reason = connection.dropped.result()
            await asyncio.gather(
                self._close_client(send, code, reason), backend.close(code, reason)
            )
            return code
        ended: _Ended = (client_copy if client_copy in done else backend_copy).result()
        connection.dropped.cancel()
        if ended.fault is not None:
            to_client, to_backend = ended.fault.closes(from_client=ended.from_client)
            await asyncio.gather(self._close_client(send, *to_client), backend.close(*to_backend))
            return to_client[0]
        if ended.from_client:  # the client closed or was lost
            if ended.close is None or ended.close[0] in (1006, 1015):
                await backend.close(1001, "client went away")
                return 1006
            code, reason = ended.close
            if _sendable(code):
                await backend.close(code, reason)
            else:
                await backend.close()
            return code
        if ended.close is None:  # the backend was lost
            await self._close_client(send, 1014, "backend connection lost")
            return 1014
        code, reason = ended.close
        if not _sendable(code):
            code, reason = 1000, ""
        await self._close_client(send, code, reason)
        return code

    def _next_timer(self, connection: _Connection) -> float | None:
        """Seconds until the token expires or the connection is idle, whichever comes first."""
        delays = []
        expires_at = connection.admitted.expires_at
        if expires_at is not None:
            delays.append(expires_at - time.time())
        idle = self.config.idle_timeout
        if idle is not None:
            delays.append(connection.last_data + idle - time.monotonic())
        return max(0.0, min(delays)) if delays else None

    def _timer_fired(self, connection: _Connection) -> None:
        expires_at = connection.admitted.expires_at
        if expires_at is not None and time.time() >= expires_at:
            connection.drop(4001, "token expired")
        idle = self.config.idle_timeout
        if idle is not None and time.monotonic() - connection.last_data >= idle:
            connection.drop(1001, "idle timeout")

    @staticmethod
    async def _close_client(send: Send, code: int, reason: str) -> None:
        with contextlib.suppress(OSError, RuntimeError):  # the client may be gone already
            await send({"type": "websocket.close", "code": code, "reason": _reason(reason)})

    async def _from_client(self, connection: _Connection, receive: Receive, send: Send) -> _Ended:
        backend = connection.backend
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                code = message.get("code", 1005)
                return _Ended(True, (int(code), str(message.get("reason") or "")))
            if message["type"] != "websocket.receive":
                continue
            text = message.get("text")
            data: str | bytes = text if text is not None else message.get("bytes") or b""
            connection.last_data = time.monotonic()
            verdict = self._gate.judge(connection.admitted, data, from_client=True)
            if verdict is Verdict.FORWARD:
                try:
                    await backend.send(data)
                except ConnectionClosed as exc:
                    return self._backend_closed(exc)
            elif isinstance(verdict, Close):
                return _Ended(True, None, verdict)
            elif isinstance(verdict, str):  # a reply to the client (the throttling notice)
                await send({"type": "websocket.send", "text": verdict})

    async def _from_backend(self, connection: _Connection, send: Send) -> _Ended:
        backend = connection.backend
        try:
            async for data in backend:
                connection.last_data = time.monotonic()
                verdict = self._gate.judge(connection.admitted, data, from_client=False)
                if verdict is Verdict.FORWARD:
                    key = "text" if isinstance(data, str) else "bytes"
                    try:
                        await send({"type": "websocket.send", key: data})
                    except (OSError, RuntimeError):
                        return _Ended(True, None)
                elif isinstance(verdict, Close):
                    return _Ended(False, None, verdict)
        except ConnectionClosed as exc:
            return self._backend_closed(exc)
        frame = backend.protocol.close_rcvd  # the backend closed cleanly
        return _Ended(False, None if frame is None else (frame.code, frame.reason))

    @staticmethod
    def _backend_closed(exc: ConnectionClosed) -> _Ended:
        sent, rcvd = exc.sent, exc.rcvd
        if rcvd is None and sent is not None and sent.code in _PROTOCOL_ERRORS:
            return _Ended(False, None, Close(sent.code, sent.reason))  # websockets failed it
        return _Ended(False, None if rcvd is None else (rcvd.code, rcvd.reason))
