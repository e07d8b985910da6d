"""One relayed connection as a state machine: events in, actions out, no I/O.

A :class:`Connection` is driven by its shell (the relay's listener) with events — bytes from
a side (:meth:`~Connection.receive`), the backend's socket connected or not
(:meth:`~Connection.backend_connected`, :meth:`~Connection.dial_failed`), a side lost
(:meth:`~Connection.lost`), a timer fired (:meth:`~Connection.timer`), shutdown
(:meth:`~Connection.shutdown`), a reload's verdict (:meth:`~Connection.reloaded`), a write
buffer full or drained — and each returns the :data:`Action` s the shell executes in order:
:class:`Write`, :class:`HalfClose`, :class:`CloseSocket`, :class:`Abort`, :class:`Dial`,
:class:`PauseReading`, :class:`ResumeReading`, :class:`StartTimer`, :class:`StopTimer`, and
last :class:`Finished`. Time comes from the injected ``clock``; every decision about who may
connect and what a message may do is the :class:`~asyncapi_gw.relay.gate.Gate`'s.

States (:class:`State`) and their transitions:

``HANDSHAKE``: the client's HTTP request is read (``open_timeout`` runs from the start).
  - a request the relay cannot read: 400 (431 for a head too large), ``CLOSED``;
  - ``GET /health`` or ``/metrics`` without an upgrade: 404 (they are on the admin listener);
  - a request that is no valid upgrade: websockets' answer (400, 426...);
  - the gate refuses: 400/404 (route), 401/403 (auth, with ``WWW-Authenticate``), 403 (no
    endpoint for the environment), 503 (draining, ``max_connections``);
  - a forwarded header with forbidden characters: 400;
  - else the backend is dialled (:class:`Dial`; the client's reading paused): ``DIALLING``;
  - ``open_timeout`` fires: the socket is aborted unanswered; the client leaves: ``CLOSED``.
``DIALLING``: the backend's TCP connection, then its HTTP response are awaited.
  - not reachable, closed, a refused upgrade or a handshake the relay cannot follow: 502;
  - ``open_timeout`` fires: 504; shutdown: 503;
  - a reload came since the admission and closes the connection: 401 (its credential), 503;
  - the client leaves: both sockets are aborted, ``CLOSED``;
  - else the client gets its 101 with the backend's subprotocol and extensions: ``OPEN``.
``OPEN``: bytes of each side go through its :class:`~asyncapi_gw.relay.stream.Pump`.
  - a side's close frame passes to the other side: ``CLOSING`` (``close_timeout`` starts);
  - a side breaks the protocol or the policy: it gets the pump's code (1002, 1007, 1008,
    1009, 4003), the other side is told why (1014 to the client, 1001 to the backend);
  - the relay closes (shutdown 1001 ``relay shutting down``; ``idle_timeout`` without a data
    message either way 1001 ``idle timeout``; a side silent ``ping_timeout`` after a ping 1011;
    the credential's expiry 4001 ``token expired``; a reload 1012 or 4001): a close frame to
    each side (the backend gets 1001), then each is half-closed and further bytes are ignored:
    ``CLOSING``;
  - a side lost without a close frame: the other gets a close frame (1014 ``backend connection
    lost`` to the client, 1001 ``client went away`` to the backend), both sockets close:
    ``CLOSED`` (the close code recorded: 1006 for a client lost, 1014 for a backend lost).
``CLOSING``: the peers' close frames and hang-ups are awaited.
  - both sides sent a close frame, or both sockets are gone: both close, ``CLOSED``;
  - ``close_timeout`` fires (or the shell's drain timeout): both are aborted, ``CLOSED``
    (1006 when no close code was seen).
``CLOSED``: every event is ignored; the last action was :class:`Finished`, after which the
connection holds no slot or quota.

A close frame is never written inside a frame: when the bytes forwarded to a side end within
one, that side is aborted instead. Keepalive pings go to a side only between messages.
"""

from __future__ import annotations

import enum
import logging
import os
import time
from collections.abc import Callable
from typing import Any, cast

import attrs

