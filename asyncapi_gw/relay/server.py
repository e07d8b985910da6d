"""The relay's asyncio shell: listeners, both handshakes, the byte splice, shutdown and reload.

Each client connection is an :class:`asyncio.Protocol`. Its HTTP request is parsed with
websockets' sans-I/O pieces (:mod:`asyncapi_gw.relay.handshake`); routing, authentication and
limits are decided before anything is upgraded (plain-text 404/401/403/503); the backend is
dialled and its handshake completed before the client gets its 101 (502 when the backend fails,
504 when it hangs), so the client receives the backend's subprotocol and extensions. From then
on raw bytes flow between two protocols through a :class:`~asyncapi_gw.relay.stream.Pump` per
direction, which decides what to forward, answer or close. Backpressure is transport-level: a
side whose write buffer passes the limit pauses reading on the other side.

Per-connection failures are never raised: they end as a close code (or an HTTP status) and an
access-log line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
import sys
import time
from collections.abc import Iterable
from typing import IO, Any, cast

import attrs

from asyncapi_gw.errors import RelayError
from asyncapi_gw.model import StreamingAPI
from asyncapi_gw.relay import frames
from asyncapi_gw.relay.admin import AdminConnection
from asyncapi_gw.relay.auth import AuthConfig
from asyncapi_gw.relay.closecode import CloseCode
from asyncapi_gw.relay.config import RelayConfig
from asyncapi_gw.relay.deflate import Agreement
from asyncapi_gw.relay.embed import WebsocketsAdapter
from asyncapi_gw.relay.gate import Admission, Gate, Refusal
from asyncapi_gw.relay.handshake import (
    BackendHandshake,
    HandshakeError,
    HttpRequest,
    HttpResponse,
    RequestParser,
    ResponseParser,
    check_upgrade,
    is_upgrade,
    origin_form,
    plain_response,
    switching_protocols,
)
from asyncapi_gw.relay.metrics import RelayStats, Traffic
from asyncapi_gw.relay.principal import auth_label
from asyncapi_gw.relay.reload import Drop, Keep, ReloadReport
from asyncapi_gw.relay.stream import Close, CloseSeen, Forward, Pump, Reply

__all__ = ["Relay"]

log = logging.getLogger("asyncapi_gw.relay")

_TLS_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
# Control frames the relay originates: an empty ping, unmasked to the client, masked to the backend.
_PING_TO_CLIENT = b"\x89\x00"


def _ping_to_backend() -> bytes:
    return b"\x89\x80" + os.urandom(4)


def _server_tls(config: RelayConfig) -> ssl.SSLContext | None:
    if config.tls_cert is None or config.tls_key is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(_TLS_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise RelayError(f"cannot load the TLS certificate and key: {exc}") from None
    return context


class Relay:
    """A WebSocket gateway serving AsyncAPI-described APIs.

    ``async with Relay(apis, ws_port=0) as relay:`` binds the listeners and serves until the
    block exits, which drains: every client gets close 1001, then stragglers are aborted after
    ``drain_timeout``. Keyword options are :class:`RelayConfig` fields and override ``config``.
    Raises :class:`RelayError` for an invalid configuration, duplicate gateway paths or a port
    that cannot be bound.
    """

    def __init__(
        self,
        apis: Iterable[StreamingAPI],
        *,
        config: RelayConfig | None = None,
        **options: Any,
    ) -> None:
        try:
            config = attrs.evolve(config or RelayConfig(), **options)
        except (TypeError, ValueError) as exc:
            raise RelayError(f"invalid relay configuration: {exc}") from None
        self._gate = gate = Gate(apis, config)
        for warning in gate.warnings():
            log.warning("%s", warning)
        self._connections: set[_Connection] = set()  # relayed (past the 101)
        self._live: set[_Connection] = set()  # every client socket, handshakes included
        self._servers: dict[str, asyncio.Server] = {}  # ws, wss, admin
        self._admin_clients: set[asyncio.Transport] = set()
        self._tls: ssl.SSLContext | None = None  # what new wss handshakes use (reload_tls)
        self._access_log: IO[str] | None = None
        self._closing = False
        self._adapter = adapter = WebsocketsAdapter(gate)
        self.process_request = adapter.process_request
        """For ``websockets.asyncio.server.serve(process_request=...)``; see :mod:`.embed`."""
        self.process_response = adapter.process_response
        """For ``websockets.asyncio.server.serve(process_response=...)``."""
        self.handler = adapter.handler
        """The connection handler for ``websockets.asyncio.server.serve``."""

    @property
    def config(self) -> RelayConfig:
        """The settings; a reload with new credentials changes its ``auth``."""
        return self._gate.config

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the listeners. Raises :class:`RelayError` when a port cannot be bound."""
        if self._servers:
            raise RelayError("the relay is already started")
        loop = asyncio.get_running_loop()
        config = self.config
        tls = self._tls = _server_tls(config)
        if tls is not None:
            tls.sni_callback = self._pick_tls
        wanted: list[tuple[str, int | None, ssl.SSLContext | None]] = [
            ("ws", config.ws_bind_port, None)
        ]
        if tls is not None:
            wanted.append(("wss", config.wss_bind_port, tls))
        if config.access_log == "-":
            self._access_log = sys.stderr
        elif config.access_log is not None:
            try:
                self._access_log = open(config.access_log, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
            except OSError as exc:
                raise RelayError(
                    f"cannot open the access log {config.access_log}: {exc.strerror or exc}"
                ) from None
        scheme = "ws"
        try:
            for scheme, port, context in wanted:
                if port is None:
                    continue
                self._servers[scheme] = await loop.create_server(
                    lambda secure=context is not None: _Connection(self, secure=secure),
                    config.host,
                    port,
                    ssl=context,
                    backlog=1024,
                    reuse_port=config.reuse_port or None,
                )
            if self._servers and config.admin_bind_port is not None:
                scheme = "admin"
                self._servers[scheme] = await loop.create_server(
                    lambda: AdminConnection(self, config.open_timeout, self._admin_clients),
                    config.admin_host,
                    config.admin_bind_port,
                )
        except OSError as exc:
            await self._stop_listening()
            self._servers.clear()
            self._close_access_log()
            host = config.admin_host if scheme == "admin" else config.host
            raise RelayError(f"cannot listen on {host} ({scheme}): {exc.strerror or exc}") from None
        if not self._servers:
            self._close_access_log()
            raise RelayError("every listener is turned off")

    async def close(self) -> None:
        """Stop listening, send close 1001 to every client (503 to those still in their
        handshake), wait up to ``drain_timeout``, then abort whatever is left."""
        if self._closing:
            return
        self._closing = True
        self._gate.close()
        for scheme, server in self._servers.items():
            if scheme != "admin":  # it answers /health with 503 while the relay drains
                server.close()
        live = list(self._live)
        for connection in live:
            connection.shut(CloseCode.GOING_AWAY, "relay shutting down")
        pending = [c.done for c in live if not c.done.done()]
        if pending:
            await asyncio.wait(pending, timeout=self.config.drain_timeout)
        for connection in list(self._live):
            connection.abort("drain timeout")
        await self._stop_listening()  # on Python 3.12+ this also waits for the connections
        self._close_access_log()

    async def __aenter__(self) -> Relay:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _stop_listening(self) -> None:
        for server in self._servers.values():
            server.close()
        for transport in list(self._admin_clients):
            transport.abort()
        for server in self._servers.values():
            await server.wait_closed()

    def _close_access_log(self) -> None:
        if self._access_log is not None and self._access_log is not sys.stderr:
            self._access_log.close()
        self._access_log = None

    # -- introspection -------------------------------------------------------------------------

    @property
    def addresses(self) -> dict[str, tuple[str, int]]:
        """The bound ``(host, port)`` per listener: ``"ws"``, ``"wss"`` and ``"admin"``."""
        out = {}
        for scheme, server in self._servers.items():
            host, port = server.sockets[0].getsockname()[:2]
            out[scheme] = (str(host), int(port))
        return out

    @property
    def ports(self) -> dict[str, int]:
        """The bound port per listener (``relay.ports["admin"]`` is the admin listener's)."""
        return {scheme: port for scheme, (_, port) in self.addresses.items()}

    @property
    def apis(self) -> tuple[StreamingAPI, ...]:
        return self._gate.apis

    @property
    def stats(self) -> RelayStats:
        return self._gate.metrics.stats(self._live_traffic())

    @property
    def draining(self) -> bool:
        """The relay is shutting down (the admin listener's ``/health`` answers 503)."""
        return self._closing

    def metrics_text(self) -> str:
        """The Prometheus text served at the admin listener's ``/metrics``."""
        return self._gate.metrics.render(self._live_traffic())

    def _live_traffic(self) -> Iterable[Traffic]:
        for connection in self._connections:
            yield from connection.traffic()

    # -- reload --------------------------------------------------------------------------------

    def reload(
        self, apis: Iterable[StreamingAPI] | None = None, *, auth: AuthConfig | None = None
    ) -> ReloadReport:
        """Serve ``apis`` and authenticate with ``auth`` from now on (``None``: unchanged).

        Every open connection is judged again as :mod:`asyncapi_gw.relay.reload` states: it
        stays while its own topic's route, backend URL and auth hold (a changed direction,
        quota or payload schema applies from its next message); a removed topic or a changed
        backend closes it with 1012, a credential no longer accepted with 4001. Raises
        :class:`RelayError`, and changes nothing, when the new APIs or credentials are invalid.
        Call it on the relay's event loop.
        """
        gate = self._gate
        gate.reload(apis, auth=auth)
        for warning in gate.warnings():
            log.warning("%s", warning)
        verdicts = self._adapter.reload()
        for connection in list(self._connections):
            admission = connection.admission
            if connection.state != _OPEN or admission is None:
                continue
            verdict = gate.rejudge(admission, compressed=connection.compressed)
            connection.reloaded(verdict)
            verdicts.append(verdict)
        return ReloadReport.tally(verdicts)

    def reload_tls(self) -> None:
        """Read the TLS certificate and key files again: wss handshakes from now on present
        them; open connections keep the session they have. Raises :class:`RelayError`, and
        the previous certificate stays, when they cannot be loaded. Without a wss listener
        nothing happens."""
        if self._tls is not None:
            self._tls = _server_tls(self.config)

    def _pick_tls(
        self, ssl_object: ssl.SSLObject, _server_name: str | None, context: ssl.SSLContext
    ) -> None:
        """The wss listener's ``sni_callback`` (called for every ClientHello, with SNI or
        not): hand the handshake the latest certificate."""
        if self._tls is not None and self._tls is not context:
            ssl_object.context = self._tls

    def _write_access_log(self, entry: dict[str, Any]) -> None:
        if self._access_log is None:
            return
        try:
            self._access_log.write(json.dumps(entry, separators=(",", ":")) + "\n")
        except (OSError, ValueError) as exc:
            log.warning("cannot write the access log: %s", exc)


# -- the connection ----------------------------------------------------------------------------

_HANDSHAKE, _DIALLING, _OPEN, _CLOSING, _CLOSED = range(5)
_ADMIN_PATHS = ("/health", "/metrics")  # served by the admin listener; 404 on client ones


class _BackendProtocol(asyncio.Protocol):
    """The backend's socket; before the upgrade it reads the HTTP response."""

    __slots__ = ("connection",)

    def __init__(self, connection: _Connection) -> None:
        self.connection = connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.connection.backend_made(cast(asyncio.Transport, transport))

    def data_received(self, data: bytes) -> None:
        connection = self.connection
        if connection.state == _OPEN:  # the hot path, as in backend_data (nothing is ignored)
            pump = connection._pumps[_BACKEND]
            if pump.forward_whole(data):
                connection.client.write(data)
            else:
                connection._execute(pump.receive(data), _BACKEND)
        else:
            connection.backend_data(data)

    def eof_received(self) -> bool:
        self.connection._lost(_BACKEND)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.connection._lost(_BACKEND)

    def pause_writing(self) -> None:
        self.connection.pause_reading(_CLIENT)

    def resume_writing(self) -> None:
        self.connection.resume_reading(_CLIENT)


_CLIENT, _BACKEND = 0, 1


class _Connection(asyncio.Protocol):
    """One client (this is its socket's protocol), its backend and the splice between them.

    Closing: a close frame from one side is forwarded by its pump (``CloseSeen``); once both
    sides have sent one, both sockets close. When the relay closes (a pump's ``Close``, drain,
    reload, token expiry, keepalive) it writes its own close frame to each side that has not
    had one, half-closes, ignores further data and waits for the peers to hang up. A side lost
    without a close frame gets the other side a close frame (1014 to the client when the
    backend is lost, 1001 to the backend when the client is) and both sockets close. Every
    wait is bounded by ``close_timeout``, then both sockets are aborted.
    """

    __slots__ = (
        "_backend_ready",
        "_close_from",
        "_close_sent",
        "_gone",
        "_idle_since",
        "_ignore",
        "_messages_at_tick",
        "_parser",
        "_pumps",
        "_response",
        "_task",
        "_timers",
        "_transports",
        "admission",
        "backend",
        "client",
        "close_code",
        "close_reason",
        "closed_by",
        "done",
        "error",
        "loop",
        "peer",
        "refusal",
        "relay",
        "secure",
        "started",
        "state",
        "status",
    )  # thousands of these live at once

    client: asyncio.Transport
    backend: asyncio.Transport | None

    def __init__(self, relay: Relay, *, secure: bool) -> None:
        self.relay = relay
        self.loop = asyncio.get_running_loop()
        self.backend = None
        self.secure = secure
        self.state = _HANDSHAKE
        self.done: asyncio.Future[None] = self.loop.create_future()
        self.admission: Admission | None = None  # once admitted by the gate
        self.refusal: Refusal | None = None  # the gate's refusal, for the access log
        self.started = time.monotonic()
        self.status = 0  # the HTTP status the client got
        self.close_code: int | None = None
        self.close_reason = ""
        self.closed_by = ""
        self.error = ""
        self.peer = ""
        self._parser: RequestParser | None = RequestParser()  # until the request is read
        self._backend_ready: asyncio.Future[tuple[HttpResponse, bytes]] | None = None
        self._response: ResponseParser | None = None
        self._pumps: list[Pump] = []  # client's, backend's
        self._ignore = [False, False]  # drop what this side sends (only while _CLOSING)
        self._close_sent = [False, False]  # a close frame was written to this side
        self._close_from = [False, False]  # this side sent a close frame
        self._gone = [False, False]  # this side's socket is closed
        self._messages_at_tick = 0
        self._idle_since = self.started
        self._timers: list[asyncio.TimerHandle] = []
        self._task: asyncio.Task[None] | None = None
        self._transports: list[asyncio.Transport] = []  # client's, then backend's

    # -- the client socket's protocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.client = cast(asyncio.Transport, transport)
        self._transports.append(self.client)
        self.relay._live.add(self)
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) else "local"
        limit = self.relay.config.write_buffer_limit
        self.client.set_write_buffer_limits(high=limit, low=limit // 4)
        self._later(self.relay.config.open_timeout, self._open_timeout)

    def data_received(self, data: bytes) -> None:
        if self.state == _OPEN:  # the hot path, as in client_data (nothing is ignored)
            pump = self._pumps[_CLIENT]
            if pump.forward_whole(data):
                self._transports[_BACKEND].write(data)
            else:
                self._execute(pump.receive(data), _CLIENT)
        else:
            self.client_data(data)

    def eof_received(self) -> bool:
        self._lost(_CLIENT)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost(_CLIENT)

    def pause_writing(self) -> None:
        self.pause_reading(_BACKEND)

    def resume_writing(self) -> None:
        self.resume_reading(_BACKEND)

    def _later(self, delay: float, callback: Any, *args: Any) -> None:
        timers = self._timers
        if len(timers) >= 4:  # a long-lived connection schedules a timer per keepalive tick
            now = self.loop.time()
            timers[:] = [t for t in timers if t.when() > now and not t.cancelled()]
        timers.append(self.loop.call_later(delay, callback, *args))

    # -- handshake -----------------------------------------------------------------------------

    def client_data(self, data: bytes) -> None:
        if self.state in (_OPEN, _CLOSING):
            if not self._ignore[_CLIENT]:
                self._execute(self._pumps[_CLIENT].receive(data), _CLIENT)
        elif self.state == _HANDSHAKE and self._parser is not None:
            try:
                request = self._parser.feed(data)
            except HandshakeError as exc:
                self._refuse(self.relay._gate.refuse(exc.status, exc.reason))
                return
            if request is None:
                return
            early = self._parser.leftover
            self._parser = None
            self.client.pause_reading()
            self.state = _DIALLING
            self._task = self.loop.create_task(self._open(request, early))

    async def _open(self, request: HttpRequest, early: bytes) -> None:
        """Answer ``request``. Bytes the client sent after it (``early``) are never read as
        another request: an HTTP answer closes the connection (RFC 9112 section 9.6); after a
        101 they are the first of the client's frames, as websockets' server reads them."""
        gate = self.relay._gate
        try:
            refusal = await self._handshake(request, early)
        except HandshakeError as exc:
            refusal = gate.refuse(exc.status, exc.reason, exc.headers)
        except Exception as exc:  # a per-connection failure must not escape the relay
            log.exception("handshake failed")
            self.error = f"{type(exc).__name__}: {exc}"
            refusal = gate.refuse(500, "internal error")
        if refusal is not None:
            self._refuse(refusal)

    async def _handshake(self, request: HttpRequest, early: bytes) -> Refusal | None:
        relay = self.relay
        gate = relay._gate
        if not is_upgrade(request) and request.path.split("?", 1)[0] in _ADMIN_PATHS:
            raise HandshakeError(404, "not found: /health and /metrics are on the admin listener")
        problem = check_upgrade(request)
        if problem is not None:
            raise problem
        admitted = gate.admit(
            origin_form(request.path)[0], list(request.headers.raw_items()), peer=self.peer
        )
        if isinstance(admitted, Refusal):
            return admitted
        self.admission = admission = admitted
        config = gate.config
        plan = BackendHandshake.build(
            admission.backend_url,
            request,
            forward_headers=config.forward_headers,
            offer_extensions=admission.offer_compression,
            client_host=self.peer,
            secure_client=self.secure,
            relay_headers=admission.backend_headers,
        )
        try:  # bounded by the open timer (connection_made), not asyncio.wait_for: no 2nd task
            leftover, (subprotocol, agreement) = await self._dial(plan)
        except OSError as exc:
            raise HandshakeError(502, f"cannot reach the backend: {exc.strerror or exc}") from None
        refusal = gate.accept(admission, compressed=agreement is not None)
        if refusal is not None:
            return refusal
        self._accept(request, subprotocol, agreement, leftover)
        if early:
            self.client_data(early)
        expires_in = gate.expires_in(admission)
        if expires_in is not None:
            self._later(expires_in, self._token_expired)
        return None

    def _token_expired(self) -> None:
        """The token's ``exp`` (with the leeway) has passed: 4001, unless a reload put the
        connection on a topic that no longer asks for a credential."""
        if self.admission is not None and self.relay._gate.expires_in(self.admission) is not None:
            self.shut(CloseCode.REVOKED, "token expired")

    def reloaded(self, verdict: Keep | Drop) -> None:
        """Close as a reload decided, or go on under the route and principal it gave: a
        changed message policy reaches each pump, for the next message its side starts."""
        if isinstance(verdict, Drop):
            self.shut(verdict.code, verdict.reason)
            return
        if verdict.policy_changed:  # the gate moved the admission to its new route and quota
            client, backend = (pump.policy.deflate for pump in self._pumps)
            policies = self.relay._gate.policies(
                cast(Admission, self.admission), deflate=(client, backend)
            )
            for pump, policy in zip(self._pumps, policies, strict=True):
                pump.update(policy)

    @property
    def compressed(self) -> bool:
        """permessage-deflate was negotiated (false before the 101)."""
        return bool(self._pumps) and self._pumps[_CLIENT].policy.deflate is not None

    async def _dial(
        self, plan: BackendHandshake
    ) -> tuple[bytes, tuple[str | None, Agreement | None]]:
        context = ssl.create_default_context() if plan.secure else None
        self._response = ResponseParser()
        self._backend_ready = self.loop.create_future()
        transport, _ = await self.loop.create_connection(
            lambda: _BackendProtocol(self), plan.host, plan.port, ssl=context
        )
        try:
            transport.write(plan.request)
            response, leftover = await self._backend_ready
            return leftover, plan.check(response)
        except BaseException:
            transport.abort()
            raise

    def backend_made(self, transport: asyncio.Transport) -> None:
        if self.state != _DIALLING:  # the client left while the backend was dialled
            transport.abort()
            return
        self.backend = transport
        self._transports.append(transport)
        limit = self.relay.config.write_buffer_limit
        transport.set_write_buffer_limits(high=limit, low=limit // 4)

    def _backend_handshake_data(self, data: bytes, *, eof: bool = False) -> None:
        ready, parser = self._backend_ready, self._response
        if ready is None or parser is None or ready.done():
            return
        try:
            response = parser.feed(data, eof=eof)
        except HandshakeError as exc:
            ready.set_exception(exc)
            return
        if response is not None:
            self._transports[_BACKEND].pause_reading()
            ready.set_result((response, parser.leftover))

    def _accept(
        self,
        request: HttpRequest,
        subprotocol: str | None,
        agreement: Agreement | None,
        leftover: bytes,
    ) -> None:
        relay = self.relay
        gate = relay._gate
        config = gate.config
        admission = cast(Admission, self.admission)
        if agreement is not None and admission.quota is not None and config.on_throttle == "reply":
            # a throttled message is dropped: the client's next one must not refer to it
            agreement = agreement.without_client_takeover()
        deflate = (None, None) if agreement is None else (agreement.client, agreement.backend)
        self._pumps = [Pump(policy) for policy in gate.policies(admission, deflate=deflate)]
        self._cancel_timers()
        # an idle relayed connection keeps nothing of its handshakes
        self._response = self._backend_ready = self._task = None
        relay._connections.add(self)
        self.status = 101
        self.state = _OPEN
        self.client.write(
            switching_protocols(
                request,
                subprotocol=subprotocol,
                extensions=None if agreement is None else agreement.header,
            )
        )
        if config.ping_interval is not None or config.idle_timeout is not None:
            self._schedule_tick()
        for transport in self._transports:
            transport.resume_reading()
        if leftover:
            self.backend_data(leftover)

    def _refuse(self, refusal: Refusal) -> None:
        if self.state not in (_HANDSHAKE, _DIALLING):
            return
        self.status = refusal.status
        self.error = self.error or refusal.reason
        self.refusal = refusal
        if not self.client.is_closing():
            text = refusal.reason.rstrip("\n") + "\n"
            self.client.write(plain_response(refusal.status, text, headers=refusal.headers))
        self._finish_http()

    def _finish_http(self) -> None:
        self.state = _CLOSED
        if self.backend is not None:
            self.backend.abort()
        self.client.close()
        self._finalize()

    def _open_timeout(self) -> None:
        """``open_timeout`` after the client connected: no request yet (dropped without an
        answer) or the backend still dialled (504)."""
        if self.state == _HANDSHAKE:
            self.error = "no handshake request in time"
            self.state = _CLOSED
            self.client.abort()
            self._finalize()
        elif self.state == _DIALLING:
            if self._task is not None:  # it may not have started: it must not be relied on
                self._task.cancel()
            self._refuse(
                self.relay._gate.refuse(504, "the backend did not complete its handshake in time")
            )

    # -- the splice ----------------------------------------------------------------------------

    def backend_data(self, data: bytes) -> None:
        if self.state in (_OPEN, _CLOSING):
            if not self._ignore[_BACKEND]:
                self._execute(self._pumps[_BACKEND].receive(data), _BACKEND)
        elif self.state == _DIALLING:
            self._backend_handshake_data(data)

    def _transport(self, side: int) -> asyncio.Transport:
        return self._transports[side]

    def _execute(self, actions: list[Any], side: int) -> None:
        transports = self._transports
        if len(actions) == 1 and type(actions[0]) is Forward:  # what nearly every chunk gives
            transports[1 - side].write(actions[0].data)
            return
        for action in actions:
            kind = type(action)
            if kind is Forward:
                transports[1 - side].write(action.data)
            elif kind is Reply:
                transports[side].write(action.data)
            elif kind is CloseSeen:
                self._close_frame_passed(action.code, action.reason, side)
            elif kind is Close:
                to_client, to_backend = action.closes(from_client=side == _CLIENT)
                self.shut(*to_client, backend=to_backend)

    def _close_frame_passed(self, code: int | None, reason: str, side: int) -> None:
        self._close_from[side] = True
        self._close_sent[1 - side] = True
        if self.close_code is None:
            self.close_code = CloseCode.NO_STATUS_RCVD if code is None else code
            self.close_reason = reason
            self.closed_by = "client" if side == _CLIENT else "backend"
        if all(self._close_from):
            self._end()
        elif self.state == _OPEN:
            self.state = _CLOSING
            self._later(self.relay.config.close_timeout, self.abort, "close timeout")

    def shut(
        self,
        code: int,
        reason: str,
        *,
        backend: tuple[int, str] = (CloseCode.GOING_AWAY, "relay closing"),
    ) -> None:
        """The relay closes: ``code`` to the client, ``backend`` to the backend, then waits."""
        if self.state in (_HANDSHAKE, _DIALLING):
            if self._task is not None:
                self._task.cancel()
            self._refuse(self.relay._gate.refuse(503, reason))
            return
        if self.state == _CLOSED or all(self._ignore):
            return
        if self.close_code is None:
            self.close_code, self.close_reason, self.closed_by = code, reason, "relay"
        self._ignore = [True, True]
        if self.state == _OPEN:
            self._later(self.relay.config.close_timeout, self.abort, "close timeout")
        self.state = _CLOSING
        self._send_close(_CLIENT, code, reason)
        self._send_close(_BACKEND, *backend)
        if all(self._gone):
            self._end()

    def _send_close(self, side: int, code: int, reason: str) -> None:
        """A close frame to ``side`` unless it had one, then half-close (TLS: close)."""
        transport = self._transport(side)
        if self._close_sent[side] or self._gone[side] or transport.is_closing():
            return
        self._close_sent[side] = True
        # The frames going to ``side`` come from the other side's pump.
        if not self._pumps[1 - side].at_frame_boundary():
            transport.abort()  # a close frame now would land inside a frame
            return
        try:
            transport.write(frames.close_frame(code, reason, mask=side == _BACKEND))
            if transport.can_write_eof():
                transport.write_eof()
            else:
                transport.close()
        except OSError:  # the peer is already gone
            transport.abort()

    def abort(self, why: str) -> None:
        """Drop both sockets at once."""
        if self.state == _CLOSED:
            return
        self.error = self.error or why
        if self._task is not None:
            self._task.cancel()
        if self.close_code is None and self.status == 101:
            self.close_code, self.closed_by = CloseCode.ABNORMAL_CLOSURE, "relay"
        self.client.abort()
        if self.backend is not None:
            self.backend.abort()
        self._end()

    def _lost(self, side: int) -> None:
        if self.state == _DIALLING:
            if side == _CLIENT:
                self._hang_up()
            else:
                self._backend_handshake_data(b"", eof=True)
                ready = self._backend_ready
                if ready is not None and not ready.done():
                    ready.set_exception(HandshakeError(502, "backend closed the connection"))
            return
        if self.state == _HANDSHAKE:
            self._hang_up()
            return
        if self.state == _CLOSED or self._gone[side]:
            return
        self._gone[side] = True
        if all(self._gone) or all(self._close_from):
            self._end()
            return
        if self._ignore[1 - side]:  # the relay is already closing the other side
            return
        if self.close_code is None:
            if side == _CLIENT:
                self.close_code, self.closed_by = CloseCode.ABNORMAL_CLOSURE, "client"
            else:
                self.close_code, self.closed_by = CloseCode.BAD_GATEWAY, "backend"
                self.close_reason = "backend connection lost"
        if side == _CLIENT:
            self._send_close(_BACKEND, CloseCode.GOING_AWAY, "client went away")
        else:
            self._send_close(_CLIENT, CloseCode.BAD_GATEWAY, "backend connection lost")
        self._end()

    def _hang_up(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.state = _CLOSED
        self.client.abort()
        if self.backend is not None:
            self.backend.abort()
        self._finalize()

    def _end(self) -> None:
        if self.state == _CLOSED:
            return
        self.state = _CLOSED
        self.client.close()
        if self.backend is not None:
            self.backend.close()
        self._finalize()

    # -- backpressure, keepalive ---------------------------------------------------------------

    def pause_reading(self, side: int) -> None:
        """``side``'s bytes wait: the other side's write buffer is full."""
        if self.state == _OPEN and len(self._transports) == 2:
            transport = self._transports[side]
            if not transport.is_closing():
                transport.pause_reading()

    def resume_reading(self, side: int) -> None:
        if self.state == _OPEN and len(self._transports) == 2:
            transport = self._transports[side]
            if not transport.is_closing():
                transport.resume_reading()

    def _schedule_tick(self) -> None:
        config = self.relay.config
        period = min(p for p in (config.ping_interval, config.idle_timeout) if p is not None)
        self._later(period, self._tick)

    def _tick(self) -> None:
        if self.state != _OPEN:
            return
        config = self.relay.config
        now = time.monotonic()
        messages = sum(t.messages for t in self.traffic())
        if messages != self._messages_at_tick:
            self._messages_at_tick, self._idle_since = messages, now
        elif config.idle_timeout is not None and now - self._idle_since >= config.idle_timeout:
            self.shut(CloseCode.GOING_AWAY, "idle timeout")
            return
        if config.ping_interval is not None:
            self._ping(config.ping_timeout)
        self._schedule_tick()

    def _ping(self, timeout: float | None) -> None:
        """Ping both sides; one that sends nothing within ``timeout`` is lost (1011)."""
        # a ping to a side must not land inside a frame the other side is sending it
        pinged = (
            self._pumps[_BACKEND].at_message_boundary(),
            self._pumps[_CLIENT].at_message_boundary(),
        )
        if pinged[_CLIENT]:
            self.client.write(_PING_TO_CLIENT)
        if pinged[_BACKEND]:
            self._transport(_BACKEND).write(_ping_to_backend())
        if timeout is not None and any(pinged):
            self._later(timeout, self._check_heard, pinged, self._received())

    def _check_heard(self, pinged: tuple[bool, bool], received: tuple[int, int]) -> None:
        if self.state != _OPEN:
            return
        now = self._received()
        if any(p and n == r for p, n, r in zip(pinged, now, received, strict=True)):
            self.shut(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")

    def _received(self) -> tuple[int, int]:
        """The bytes each side has sent so far."""
        return self._pumps[_CLIENT].stats.bytes, self._pumps[_BACKEND].stats.bytes

    # -- accounting ----------------------------------------------------------------------------

    def traffic(self) -> tuple[Traffic, ...]:
        if self.admission is None or not self._pumps:
            return ()
        route = self.admission.route
        api, topic = route.api.name, route.topic.name
        inbound, outbound = self._pumps[_CLIENT].stats, self._pumps[_BACKEND].stats
        return tuple(
            Traffic(
                api=api,
                topic=topic,
                direction=direction,
                messages=stats.messages,
                bytes=stats.bytes,
                dropped=stats.dropped,
            )
            for direction, stats in (("in", inbound), ("out", outbound))
        )

    def _cancel_timers(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    def _finalize(self) -> None:
        self._cancel_timers()
        relay = self.relay
        traffic = self.traffic()
        if self.admission is not None:
            relay._gate.release(self.admission, self.close_code, traffic)
        relay._live.discard(self)
        relay._connections.discard(self)
        if not self.done.done():
            self.done.set_result(None)
        if relay._access_log is not None:
            relay._write_access_log(self._log_entry(traffic))

    def _log_entry(self, traffic: tuple[Traffic, ...]) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "peer": self.peer,
            "status": self.status,
        }
        admission, refusal = self.admission, self.refusal
        session = admission.session if admission is not None else refusal and refusal.session
        route = session.route if session else refusal and refusal.route
        if route:
            entry["api"] = route.api.name
            entry["version"] = route.api.version
            entry["topic"] = route.topic.name
        if session:
            entry["auth"] = auth_label(session.principal)
            entry["principal"] = session.principal.subject
            entry["backend"] = session.backend_url
        if admission is not None and admission.backend.overridden:
            entry["query_dropped"] = list(admission.backend.overridden)
        entry["duration_ms"] = round((time.monotonic() - self.started) * 1000, 1)
        for t in traffic:
            entry[f"messages_{t.direction}"] = t.messages
            entry[f"bytes_{t.direction}"] = t.bytes
            entry[f"dropped_{t.direction}"] = t.dropped
        if self.status == 101:
            entry["close_code"] = self.close_code
            entry["close_reason"] = self.close_reason
            entry["closed_by"] = self.closed_by
        if self.error:
            entry["error"] = self.error
        return entry
