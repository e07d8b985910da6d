"""The gate, synchronously: admission in its order, refusals, capacity, per-message verdicts,
and a reload's judgement, with injected clocks and no sockets."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from sync_harness import SECURED, Clock, make_api

from asyncapi_gw.model import (
    AuthKind,
    SecurityScheme,
    StreamingAPI,
    Throttling,
    ThrottlingUnit,
)
from asyncapi_gw.relay.auth import ApiKeyInfo, AuthConfig
from asyncapi_gw.relay.closecode import CloseCode, is_sendable
from asyncapi_gw.relay.config import RelayConfig
from asyncapi_gw.relay.gate import Admission, Deliver, Discard, Gate, Refusal
from asyncapi_gw.relay.quota import THROTTLED_MESSAGE
from asyncapi_gw.relay.reload import Drop, Keep
from asyncapi_gw.relay.stream import Close

KEYS = {
    "reader": ApiKeyInfo(scopes={"read"}, name="reader"),
    "tester": ApiKeyInfo(environment="sandbox", name="tester"),
}


def gate(*apis: StreamingAPI, clock: Clock | None = None, **options: Any) -> Gate:
    config = RelayConfig(auth=AuthConfig(api_keys=KEYS), **options)
    clock = clock or Clock()
    return Gate(apis or (make_api(), SECURED), config, clock=clock, wall=clock)


def admitted(g: Gate, target: str, headers: list[tuple[str, str]] | None = None) -> Admission:
    found = g.admit(target, headers or [], peer="10.0.0.1")
    assert isinstance(found, Admission), found
    return found


def refused(g: Gate, target: str, headers: list[tuple[str, str]] | None = None) -> Refusal:
    found = g.admit(target, headers or [], peer="10.0.0.1")
    assert isinstance(found, Refusal), found
    return found


# -- admission -------------------------------------------------------------------------------


def test_an_admission_carries_the_route_backend_and_the_clients_subprotocols() -> None:
    g = gate(principal_header="X-Principal")
    a = admitted(
        g,
        "/chat/1.0/rooms/lobby?lang=en",
        [("Sec-WebSocket-Protocol", "chat.v2, chat.v1"), ("sec-websocket-protocol", "x")],
    )
    assert a.route.topic.name == "/rooms/{id}"
    assert a.route.params == {"id": "lobby"}
    assert a.backend_url == "ws://backend.example:8080/ws?lang=en"
    assert a.subprotocols == ("chat.v2", "chat.v1", "x")
    assert a.backend_headers == (("X-Principal", '{"auth":"none","principal":null,"scopes":[]}'),)
    assert a.offer_compression
    assert g.held == 1


@pytest.mark.parametrize(
    ("target", "status"),
    [("/nowhere", 404), ("/chat/1.0/rooms", 404), ("rooms", 400), ("/chat/1.0/feed#x", 400)],
)
def test_an_unrouted_target_is_refused_before_auth_and_holds_no_slot(
    target: str, status: int
) -> None:
    g = gate()
    refusal = refused(g, target, [("apikey", "wrong")])
    assert refusal.status == status
    assert refusal.route is None
    assert g.held == 0
    assert g.metrics.rejections == {status: 1}


def test_a_missing_credential_is_401_with_its_challenge_and_the_route_for_the_log() -> None:
    g = gate()
    refusal = refused(g, "/secure/1.0/feed")
    assert refusal.status == 401
    assert refusal.headers
    assert refusal.headers[0][0] == "WWW-Authenticate"
    assert refusal.route is not None
    assert refusal.route.topic.name == "/feed"
    assert g.held == 0


def test_a_sandbox_credential_on_an_api_without_a_sandbox_endpoint_is_403() -> None:
    refusal = refused(gate(), "/secure/1.0/feed", [("apikey", "tester")])
    assert refusal.status == 403
    assert "sandbox" in refusal.reason


def test_capacity_is_503_after_auth_and_a_released_slot_comes_back() -> None:
    g = gate(max_connections=2)
    first = admitted(g, "/chat/1.0/feed")
    admitted(g, "/chat/1.0/feed")
    assert refused(g, "/secure/1.0/feed").status == 401  # auth is judged before capacity
    full = refused(g, "/chat/1.0/feed")
    assert (full.status, full.reason) == (503, "too many connections")
    assert full.session is not None  # routed and authorized: the log says who
    g.release(first)
    g.release(first)  # twice is once
    assert g.held == 1
    admitted(g, "/chat/1.0/feed")


def test_a_closed_gate_refuses_503() -> None:
    g = gate()
    g.close()
    refusal = refused(g, "/chat/1.0/feed")
    assert (refusal.status, refusal.reason) == (503, "the relay is shutting down")


def test_validated_topics_are_not_offered_compression() -> None:
    g = gate(validate_messages=True)
    assert not admitted(g, "/chat/1.0/orders").offer_compression
    assert admitted(g, "/chat/1.0/feed").offer_compression  # no schema there
    assert not admitted(gate(compression=False), "/chat/1.0/feed").offer_compression


def test_accept_counts_the_connection_open_and_release_closed() -> None:
    g = gate()
    a = admitted(g, "/chat/1.0/feed")
    assert g.accept(a, compressed=False) is None
    assert g.metrics.connections_open == 1
    g.release(a, CloseCode.NORMAL_CLOSURE)
    assert g.metrics.connections_open == 0
    assert g.metrics.close_codes == {1000: 1}
    b = admitted(g, "/chat/1.0/feed")
    g.release(b)  # never accepted: no close code counted
    assert g.metrics.close_codes == {1000: 1}


# -- per message -----------------------------------------------------------------------------


def verdict(g: Gate, a: Admission, payload: bytes = b"{}", *, client: bool = True) -> Any:
    return g.verdict(a, from_client=client, text=True, payload=payload)


def test_a_message_against_the_direction_closes_1008_or_is_discarded() -> None:
    g = gate()
    a = admitted(g, "/chat/1.0/feed")
    g.accept(a, compressed=False)
    assert verdict(g, a) == Close(CloseCode.POLICY_VIOLATION, "topic does not allow publish")
    assert verdict(g, a, client=False) == Deliver()
    d = gate(on_wrong_direction="drop")
    b = admitted(d, "/chat/1.0/feed")
    assert verdict(d, b) == Discard()


def test_a_message_over_the_size_limit_closes_1009() -> None:
    g = gate(max_message_size=4)
    a = admitted(g, "/chat/1.0/rooms/1")
    assert verdict(g, a, b"1234") == Deliver()
    assert verdict(g, a, b"12345") == Close(
        CloseCode.MESSAGE_TOO_BIG, "message of 5 bytes exceeds 4"
    )


def test_the_quota_refuses_client_messages_with_wso2s_reply_or_4003_until_the_window_ends() -> None:
    clock = Clock()
    throttled = make_api(throttling=Throttling(events=2, unit=ThrottlingUnit.SECOND))
    g = gate(throttled, clock=clock)
    a = admitted(g, "/chat/1.0/rooms/1")
    g.accept(a, compressed=False)
    assert [verdict(g, a) for _ in range(3)] == [Deliver(), Deliver(), Discard(THROTTLED_MESSAGE)]
    assert verdict(g, a, client=False) == Deliver()  # the backend's messages are not counted
    clock.now += 1
    assert verdict(g, a) == Deliver()
    c = gate(throttled, clock=clock, on_throttle="close")
    b = admitted(c, "/chat/1.0/rooms/1")
    c.accept(b, compressed=False)
    verdict(c, b), verdict(c, b)
    assert verdict(c, b) == Close(CloseCode.THROTTLED, "Websocket frame throttled out")


def test_invalid_messages_close_1007_or_are_discarded() -> None:
    g = gate(validate_messages=True)
    a = admitted(g, "/chat/1.0/orders")
    assert verdict(g, a, b'{"id": 1}') == Deliver()
    assert verdict(g, a, b"{}") == Close(CloseCode.INVALID_DATA, "message failed validation")
    assert g.verdict(a, from_client=True, text=False, payload=b'{"id": 1}') == Close(
        CloseCode.INVALID_DATA, "message failed validation"
    )  # binary never fits a schema
    d = gate(validate_messages=True, on_invalid="drop")
    assert verdict(d, admitted(d, "/chat/1.0/orders"), b"[]") == Discard()


def test_frame_policies_follow_the_same_rules() -> None:
    throttled = make_api(throttling=Throttling(events=2, unit=ThrottlingUnit.SECOND))
    g = gate(throttled, validate_messages=True)
    a = admitted(g, "/chat/1.0/orders")
    g.accept(a, compressed=False)
    client, backend = g.policies(a, deflate=(None, None))
    assert client.allowed
    assert client.quota is a.quota
    assert client.validator is not None
    assert not backend.allowed
    assert backend.quota is None
    assert backend.wrong_direction() == Close(
        CloseCode.POLICY_VIOLATION, "topic does not allow subscribe"
    )
    assert g.policies(a, deflate=(None, None))[1] is backend  # built once per topic


# -- reload ----------------------------------------------------------------------------------


def test_a_reload_while_the_backend_is_dialled_refuses_401_or_503() -> None:
    g = gate()
    removed = admitted(g, "/chat/1.0/rooms/1")
    revoked = admitted(g, "/secure/1.0/feed", [("apikey", "reader")])
    kept = admitted(g, "/chat/1.0/feed")
    g.reload([make_api(topics=make_api().topics[1:]), SECURED], auth=AuthConfig(api_keys={}))
    refusal = g.accept(removed, compressed=False)
    assert refusal is not None
    assert (refusal.status, refusal.reason) == (
        503,
        "reload: topic removed",
    )
    refusal = g.accept(revoked, compressed=False)
    assert refusal is not None
    assert refusal.status == 401
    assert g.accept(kept, compressed=False) is None
    assert g.config.auth == AuthConfig(api_keys={})


def test_rejudge_moves_a_kept_connection_to_its_new_quota_and_says_why_others_close() -> None:
    g = gate()
    a = admitted(g, "/chat/1.0/rooms/1")
    b = admitted(g, "/chat/1.0/feed")
    g.accept(a, compressed=False)
    g.accept(b, compressed=False)
    assert a.quota is None
    throttled = make_api(
        topics=make_api().topics[:1], throttling=Throttling(events=1, unit=ThrottlingUnit.DAY)
    )
    g.reload([throttled, SECURED])
    verdict_a = g.rejudge(a, compressed=False)
    assert isinstance(verdict_a, Keep)
    assert verdict_a.quota_changed
    assert a.quota is not None
    assert a.route.api is throttled
    assert g.rejudge(b, compressed=False) == Drop(
        code=CloseCode.SERVICE_RESTART, reason="reload: topic removed"
    )
    assert verdict(g, a) == Deliver()
    assert verdict(g, a) == Discard(THROTTLED_MESSAGE)


def test_a_credentials_expiry_is_counted_on_the_wall_clock() -> None:
    clock = Clock()
    g = gate(clock=clock)
    a = admitted(g, "/chat/1.0/feed")
    assert g.expires_in(a) is None
    a.session = attrs.evolve(
        a.session, principal=attrs.evolve(a.session.principal, expires_at=clock.now + 30)
    )
    assert g.expires_in(a) == 30
    clock.now += 45
    assert g.expires_in(a) == 0


def test_a_connection_s_deadline_is_its_credential_s_expiry_or_its_idle_timeout() -> None:
    """What the fronts that time connections themselves wait for, and then close with."""
    clock = Clock()
    g = gate(clock=clock, idle_timeout=10.0)
    a = admitted(g, "/chat/1.0/feed")
    assert g.deadline(a, last_message=100.0, now=104.0) == 6.0
    assert g.overdue(a, last_message=100.0, now=109.9) is None
    assert g.overdue(a, last_message=100.0, now=110.0) == (1001, "idle timeout")
    a.session = attrs.evolve(
        a.session, principal=attrs.evolve(a.session.principal, expires_at=clock.now + 3)
    )
    assert g.deadline(a, last_message=100.0, now=104.0) == 3.0  # the expiry comes first
    clock.now += 3
    assert g.overdue(a, last_message=100.0, now=110.0) == (4001, "token expired")
    untimed = gate(clock=clock, idle_timeout=None)
    assert untimed.deadline(admitted(untimed, "/chat/1.0/feed"), 0.0, now=1e9) is None


def test_warnings_name_apis_that_refuse_every_credential_of_a_kind() -> None:
    jwt_api = make_api(security=(SecurityScheme(name="oauth", kind=AuthKind.OAUTH2),))
    assert any("no JWT key" in w for w in gate(jwt_api).warnings())


# -- close codes -----------------------------------------------------------------------------


def test_close_codes_that_report_a_missing_close_frame_are_never_sent() -> None:
    sent = [c for c in CloseCode if is_sendable(c)]
    assert CloseCode.ABNORMAL_CLOSURE not in sent
    assert CloseCode.NO_STATUS_RCVD not in sent
    assert CloseCode.TLS_HANDSHAKE not in sent
    assert CloseCode.REVOKED in sent
    assert CloseCode.THROTTLED in sent
    assert is_sendable(3000)
    assert is_sendable(4999)
    assert not is_sendable(5000)
    assert not is_sendable(1004)
    assert not is_sendable(999)