from asyncapi_gw.relay import frames
from asyncapi_gw.relay.closecode import RELAY_CLOSING, CloseCode
from asyncapi_gw.relay.config import OnThrottle
from asyncapi_gw.relay.gate import Admission, Gate, Refusal
from asyncapi_gw.relay.handshake import (
    BackendHandshake,
    HandshakeError,
    HttpRequest,
    RequestParser,
    ResponseParser,
    check_upgrade,
    is_upgrade,
    origin_form,
    plain_response,
    switching_protocols,
)
from asyncapi_gw.relay.metrics import Traffic
from asyncapi_gw.relay.principal import auth_label
from asyncapi_gw.relay.reload import Drop, Keep
from asyncapi_gw.relay.stream import Action as PumpAction
from asyncapi_gw.relay.stream import CloseSeen, Forward, Pump, Reply

__all__ = [
    "Abort",
    "Action",
    "CloseSocket",
    "Connection",
    "Dial",
    "Finished",
    "HalfClose",
    "PauseReading",
    "ResumeReading",
    "Side",
    "StartTimer",
    "State",
    "StopTimer",
    "Timer",
    "Write",
]

log = logging.getLogger("asyncapi_gw.relay")


class State(enum.Enum):
    HANDSHAKE = "handshake"
    DIALLING = "dialling"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class Side(enum.IntEnum):
    CLIENT = 0
    BACKEND = 1


class Timer(enum.IntEnum):
    OPEN = 0  # open_timeout: the whole opening handshake
    CLOSE = 1  # close_timeout: the closing handshake
    TICK = 2  # keepalive ping and idle check, every min(ping_interval, idle_timeout)
    PONG = 3  # ping_timeout after a ping
    EXPIRY = 4  # the credential's expiry


_CLIENT, _BACKEND = Side.CLIENT, Side.BACKEND
_HANDSHAKE, _DIALLING, _OPEN, _CLOSING, _CLOSED = State  # (module names: read per chunk)
_ADMIN_PATHS = ("/health", "/metrics")  # served by the admin listener; 404 on client ones
# Control frames the relay originates: an empty ping, unmasked to the client, masked to the backend.
_PING_TO_CLIENT = b"\x89\x00"


def _ping_to_backend() -> bytes:
    return b"\x89\x80" + os.urandom(4)


@attrs.frozen
class Write:
    """Write ``data`` to ``side``."""

    side: Side
    data: bytes


@attrs.frozen
class HalfClose:
    """Shut ``side``'s write direction (TLS, which cannot: close the socket)."""

    side: Side


@attrs.frozen
class CloseSocket:
    """Close ``side``'s socket once its buffered bytes are written."""

    side: Side


@attrs.frozen
class Abort:
    """Drop ``side``'s socket at once (nothing to do when it was never opened)."""

    side: Side


@attrs.frozen
class Dial:
    """Open the backend's socket (TLS when ``secure``); then :meth:`Connection.backend_connected`
    or :meth:`Connection.dial_failed`."""

    host: str
    port: int
    secure: bool


@attrs.frozen
class PauseReading:
    side: Side


@attrs.frozen
class ResumeReading:
    side: Side


@attrs.frozen
class StartTimer:
    """Call :meth:`Connection.timer` with ``timer`` after ``delay`` seconds, in place of a
    running timer of that kind."""

    timer: Timer
    delay: float


@attrs.frozen
class StopTimer:
    timer: Timer


@attrs.frozen
class Finished:
    """The connection is over: its sockets are closing, its slot and quota released."""


Action = (
    Write
    | HalfClose
    | CloseSocket
    | Abort
    | Dial
    | PauseReading
    | ResumeReading
    | StartTimer
    | StopTimer
    | Finished
)


# What happened on one side of an open connection: bits of ``Connection._flags[side]`` (plain
# ints: every chunk after the fast path reads them).
_CLOSE_SENT = 1  # a close frame was written to it
_CLOSE_RCVD = 2  # it sent a close frame (forwarded)
_IGNORED = 4  # the relay closes it: its further bytes are dropped
_GONE = 8  # its socket is lost

_FINISHED = Finished()
_OTHER = (Side.BACKEND, Side.CLIENT)  # the other side of each side


