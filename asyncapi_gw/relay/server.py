"""The relay's asyncio shell: the :class:`Relay` lifecycle (listeners, shutdown, reload) and
two :class:`asyncio.Protocol` s per relayed connection that execute what its
:class:`~asyncapi_gw.relay.connection.Connection` decides.

Every rule (the handshakes, the close codes and HTTP answers, the timers, drain and reload) is
the connection's, stated in :mod:`asyncapi_gw.relay.connection`; who may connect and what a
message may do is the :class:`~asyncapi_gw.relay.gate.Gate`'s. The protocols move bytes, open
the backend's socket, run timers and apply backpressure: a side whose write buffer passes the
limit pauses reading on the other side. The common chunk (one whole admitted message) goes
from one socket to the other without an action list, as the pump allows.

Per-connection failures are never raised: they end as a close code (or an HTTP status) and an
access-log line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import sys
import time
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any, cast

from asyncapi_gw.errors import RelayError
from asyncapi_gw.model import StreamingAPI
from asyncapi_gw.relay.admin import AdminConnection
from asyncapi_gw.relay.config import RelayConfig
from asyncapi_gw.relay.connection import (
    Abort,
    Action,
    CloseSocket,
    Connection,
    Dial,
    HalfClose,
    PauseReading,
    ResumeReading,
    Side,
    StartTimer,
    State,
    StopTimer,
    Timer,
    Write,
)
from asyncapi_gw.relay.embed import WebsocketsAdapter
from asyncapi_gw.relay.front import GatedFront
from asyncapi_gw.relay.gate import Gate
from asyncapi_gw.relay.metrics import Traffic
from asyncapi_gw.relay.reload import Drop, Keep
from asyncapi_gw.relay.stream import Forward

__all__ = ["Relay"]

if TYPE_CHECKING:
    from asyncapi_gw.relay.quota_store import RedisQuotaStore

log = logging.getLogger("asyncapi_gw.relay")

_TLS_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


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


def _quota_store(config: RelayConfig) -> RedisQuotaStore | None:
    """The shared quota store ``config`` names, if any (the ``redis`` extra's client)."""
    if config.quota_store is None:
        return None
    try:
        from asyncapi_gw.relay.quota_store import RedisQuotaStore  # noqa: PLC0415 - optional
    except ImportError:
        raise RelayError(
            "a quota store needs the redis client: pip install 'asyncapi-gw[redis]'"
        ) from None
    return RedisQuotaStore(
        config.quota_store, failure=config.quota_store_failure, lease=config.quota_lease
    )


class Relay(GatedFront):
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
        self._quota_store: RedisQuotaStore | None = None  # made with the gate (_new_gate)
        super().__init__(apis, config=config, **options)
        gate = self._gate
        self._live: set[_ClientProtocol] = set()  # every client socket, handshakes included
        self._drained: asyncio.Future[None] | None = None  # set once draining leaves none
        self._servers: dict[str, asyncio.Server] = {}  # ws, wss, admin
        self._admin_clients: set[asyncio.Transport] = set()
        self._tls: ssl.SSLContext | None = None  # what new wss handshakes use (reload_tls)
        self._access_log: IO[str] | None = None
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None  # the one serving (start)
        self._adapter = adapter = WebsocketsAdapter(gate)
        self.process_request = adapter.process_request
        """For ``websockets.asyncio.server.serve(process_request=...)``; see :mod:`.embed`."""
        self.process_response = adapter.process_response
        """For ``websockets.asyncio.server.serve(process_response=...)``."""
        self.handler = adapter.handler
        """The connection handler for ``websockets.asyncio.server.serve``."""

    def _new_gate(self, apis: Iterable[StreamingAPI], config: RelayConfig) -> Gate:
        self._quota_store = _quota_store(config)
        return Gate(apis, config, shared=self._quota_store)

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the listeners. Raises :class:`RelayError` when a port cannot be bound."""
        if self._servers:
            raise RelayError("the relay is already started")
        self._loop = loop = asyncio.get_running_loop()
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
                    lambda secure=context is not None: _ClientProtocol(self, secure=secure),
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
        if self._quota_store is not None:
            self._quota_store.start()

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
        self._drained = asyncio.get_running_loop().create_future()
        for protocol in list(self._live):
            protocol.execute(protocol.connection.shutdown())
        if self._live:
            await asyncio.wait([self._drained], timeout=self.config.drain_timeout)
        for protocol in list(self._live):
            protocol.execute(protocol.connection.abort("drain timeout"))
        await self._stop_listening()  # on Python 3.12+ this also waits for the connections
        self._close_access_log()
        if self._quota_store is not None:
            await self._quota_store.close()

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
    def draining(self) -> bool:
        """The relay is shutting down (the admin listener's ``/health`` answers 503)."""
        return self._closing

    def metrics_text(self) -> str:
        """The Prometheus text served at the admin listener's ``/metrics``."""
        store = self._quota_store
        return self._gate.metrics.render(
            self._live_traffic(), quota_store=None if store is None else store.health
        )

    @property
    def connections(self) -> int:
        """Client sockets the relay holds: relayed connections and handshakes in progress."""
        return len(self._live)

    def _live_traffic(self) -> Iterable[Traffic]:
        for protocol in self._live:
            yield from protocol.connection.traffic()

    # -- reload --------------------------------------------------------------------------------

    def _rejudge(self) -> list[Keep | Drop]:
        gate = self._gate
        verdicts = self._adapter.reload()
        for protocol in list(self._live):
            connection = protocol.connection
            admission = connection.admission
            if connection.state is not State.OPEN or admission is None:
                continue
            verdict = gate.rejudge(admission, compressed=connection.compressed)
            protocol.execute(connection.reloaded(verdict))
            verdicts.append(verdict)
        return verdicts

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

    def _finished(self, protocol: _ClientProtocol) -> None:
        self._live.discard(protocol)
        if self._access_log is not None:
            entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            self._write_access_log({**entry, **protocol.connection.log_entry()})
        if self._drained is not None and not self._live and not self._drained.done():
            self._drained.set_result(None)

    def _write_access_log(self, entry: dict[str, Any]) -> None:
        if self._access_log is None:
            return
        try:
            self._access_log.write(json.dumps(entry, separators=(",", ":")) + "\n")
        except (OSError, ValueError) as exc:
            log.warning("cannot write the access log: %s", exc)


# -- the protocols ------------------------------------------------------------------------------

_OPEN = State.OPEN
_CLIENT, _BACKEND = Side.CLIENT, Side.BACKEND
_TIMERS = len(Timer)


class _ClientProtocol(asyncio.Protocol):
    """A client's socket; it owns the :class:`Connection` and executes its actions on both
    sockets (the backend's through :class:`_BackendProtocol`)."""

    __slots__ = ("backend", "client", "connection", "dialling", "loop", "relay", "secure", "timers")

    client: asyncio.Transport
    connection: Connection

    def __init__(self, relay: Relay, *, secure: bool) -> None:
        self.relay = relay
        self.loop = cast(asyncio.AbstractEventLoop, relay._loop)  # made by its listener
        self.secure = secure
        self.backend: asyncio.Transport | None = None
        self.dialling: asyncio.Task[None] | None = None
        self.timers: list[asyncio.TimerHandle | None] = [None] * _TIMERS

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        relay = self.relay
        self.client = client = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.connection = Connection(
            relay._gate,
            peer=str(peer[0]) if isinstance(peer, tuple) else "local",
            secure=self.secure,
        )
        relay._live.add(self)
        limit = relay.config.write_buffer_limit
        client.set_write_buffer_limits(high=limit, low=limit // 4)
        self.execute(self.connection.start())

    def data_received(self, data: bytes) -> None:
        connection = self.connection
        if connection.state is _OPEN:  # the hot path (OPEN: the backend is there)
            pump = connection.pumps[_CLIENT]
            if pump.forward_whole(data):  # one whole message, as it came
                self.backend.write(data)  # type: ignore[union-attr]
                return
            actions = pump.receive(data)
            if len(actions) == 1 and type(actions[0]) is Forward:  # forwarded as one piece
                self.backend.write(actions[0].data)  # type: ignore[union-attr]
                return
            self.execute(connection.pumped(_CLIENT, actions))
            return
        self.execute(connection.receive(_CLIENT, data))

    def eof_received(self) -> bool:
        self.execute(self.connection.lost(_CLIENT))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.execute(self.connection.lost(_CLIENT))

    def pause_writing(self) -> None:
        self.execute(self.connection.write_buffer_full(_CLIENT))

    def resume_writing(self) -> None:
        self.execute(self.connection.write_buffer_drained(_CLIENT))

    # -- executing actions ---------------------------------------------------------------------

    def execute(self, actions: list[Action]) -> None:
        for action in actions:
            if type(action) is Write:  # what nearly every action is
                transport = self.client if action.side is _CLIENT else self.backend
                if transport is not None and not transport.is_closing():
                    transport.write(action.data)
            elif isinstance(action, StartTimer):
                self._start_timer(action.timer, action.delay)
            elif isinstance(action, StopTimer):
                self._stop_timer(action.timer)
            elif isinstance(action, HalfClose):
                self._half_close(action.side)
            elif isinstance(action, CloseSocket | Abort):
                transport = self._transport(action.side)
                if transport is None:
                    continue
                if isinstance(action, CloseSocket):
                    transport.close()
                else:
                    transport.abort()
            elif isinstance(action, PauseReading | ResumeReading):
                transport = self._transport(action.side)
                if transport is None or transport.is_closing():
                    continue
                if isinstance(action, PauseReading):
                    transport.pause_reading()
                else:
                    transport.resume_reading()
            elif isinstance(action, Dial):
                self.dialling = self.loop.create_task(
                    self._dial(action.host, action.port, action.secure)
                )
            else:  # Finished
                self._finished()

    def _transport(self, side: Side) -> asyncio.Transport | None:
        return self.client if side is _CLIENT else self.backend

    def _half_close(self, side: Side) -> None:
        transport = self._transport(side)
        if transport is None or transport.is_closing():
            return
        try:
            if transport.can_write_eof():
                transport.write_eof()
            else:
                transport.close()
        except OSError:  # the peer is already gone
            transport.abort()

    def _start_timer(self, timer: Timer, delay: float) -> None:
        self._stop_timer(timer)
        self.timers[timer] = self.loop.call_later(delay, self._fire, timer)

    def _stop_timer(self, timer: Timer) -> None:
        handle = self.timers[timer]
        if handle is not None:
            handle.cancel()
            self.timers[timer] = None

    def _fire(self, timer: Timer) -> None:
        self.timers[timer] = None
        self.execute(self.connection.timer(timer))

    async def _dial(self, host: str, port: int, secure: bool) -> None:
        context = ssl.create_default_context() if secure else None
        try:
            await self.loop.create_connection(
                lambda: _BackendProtocol(self), host, port, ssl=context
            )
        except OSError as exc:
            self.execute(self.connection.dial_failed(exc.strerror or str(exc)))
        except Exception as exc:  # a per-connection failure must not escape the relay
            log.exception("dialling the backend failed")
            self.execute(self.connection.dial_failed(f"{type(exc).__name__}: {exc}"))
        finally:
            self.dialling = None

    def _finished(self) -> None:
        timers = self.timers
        for timer, handle in enumerate(timers):
            if handle is not None:
                handle.cancel()
                timers[timer] = None
        if self.dialling is not None:
            self.dialling.cancel()
            self.dialling = None
        self.relay._finished(self)


class _BackendProtocol(asyncio.Protocol):
    """The backend's socket: its events go to the client's protocol's connection."""

    __slots__ = ("owner",)

    def __init__(self, owner: _ClientProtocol) -> None:
        self.owner = owner

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        owner = self.owner
        backend = cast(asyncio.Transport, transport)
        if owner.connection.state is State.DIALLING:
            owner.backend = backend
            limit = owner.relay.config.write_buffer_limit
            backend.set_write_buffer_limits(high=limit, low=limit // 4)
            owner.execute(owner.connection.backend_connected())
        else:  # the client left, or was answered, while the backend was dialled
            backend.abort()

    def data_received(self, data: bytes) -> None:
        owner = self.owner
        connection = owner.connection
        if connection.state is _OPEN:  # the hot path, as the client's
            pump = connection.pumps[_BACKEND]
            if pump.forward_whole(data):
                owner.client.write(data)
                return
            actions = pump.receive(data)
            if len(actions) == 1 and type(actions[0]) is Forward:
                owner.client.write(actions[0].data)
                return
            owner.execute(connection.pumped(_BACKEND, actions))
            return
        owner.execute(connection.receive(_BACKEND, data))

    def eof_received(self) -> bool:
        self.owner.execute(self.owner.connection.lost(_BACKEND))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.execute(self.owner.connection.lost(_BACKEND))

    def pause_writing(self) -> None:
        self.owner.execute(self.owner.connection.write_buffer_full(_BACKEND))

    def resume_writing(self) -> None:
        self.owner.execute(self.owner.connection.write_buffer_drained(_BACKEND))
