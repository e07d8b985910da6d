"""Every lifecycle rule of a relayed connection, synchronously: events into
:class:`~asyncapi_gw.relay.connection.Connection`, its actions checked, with an injected clock
and no sockets or sleeps."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import attrs
import pytest
from raw_frames import parse_frames, raw_frame
from sync_harness import SECURED, Clock, make_api

from asyncapi_gw.model import (
    Operation,
    StreamingAPI,
    Throttling,
    ThrottlingUnit,
    Topic,
    TopicOperation,
)
from asyncapi_gw.relay.auth import ApiKeyInfo, AuthConfig
from asyncapi_gw.relay.closecode import CloseCode
from asyncapi_gw.relay.config import RelayConfig
from asyncapi_gw.relay.connection import (
    Abort,
    Action,
    CloseSocket,
    Connection,
    Dial,
    Finished,
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
from asyncapi_gw.relay.gate import Gate
from asyncapi_gw.relay.reload import Drop

CLIENT, BACKEND = Side.CLIENT, Side.BACKEND
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


QUIET = {"ping_interval": None, "idle_timeout": None}  # no TICK timer unless a test wants it


def gate(clock: Clock, **options: Any) -> Gate:
    config = RelayConfig(auth=AuthConfig(api_keys={"k": ApiKeyInfo(name="k")}), **options)
    return Gate([make_api(), SECURED], config, clock=clock, wall=clock)


def request(path: str = "/chat/1.0/rooms/1", *extra: str) -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        "Host: relay.example",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def answer(backend_request: bytes, *extra: str) -> bytes:
    """The backend's 101 to the relay's request."""
    found = re.search(rb"Sec-WebSocket-Key: (\S+)", backend_request)
    assert found is not None
    accept = base64.b64encode(
        hashlib.sha1(found.group(1) + _GUID, usedforsecurity=False).digest()
    ).decode()
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {accept}",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def written(actions: list[Action], side: Side) -> bytes:
    return b"".join(a.data for a in actions if isinstance(a, Write) and a.side is side)


def status_of(actions: list[Action]) -> int:
    head = written(actions, CLIENT)
    return int(head.split(b" ", 2)[1])


def closes(actions: list[Action], side: Side) -> list[tuple[int, str]]:
    """The close frames written to ``side``: (code, reason)."""
    return [
        (int.from_bytes(p[:2], "big"), p[2:].decode())
        for _, opcode, p in parse_frames(written(actions, side))
        if opcode == 8
    ]


@attrs.define
class Driven:
    """A connection and its gate, driven to some state."""

    connection: Connection
    gate: Gate
    clock: Clock
    dial: list[Action]


def handshake(
    clock: Clock | None = None,
    *,
    path: str = "/chat/1.0/rooms/1",
    headers: tuple[str, ...] = (),
    **options: Any,
) -> Driven:
    """A connection with its request read, its backend being dialled and connected."""
    clock = clock or Clock()
    g = gate(clock, **{**QUIET, **options})
    c = Connection(g, peer="10.0.0.7", clock=clock)
    assert c.start() == [StartTimer(Timer.OPEN, g.config.open_timeout)]
    actions = c.receive(CLIENT, request(path, *headers))
    assert actions == [PauseReading(CLIENT), Dial("backend.example", 8080, False)]
    assert c.state is State.DIALLING
    dial = c.backend_connected()
    return Driven(c, g, clock, dial)


def opened(clock: Clock | None = None, **options: Any) -> Driven:
    d = handshake(clock, **options)
    actions = d.connection.receive(BACKEND, answer(written(d.dial, BACKEND)))
    assert d.connection.state is State.OPEN
    assert status_of(actions) == 101
    return d


def finished(actions: list[Action]) -> bool:
    return bool(actions) and isinstance(actions[-1], Finished)


# -- the opening handshake -------------------------------------------------------------------


def test_the_backend_request_carries_the_route_and_the_client_gets_101_after_its_101() -> None:
    d = handshake(headers=("Sec-WebSocket-Protocol: chat, other",))
    backend_request = written(d.dial, BACKEND)
    assert backend_request.startswith(b"GET /ws HTTP/1.1\r\n")
    assert b"Sec-WebSocket-Protocol: chat, other" in backend_request
    assert b"X-Forwarded-For: 10.0.0.7" in backend_request
    actions = d.connection.receive(
        BACKEND, answer(backend_request, "Sec-WebSocket-Protocol: chat") + b"\x81\x02hi"
    )
    assert actions[0] == StopTimer(Timer.OPEN)
    head = written(actions, CLIENT)
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
    assert b"Sec-WebSocket-Protocol: chat\r\n" in head  # the backend's choice
    assert head.endswith(b"\r\n\r\n\x81\x02hi")  # the backend's first frame, after the 101
    assert {ResumeReading(CLIENT), ResumeReading(BACKEND)} <= set(actions)
    assert d.gate.metrics.connections_open == 1


def test_bytes_the_client_sent_after_its_request_are_its_first_frames() -> None:
    clock = Clock()
    g = gate(clock, **QUIET)
    c = Connection(g, peer="10.0.0.7", clock=clock)
    frame = raw_frame(1, b"early")
    c.receive(CLIENT, request() + frame)
    dial = c.backend_connected()
    actions = c.receive(BACKEND, answer(written(dial, BACKEND)))
    assert written(actions, BACKEND) == frame


def test_a_request_the_relay_cannot_read_is_400_and_the_end() -> None:
    c = Connection(gate(Clock()), peer="p")
    actions = c.receive(CLIENT, b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
    assert status_of(actions) == 400
    assert CloseSocket(CLIENT) in actions
    assert finished(actions)
    assert c.state is State.CLOSED


def test_health_and_metrics_on_a_client_listener_are_404() -> None:
    c = Connection(gate(Clock()), peer="p")
    actions = c.receive(CLIENT, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(actions) == 404
    assert b"admin listener" in written(actions, CLIENT)


def test_a_request_that_is_no_upgrade_gets_websockets_answer() -> None:
    c = Connection(gate(Clock()), peer="p")
    actions = c.receive(CLIENT, b"GET /chat/1.0/rooms/1 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(actions) == 426


@pytest.mark.parametrize(
    ("path", "status"), [("/nowhere", 404), ("/secure/1.0/feed", 401), ("/chat/1.0/x#y", 400)]
)
def test_the_gates_refusals_are_answered_before_any_dial(path: str, status: int) -> None:
    g = gate(Clock())
    c = Connection(g, peer="p")
    actions = c.receive(CLIENT, request(path))
    assert status_of(actions) == status
    assert not any(isinstance(a, Dial) for a in actions)
    assert g.held == 0
    if status == 401:
        assert b"WWW-Authenticate: " in written(actions, CLIENT)


def test_capacity_and_a_draining_gate_are_503() -> None:
    d = handshake(max_connections=1)
    second = Connection(d.gate, peer="p")
    assert status_of(second.receive(CLIENT, request())) == 503
    d.gate.close()
    third = Connection(gate(Clock()), peer="p")
    third.gate.close()
    actions = third.receive(CLIENT, request())
    assert status_of(actions) == 503
    assert b"shutting down" in written(actions, CLIENT)


def test_a_backend_that_cannot_be_reached_is_502() -> None:
    clock = Clock()
    c = Connection(gate(clock), peer="p", clock=clock)
    c.receive(CLIENT, request())
    actions = c.dial_failed("Connection refused")
    assert status_of(actions) == 502
    assert b"cannot reach the backend: Connection refused" in written(actions, CLIENT)
    assert c.gate.held == 0


@pytest.mark.parametrize(
    "response",
    [
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",  # no accept key
        b"NOT HTTP\r\n\r\n",
    ],
)
def test_a_backend_refusing_or_botching_the_upgrade_is_502(response: bytes) -> None:
    d = handshake()
    actions = d.connection.receive(BACKEND, response)
    assert status_of(actions) == 502
    assert Abort(BACKEND) in actions
    assert finished(actions)


def test_a_backend_that_hangs_up_during_its_handshake_is_502() -> None:
    d = handshake()
    actions = d.connection.lost(BACKEND)
    assert status_of(actions) == 502
    assert b"backend closed the connection" in written(actions, CLIENT)


def test_the_open_timeout_drops_a_silent_client_unanswered_and_is_504_while_dialling() -> None:
    clock = Clock()
    c = Connection(gate(clock), peer="p", clock=clock)
    actions = c.timer(Timer.OPEN)
    assert actions == [Abort(CLIENT), Finished()]
    assert c.error == "no handshake request in time"
    d = handshake()
    actions = d.connection.timer(Timer.OPEN)
    assert status_of(actions) == 504
    assert d.gate.metrics.rejections == {504: 1}


def test_a_client_that_leaves_during_the_handshake_ends_it_without_an_answer() -> None:
    d = handshake()
    actions = d.connection.lost(CLIENT)
    assert actions == [Abort(CLIENT), Abort(BACKEND), Finished()]
    assert d.gate.held == 0
    assert d.connection.backend_connected() == [Abort(BACKEND)]  # a late socket is dropped


def test_shutdown_during_the_handshake_is_503() -> None:
    d = handshake()
    actions = d.connection.shutdown()
    assert status_of(actions) == 503


def test_a_reload_during_the_dial_is_401_for_a_revoked_key_and_503_for_a_removed_topic() -> None:
    d = handshake(path="/secure/1.0/feed?apikey=k")
    d.gate.reload(auth=AuthConfig(api_keys={}))
    actions = d.connection.receive(BACKEND, answer(written(d.dial, BACKEND)))
    assert status_of(actions) == 401
    d = handshake()
    d.gate.reload([make_api(topics=make_api().topics[1:]), SECURED])
    actions = d.connection.receive(BACKEND, answer(written(d.dial, BACKEND)))
    assert status_of(actions) == 503
    assert b"reload: topic removed" in written(actions, CLIENT)


# -- closing ---------------------------------------------------------------------------------


def test_a_close_frame_passes_and_the_reply_ends_the_connection() -> None:
    d = opened()
    c = d.connection
    close = raw_frame(8, (1000).to_bytes(2, "big") + b"bye")
    actions = c.receive(CLIENT, close)
    assert written(actions, BACKEND) == close
    assert StartTimer(Timer.CLOSE, d.gate.config.close_timeout) in actions
    assert c.state is State.CLOSING
    actions = c.receive(BACKEND, raw_frame(8, (1000).to_bytes(2, "big"), mask=False))
    assert finished(actions)
    assert (c.close_code, c.close_reason, c.closed_by) == (1000, "bye", "client")
    assert d.gate.metrics.close_codes == {1000: 1}


def test_an_empty_close_frame_is_recorded_as_1005() -> None:
    d = opened()
    d.connection.receive(BACKEND, b"\x88\x00")
    assert d.connection.close_code == CloseCode.NO_STATUS_RCVD


def test_a_client_against_the_policy_gets_its_code_and_the_backend_1001() -> None:
    d = opened(path="/chat/1.0/feed")  # subscribe only: the client may not publish
    actions = d.connection.receive(CLIENT, raw_frame(1, b"hello"))
    assert closes(actions, CLIENT) == [(1008, "topic does not allow publish")]
    assert closes(actions, BACKEND) == [
        (1001, "client policy violation: topic does not allow publish")
    ]
    assert HalfClose(CLIENT) in actions
    assert HalfClose(BACKEND) in actions
    # what the client sends from now on is ignored
    assert d.connection.receive(CLIENT, raw_frame(1, b"more")) == []


def test_a_backend_breaking_the_protocol_gives_the_client_1014() -> None:
    d = opened()
    actions = d.connection.receive(BACKEND, raw_frame(1, b"masked"))  # backends must not mask
    assert closes(actions, CLIENT)[0][0] == CloseCode.BAD_GATEWAY
    assert closes(actions, BACKEND)[0][0] == CloseCode.PROTOCOL_ERROR


def test_a_backend_lost_gives_the_client_1014_and_a_client_lost_gives_the_backend_1001() -> None:
    d = opened()
    actions = d.connection.lost(BACKEND)
    assert closes(actions, CLIENT) == [(1014, "backend connection lost")]
    assert finished(actions)
    assert d.connection.close_code == CloseCode.BAD_GATEWAY
    d = opened()
    actions = d.connection.lost(CLIENT)
    assert closes(actions, BACKEND) == [(1001, "client went away")]
    assert d.connection.close_code == CloseCode.ABNORMAL_CLOSURE
    assert d.connection.closed_by == "client"


def test_shutdown_sends_1001_both_ways_and_ends_when_both_peers_hang_up() -> None:
    d = opened()
    c = d.connection
    actions = c.shutdown()
    assert closes(actions, CLIENT) == [(1001, "relay shutting down")]
    assert closes(actions, BACKEND) == [(1001, "relay closing")]
    assert StartTimer(Timer.CLOSE, d.gate.config.close_timeout) in actions
    assert c.shutdown() == []  # once
    assert c.lost(CLIENT) == []
    assert finished(c.lost(BACKEND))
    assert c.closed_by == "relay"


def test_the_close_timeout_aborts_both_sockets() -> None:
    d = opened()
    d.connection.shutdown()
    actions = d.connection.timer(Timer.CLOSE)
    assert actions[:2] == [Abort(CLIENT), Abort(BACKEND)]
    assert finished(actions)
    assert d.connection.error == "close timeout"


def test_the_drain_timeout_abort_records_1006_when_no_close_was_seen() -> None:
    d = opened()
    actions = d.connection.abort("drain timeout")
    assert finished(actions)
    assert d.connection.close_code == CloseCode.ABNORMAL_CLOSURE
    assert d.connection.abort("again") == []


def test_a_close_frame_never_lands_inside_a_frame() -> None:
    d = opened()
    # half of a backend frame went to the client: a close frame now would corrupt it
    d.connection.receive(BACKEND, raw_frame(2, b"x" * 100, mask=False)[:50])
    actions = d.connection.shutdown()
    assert Abort(CLIENT) in actions
    assert closes(actions, CLIENT) == []
    assert closes(actions, BACKEND) == [(1001, "relay closing")]


# -- timers ----------------------------------------------------------------------------------


def test_idle_timeout_closes_1001_after_no_message_either_way() -> None:
    clock = Clock()
    d = opened(clock, idle_timeout=60.0, ping_interval=None)
    c = d.connection
    clock.now += 60
    c.receive(CLIENT, raw_frame(1, b"busy"))
    assert c.timer(Timer.TICK) == [StartTimer(Timer.TICK, 60.0)]  # a message: not idle
    clock.now += 60
    actions = c.timer(Timer.TICK)
    assert closes(actions, CLIENT) == [(1001, "idle timeout")]


def test_a_side_silent_after_a_ping_is_lost_1011_and_one_that_answers_stays() -> None:
    clock = Clock()
    d = opened(clock, ping_interval=20.0, ping_timeout=10.0, idle_timeout=None)
    c = d.connection
    actions = c.timer(Timer.TICK)
    assert written(actions, CLIENT) == b"\x89\x00"
    assert parse_frames(written(actions, BACKEND))[0][1] == 9  # a masked ping
    assert StartTimer(Timer.PONG, 10.0) in actions
    assert StartTimer(Timer.TICK, 20.0) in actions
    c.receive(CLIENT, raw_frame(10, b""))  # a pong from the client
    c.receive(BACKEND, b"\x8a\x00")  # and from the backend
    assert c.timer(Timer.PONG) == []
    c.timer(Timer.TICK)
    c.receive(CLIENT, raw_frame(10, b""))  # the backend stays silent
    actions = c.timer(Timer.PONG)
    assert closes(actions, CLIENT) == [(1011, "keepalive ping timeout")]


def test_a_ping_waits_for_a_message_in_progress() -> None:
    d = opened(ping_interval=20.0, ping_timeout=10.0, idle_timeout=None)
    d.connection.receive(CLIENT, raw_frame(1, b"part", fin=False))
    actions = d.connection.timer(Timer.TICK)
    assert written(actions, BACKEND) == b""  # it would land inside the client's message
    assert written(actions, CLIENT) == b"\x89\x00"


def test_an_expiring_credential_closes_4001_when_its_timer_fires() -> None:
    clock = Clock()
    d = handshake(clock, path="/secure/1.0/feed?apikey=k")
    admission = d.connection.admission
    assert admission is not None
    principal = attrs.evolve(admission.session.principal, expires_at=clock.now + 30)
    admission.session = attrs.evolve(admission.session, principal=principal)
    actions = d.connection.receive(BACKEND, answer(written(d.dial, BACKEND)))
    assert StartTimer(Timer.EXPIRY, 30.0) in actions
    actions = d.connection.timer(Timer.EXPIRY)
    assert closes(actions, CLIENT) == [(4001, "token expired")]


def test_timers_of_a_finished_connection_do_nothing() -> None:
    d = opened()
    d.connection.lost(CLIENT)
    for timer in Timer:
        assert d.connection.timer(timer) == []


# -- reload, backpressure ----------------------------------------------------------------------


def test_a_reload_that_drops_a_connection_closes_it_with_the_verdicts_code() -> None:
    d = opened()
    actions = d.connection.reloaded(
        Drop(code=CloseCode.SERVICE_RESTART, reason="reload: topic removed")
    )
    assert closes(actions, CLIENT) == [(1012, "reload: topic removed")]


def test_a_reload_that_keeps_a_connection_applies_the_new_policy_from_the_next_message() -> None:
    d = opened()
    frame = raw_frame(1, b"hi")
    assert written(d.connection.receive(CLIENT, frame), BACKEND) == frame
    read_only = make_api(
        topics=(Topic(name="/rooms/{id}", subscribe=TopicOperation(operation=Operation.SUBSCRIBE)),)
    )
    d.gate.reload([read_only, SECURED])
    admission = d.connection.admission
    assert admission is not None
    verdict = d.gate.rejudge(admission, compressed=d.connection.compressed)
    assert d.connection.reloaded(verdict) == []
    actions = d.connection.receive(CLIENT, frame)
    assert closes(actions, CLIENT) == [(1008, "topic does not allow publish")]


def test_a_full_write_buffer_pauses_the_other_side_while_open() -> None:
    d = opened()
    assert d.connection.write_buffer_full(CLIENT) == [PauseReading(BACKEND)]
    assert d.connection.write_buffer_drained(CLIENT) == [ResumeReading(BACKEND)]
    assert d.connection.write_buffer_full(BACKEND) == [PauseReading(CLIENT)]
    d.connection.shutdown()
    assert d.connection.write_buffer_full(BACKEND) == []


def test_a_finished_connection_releases_its_slot_and_logs_what_happened() -> None:
    clock = Clock()
    d = opened(clock, max_connections=1)
    d.connection.receive(CLIENT, raw_frame(1, b"x"))
    clock.now += 1.5
    d.connection.lost(BACKEND)
    assert d.gate.held == 0
    entry = d.connection.log_entry()
    assert entry["status"] == 101
    assert entry["topic"] == "/rooms/{id}"
    assert entry["messages_in"] == 1
    assert entry["close_code"] == 1014
    assert entry["duration_ms"] == 1500.0


def test_a_connection_made_with_an_absolute_form_target_is_kept_by_an_equal_reload() -> None:
    d = opened(path="http://relay.example/chat/1.0/rooms/1")
    admission = d.connection.admission
    assert admission is not None
    d.gate.reload([make_api(), SECURED])
    verdict = d.gate.rejudge(admission, compressed=False)
    assert d.connection.reloaded(verdict) == []
    assert d.connection.state is State.OPEN


def throttled_api() -> StreamingAPI:
    return make_api(throttling=Throttling(events=1, unit=ThrottlingUnit.MINUTE))


def test_a_client_message_over_the_quota_is_dropped_with_wso2s_reply() -> None:
    clock = Clock()
    g = Gate([throttled_api()], RelayConfig(**QUIET), clock=clock, wall=clock)
    c = Connection(g, peer="p", clock=clock)
    dial = (c.receive(CLIENT, request()), c.backend_connected())[1]
    c.receive(BACKEND, answer(written(dial, BACKEND)))
    first, second = raw_frame(1, b"one"), raw_frame(1, b"two")
    assert written(c.receive(CLIENT, first), BACKEND) == first
    actions = c.receive(CLIENT, second)
    assert written(actions, BACKEND) == b""
    assert parse_frames(written(actions, CLIENT)) == [
        (0x81, 1, b"Error code: 4003 reason: Websocket frame throttled out")
    ]
    assert c.state is State.OPEN


def test_a_throttled_client_that_compresses_is_told_client_no_context_takeover() -> None:
    clock = Clock()
    g = Gate([throttled_api()], RelayConfig(**QUIET), clock=clock, wall=clock)
    c = Connection(g, peer="p", clock=clock)
    c.receive(CLIENT, request("/chat/1.0/rooms/1", "Sec-WebSocket-Extensions: permessage-deflate"))
    backend_request = written(c.backend_connected(), BACKEND)
    assert b"Sec-WebSocket-Extensions: permessage-deflate" in backend_request
    actions = c.receive(
        BACKEND, answer(backend_request, "Sec-WebSocket-Extensions: permessage-deflate")
    )
    head = written(actions, CLIENT)
    assert b"Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover" in head
    assert c.compressed