class Connection:
    """One client, its backend, and the rules between them (see the module docstring)."""

    __slots__ = (
        "_dial",
        "_early",
        "_flags",
        "_idle_since",
        "_messages_at_tick",
        "_parser",
        "_pong",
        "_request",
        "_response",
        "admission",
        "clock",
        "close_code",
        "close_reason",
        "closed_by",
        "error",
        "gate",
        "peer",
        "pumps",
        "refusal",
        "secure",
        "started",
        "state",
        "status",
    )  # thousands of these live at once

    def __init__(
        self,
        gate: Gate,
        *,
        peer: str,
        secure: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.gate = gate
        self.peer = peer
        self.secure = secure
        self.clock = clock
        self.state = _HANDSHAKE
        self.started = clock()
        self.status = 0  # the HTTP status the client got
        self.admission: Admission | None = None  # once admitted by the gate
        self.refusal: Refusal | None = None  # why the handshake was refused
        self.pumps: list[Pump] = []  # client's, backend's (once OPEN)
        self.close_code: int | None = None
        self.close_reason = ""
        self.closed_by = ""
        self.error = ""
        self._parser: RequestParser | None = RequestParser()  # until the request is read
        self._request: HttpRequest | None = None  # while DIALLING
        self._dial: BackendHandshake | None = None
        self._response: ResponseParser | None = None
        self._early = b""
        self._flags = [0, 0]
        self._messages_at_tick = 0
        self._idle_since = self.started
        self._pong: tuple[tuple[bool, bool], tuple[int, int]] | None = None  # ping awaiting

    def start(self) -> list[Action]:
        """The client connected."""
        return [StartTimer(Timer.OPEN, self.gate.config.open_timeout)]

    # -- bytes ---------------------------------------------------------------------------------

    def receive(self, side: Side, data: bytes) -> list[Action]:
        """Bytes from ``side``."""
        state = self.state
        if state is _OPEN or state is _CLOSING:
            if self._flags[side] & _IGNORED:
                return []
            return self.pumped(side, self.pumps[side].receive(data))
        if side is _CLIENT:
            return self._request_data(data) if state is _HANDSHAKE else []
        return self._response_data(data) if state is _DIALLING else []

    def pumped(self, side: Side, actions: list[PumpAction]) -> list[Action]:
        """What ``side``'s pump made of its bytes, as actions. :meth:`receive` calls it; a
        shell that feeds an ``OPEN`` connection's pump itself (its fast path: a chunk the pump
        forwards whole, or as one :class:`~asyncapi_gw.relay.stream.Forward`, is written to
        the other side as it is) hands it every other outcome."""
        other = _OTHER[side]
        out: list[Action] = []
        for action in actions:
            if isinstance(action, Forward):
                out.append(Write(other, action.data))
            elif isinstance(action, Reply):
                out.append(Write(side, action.data))
            elif isinstance(action, CloseSeen):
                out += self._close_frame_passed(action.code, action.reason, side)
            else:
                to_client, to_backend = action.closes(from_client=side is _CLIENT)
                out += self._shut(*to_client, backend=to_backend)
        return out

    # -- the opening handshake -----------------------------------------------------------------

    def _request_data(self, data: bytes) -> list[Action]:
        parser = self._parser
        if parser is None:
            return []
        try:
            request = parser.feed(data)
        except HandshakeError as exc:
            return self._refuse(self.gate.refuse(exc.status, exc.reason))
        if request is None:
            return []
        self._early, self._parser = parser.leftover, None
        try:
            return self._admit(request)
        except HandshakeError as exc:
            return self._refuse(self.gate.refuse(exc.status, exc.reason, exc.headers))
        except Exception as exc:  # a per-connection failure must not escape the relay
            log.exception("handshake failed")
            self.error = f"{type(exc).__name__}: {exc}"
            return self._refuse(self.gate.refuse(500, "internal error"))

    def _admit(self, request: HttpRequest) -> list[Action]:
        """Bytes the client sent after its request are never read as another request: an
        HTTP answer closes the connection (RFC 9112 section 9.6); after a 101 they are the
        first of the client's frames, as websockets' server reads them."""
        if not is_upgrade(request) and request.path.split("?", 1)[0] in _ADMIN_PATHS:
            raise HandshakeError(404, "not found: /health and /metrics are on the admin listener")
        problem = check_upgrade(request)
        if problem is not None:
            raise problem
        gate = self.gate
        admitted = gate.admit(
            origin_form(request.path)[0], list(request.headers.raw_items()), peer=self.peer
        )
        if isinstance(admitted, Refusal):
            return self._refuse(admitted)
        self.admission = admitted
        config = gate.config
        plan = BackendHandshake.build(
            admitted.backend_url,
            request,
            forward_headers=config.forward_headers,
            offer_extensions=admitted.offer_compression,
            client_host=self.peer,
            secure_client=self.secure,
            relay_headers=admitted.backend_headers,
        )
        self._request, self._dial = request, plan
        self._response = ResponseParser()
        self.state = _DIALLING
        return [PauseReading(_CLIENT), Dial(plan.host, plan.port, plan.secure)]

    def backend_connected(self) -> list[Action]:
        """The backend's socket is open."""
        if self.state is not _DIALLING or self._dial is None:
            return [Abort(_BACKEND)]  # the client left, or it was refused, meanwhile
        return [Write(_BACKEND, self._dial.request)]

    def dial_failed(self, reason: str) -> list[Action]:
        """The backend's socket could not be opened."""
        if self.state is not _DIALLING:
            return []
        return self._refuse(self.gate.refuse(502, f"cannot reach the backend: {reason}"))

    def _response_data(self, data: bytes, *, eof: bool = False) -> list[Action]:
        parser, plan, request = self._response, self._dial, self._request
        if parser is None or plan is None or request is None:
            return []
        try:
            response = parser.feed(data, eof=eof)
            if response is None:
                return []
            subprotocol, agreement = plan.check(response)
        except HandshakeError as exc:
            return self._refuse(self.gate.refuse(exc.status, exc.reason, exc.headers))
        admission = cast(Admission, self.admission)  # DIALLING means admitted
        gate = self.gate
        refusal = gate.accept(admission, compressed=agreement is not None)
        if refusal is not None:
            return self._refuse(refusal)
        config = gate.config
        if (
            agreement is not None
            and admission.quota is not None
            and config.on_throttle is OnThrottle.REPLY
        ):
            # a throttled message is dropped: the client's next one must not refer to it
            agreement = agreement.without_client_takeover()
        deflate = (None, None) if agreement is None else (agreement.client, agreement.backend)
        self.pumps = [Pump(policy) for policy in gate.policies(admission, deflate=deflate)]
        leftover, early = parser.leftover, self._early
        # an idle relayed connection keeps nothing of its handshakes
        self._response = self._dial = self._request = None
        self._early = b""
        self.status = 101
        self.state = _OPEN
        out: list[Action] = [
            StopTimer(Timer.OPEN),
            Write(
                _CLIENT,
                switching_protocols(
                    request,
                    subprotocol=subprotocol,
                    extensions=None if agreement is None else agreement.header,
                ),
            ),
        ]
        if config.ping_interval is not None or config.idle_timeout is not None:
            out.append(StartTimer(Timer.TICK, self._tick_period()))
        expires_in = gate.expires_in(admission)
        if expires_in is not None:
            out.append(StartTimer(Timer.EXPIRY, expires_in))
        out += [ResumeReading(_CLIENT), ResumeReading(_BACKEND)]
        if leftover:
            out += self.receive(_BACKEND, leftover)
        if early:
            out += self.receive(_CLIENT, early)
        return out

    def _refuse(self, refusal: Refusal) -> list[Action]:
        """The client's HTTP answer, then the end."""
        if self.state is not _HANDSHAKE and self.state is not _DIALLING:
            return []
        self.status = refusal.status
        self.error = self.error or refusal.reason
        self.refusal = refusal
        return [
            Write(_CLIENT, plain_response(refusal.status, refusal.body, headers=refusal.headers)),
            CloseSocket(_CLIENT),
            Abort(_BACKEND),
            *self._finish(),
        ]

    # -- closing -------------------------------------------------------------------------------

    def _close_frame_passed(self, code: int | None, reason: str, side: Side) -> list[Action]:
        flags = self._flags
        flags[side] |= _CLOSE_RCVD
        flags[1 - side] |= _CLOSE_SENT
        if self.close_code is None:
            self.close_code = CloseCode.NO_STATUS_RCVD if code is None else code
            self.close_reason = reason
            self.closed_by = "client" if side is _CLIENT else "backend"
        if flags[0] & flags[1] & _CLOSE_RCVD:
            return self._end()
        if self.state is _OPEN:
            self.state = _CLOSING
            return [StartTimer(Timer.CLOSE, self.gate.config.close_timeout)]
        return []

    def shutdown(self) -> list[Action]:
        """The relay shuts down: 503 to a handshake in progress, 1001 to an open connection."""
        return self._shut(CloseCode.GOING_AWAY, "relay shutting down")

    def _shut(
        self,
        code: int,
        reason: str,
        *,
        backend: tuple[int, str] = RELAY_CLOSING,
    ) -> list[Action]:
        """The relay closes: ``code`` to the client, ``backend`` to the backend, then waits."""
        state, flags = self.state, self._flags
        if state is _HANDSHAKE or state is _DIALLING:
            return self._refuse(self.gate.refuse(503, reason))
        if state is _CLOSED or flags[0] & flags[1] & _IGNORED:
            return []
        if self.close_code is None:
            self.close_code, self.close_reason, self.closed_by = code, reason, "relay"
        flags[0] |= _IGNORED
        flags[1] |= _IGNORED
        out: list[Action] = []
        if state is _OPEN:
            out.append(StartTimer(Timer.CLOSE, self.gate.config.close_timeout))
        self.state = _CLOSING
        out += self._send_close(_CLIENT, code, reason)
        out += self._send_close(_BACKEND, *backend)
        if flags[0] & flags[1] & _GONE:
            out += self._end()
        return out

    def _send_close(self, side: Side, code: int, reason: str) -> list[Action]:
        """A close frame to ``side`` unless it had one, then half-close."""
        flags = self._flags
        if flags[side] & (_CLOSE_SENT | _GONE):
            return []
        flags[side] |= _CLOSE_SENT
        # The frames going to ``side`` come from the other side's pump.
        if not self.pumps[1 - side].at_frame_boundary():
            return [Abort(side)]  # a close frame now would land inside a frame
        frame = frames.close_frame(code, reason, mask=side is _BACKEND)
        return [Write(side, frame), HalfClose(side)]

    def abort(self, why: str) -> list[Action]:
        """Drop both sockets at once (the shell's drain timeout)."""
        if self.state is _CLOSED:
            return []
        self.error = self.error or why
        if self.close_code is None and self.status == 101:
            self.close_code, self.closed_by = CloseCode.ABNORMAL_CLOSURE, "relay"
        return [Abort(_CLIENT), Abort(_BACKEND), *self._end()]

    def lost(self, side: Side) -> list[Action]:
        """``side`` hung up (end of stream) or its socket was lost."""
        state = self.state
        if state is _DIALLING and side is _BACKEND:
            return self._response_data(b"", eof=True)
        if state is _HANDSHAKE or state is _DIALLING:
            # the client left before its answer
            return [Abort(_CLIENT), Abort(_BACKEND), *self._finish()]
        flags = self._flags
        if state is _CLOSED or flags[side] & _GONE:
            return []
        flags[side] |= _GONE
        both = flags[0] & flags[1]
        if both & _GONE or both & _CLOSE_RCVD:
            return self._end()
        other = _OTHER[side]
        if flags[other] & _IGNORED:  # the relay is already closing the other side
            return []
        if self.close_code is None:
            if side is _CLIENT:
                self.close_code, self.closed_by = CloseCode.ABNORMAL_CLOSURE, "client"
            else:
                self.close_code, self.closed_by = CloseCode.BAD_GATEWAY, "backend"
                self.close_reason = "backend connection lost"
        if side is _CLIENT:
            out = self._send_close(_BACKEND, CloseCode.GOING_AWAY, "client went away")
        else:
            out = self._send_close(_CLIENT, CloseCode.BAD_GATEWAY, "backend connection lost")
        return out + self._end()

    def _end(self) -> list[Action]:
        if self.state is _CLOSED:
            return []
        return [CloseSocket(_CLIENT), CloseSocket(_BACKEND), *self._finish()]

    def _finish(self) -> list[Action]:
        self.state = _CLOSED
        self._parser = self._response = self._dial = self._request = None
        if self.admission is not None:
            self.gate.release(self.admission, self.close_code, self.traffic())
        return [_FINISHED]

    # -- reload, backpressure, timers ----------------------------------------------------------

    def reloaded(self, verdict: Keep | Drop) -> list[Action]:
        """Close as a reload decided, or go on under the route and principal it gave (the
        gate moved the admission): a changed message policy reaches each pump, for the next
        message its side starts."""
        if isinstance(verdict, Drop):
            return self._shut(verdict.code, verdict.reason)
        if verdict.policy_changed and self.admission is not None and self.pumps:
            client, backend = (pump.policy.deflate for pump in self.pumps)
            policies = self.gate.policies(self.admission, deflate=(client, backend))
            for pump, policy in zip(self.pumps, policies, strict=True):
                pump.update(policy)
        return []

    @property
    def compressed(self) -> bool:
        """permessage-deflate was negotiated (false before the 101)."""
        return bool(self.pumps) and self.pumps[_CLIENT].policy.deflate is not None

    def write_buffer_full(self, side: Side) -> list[Action]:
        """``side``'s write buffer passed its limit: the other side's bytes wait."""
        return [PauseReading(_OTHER[side])] if self.state is _OPEN else []

    def write_buffer_drained(self, side: Side) -> list[Action]:
        return [ResumeReading(_OTHER[side])] if self.state is _OPEN else []

    def timer(self, timer: Timer) -> list[Action]:
        """``timer`` fired."""
        if timer is Timer.OPEN:
            return self._open_timeout()
        if timer is Timer.CLOSE:
            return self.abort("close timeout")
        if self.state is not _OPEN:
            return []
        if timer is Timer.TICK:
            return self._tick()
        if timer is Timer.PONG:
            return self._check_heard()
        # the credential's expiry: 4001, unless a reload put the connection on a topic that no
        # longer asks for a credential
        if self.admission is not None and self.gate.expires_in(self.admission) is not None:
            return self._shut(CloseCode.REVOKED, "token expired")
        return []

    def _open_timeout(self) -> list[Action]:
        """``open_timeout`` after the client connected: no request yet (dropped without an
        answer) or the backend still dialled (504)."""
        if self.state is _HANDSHAKE:
            self.error = "no handshake request in time"
            return [Abort(_CLIENT), *self._finish()]
        if self.state is _DIALLING:
            refusal = self.gate.refuse(504, "the backend did not complete its handshake in time")
            return self._refuse(refusal)
        return []

    def _tick_period(self) -> float:
        config = self.gate.config
        return min(p for p in (config.ping_interval, config.idle_timeout) if p is not None)

    def _tick(self) -> list[Action]:
        config = self.gate.config
        now = self.clock()
        messages = sum(t.messages for t in self.traffic())
        if messages != self._messages_at_tick:
            self._messages_at_tick, self._idle_since = messages, now
        elif config.idle_timeout is not None and now - self._idle_since >= config.idle_timeout:
            return self._shut(CloseCode.GOING_AWAY, "idle timeout")
        out: list[Action] = []
        if config.ping_interval is not None:
            out += self._ping(config.ping_timeout)
        out.append(StartTimer(Timer.TICK, self._tick_period()))
        return out

    def _ping(self, timeout: float | None) -> list[Action]:
        """Ping both sides; one that sends nothing within ``timeout`` is lost (1011)."""
        # a ping to a side must not land inside a frame the other side is sending it
        pinged = (
            self.pumps[_BACKEND].at_message_boundary(),
            self.pumps[_CLIENT].at_message_boundary(),
        )
        out: list[Action] = []
        if pinged[_CLIENT]:
            out.append(Write(_CLIENT, _PING_TO_CLIENT))
        if pinged[_BACKEND]:
            out.append(Write(_BACKEND, _ping_to_backend()))
        if timeout is not None and any(pinged) and self._pong is None:
            self._pong = (pinged, self._received())
            out.append(StartTimer(Timer.PONG, timeout))
        return out

    def _check_heard(self) -> list[Action]:
        if self._pong is None:
            return []
        (pinged, received), self._pong = self._pong, None
        now = self._received()
        if any(p and n == r for p, n, r in zip(pinged, now, received, strict=True)):
            return self._shut(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
        return []

    def _received(self) -> tuple[int, int]:
        """The bytes each side has sent so far."""
        return self.pumps[_CLIENT].stats.bytes, self.pumps[_BACKEND].stats.bytes

    # -- accounting ----------------------------------------------------------------------------

    def traffic(self) -> tuple[Traffic, ...]:
        if self.admission is None or not self.pumps:
            return ()
        route = self.admission.route
        api, topic = route.api.name, route.topic.name
        inbound, outbound = self.pumps[_CLIENT].stats, self.pumps[_BACKEND].stats
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

    def log_entry(self) -> dict[str, Any]:
        """The access log's fields for this connection (the shell adds the time)."""
        entry: dict[str, Any] = {"peer": self.peer, "status": self.status}
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
        entry["duration_ms"] = round((self.clock() - self.started) * 1000, 1)
        for t in self.traffic():
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
