"""PyPI's websocket-client (synchronous) through the relay: the HTTP status of every refused
upgrade is the one docs/relay.md names, and an accepted session relays both ways; the
standard library's HTTP client finds /health and /metrics on the admin listener only."""

from __future__ import annotations

import asyncio
import http.client
import ssl
import uuid

import pytest
import websocket
from realclients_harness import KEY, SUBPROTOCOL, LoopThread, Stack, open_api

from asyncapi_gw.relay import Relay

pytestmark = pytest.mark.realclients


def _refused(
    url: str, header: dict[str, str] | None = None
) -> websocket.WebSocketBadStatusException:
    with pytest.raises(websocket.WebSocketBadStatusException) as caught:
        websocket.create_connection(url, timeout=5, header=header or {})
    return caught.value


@pytest.mark.parametrize(
    ("path", "header", "status"),
    [
        ("/chat/1.0/x", {}, 401),  # no credentials
        ("/chat/1.0/x?apikey=wrong", {}, 401),
        ("/chat/1.0/x", {"apikey": "wrong"}, 401),
        ("/chat/1.0/x", {"Authorization": "Bearer not-a-token"}, 401),
        (f"/chat/1.0/admin?apikey={KEY}", {}, 403),  # valid key, lacks the topic's scope
        ("/nope/1.0/x", {}, 404),  # no API
        ("/chat/2.0/x", {}, 404),  # no such version
        ("/strict/1.0/other", {}, 404),  # no topic
        ("/dead/1.0/x", {}, 502),  # backend refuses the TCP connection
        ("/refusing/1.0/x", {}, 502),  # backend refuses the upgrade (HTTP 403)
    ],
)
def test_refused_upgrade_statuses(
    stack: Stack, path: str, header: dict[str, str], status: int
) -> None:
    before = stack.stats()
    refused = _refused(f"ws://127.0.0.1:{stack.ws}{path}", header=header)
    assert refused.status_code == status
    assert refused.resp_headers is not None
    assert refused.resp_headers["content-type"].startswith("text/plain")
    assert refused.resp_body
    after = stack.stats()
    assert after.rejections.get(status, 0) - before.rejections.get(status, 0) == 1
    assert after.connections_open == 0


async def _no_open_connections(relay: Relay) -> None:
    for _ in range(250):
        if relay.stats.connections_open == 0:
            return
        await asyncio.sleep(0.02)


def test_max_connections_is_503_until_a_slot_frees(loop_thread: LoopThread, stack: Stack) -> None:
    async def start() -> Relay:
        relay = Relay([open_api("Open", stack.echo_url)], ws_port=0, max_connections=1)
        await relay.start()
        return relay

    relay = loop_thread.run(start())
    try:
        url = f"ws://127.0.0.1:{relay.ports['ws']}/open/1.0/x"
        first = websocket.create_connection(url, timeout=5)
        try:
            assert _refused(url).status_code == 503
            first.send("still here")
            assert first.recv() == "still here"
        finally:
            first.close()
        # the slot is free once the relay has seen the close (bounded wait)
        loop_thread.run(_no_open_connections(relay))
        again = websocket.create_connection(url, timeout=5)
        again.send("slot free")
        assert again.recv() == "slot free"
        again.close()
    finally:
        loop_thread.run(relay.close())


@pytest.mark.parametrize("scheme", ["ws", "wss"])
def test_session_relays_both_ways_with_header_key_and_subprotocol(
    stack: Stack, scheme: str
) -> None:
    run = uuid.uuid4().hex[:12]
    port = stack.ws if scheme == "ws" else stack.wss
    # wss: the relay's certificate is verified against the test's own CA file
    sslopt = {"cert_reqs": ssl.CERT_REQUIRED, "ca_certs": stack.cert}
    ws = websocket.create_connection(
        f"{scheme}://127.0.0.1:{port}/chat/1.0/x?run={run}",
        timeout=5,
        header={"apikey": KEY},
        subprotocols=["chat.v1", SUBPROTOCOL],
        sslopt=sslopt,
    )
    try:
        assert ws.getsubprotocol() == SUBPROTOCOL
        ws.send("text")
        assert ws.recv() == "text"
        ws.send_binary(b"\x00\xff")
        assert ws.recv() == b"\x00\xff"
    finally:
        ws.close(status=4000, reason=b"client done")
    seen = stack.closed_seen(run)
    assert seen.headers["X-Forwarded-Proto"] == scheme
    assert (seen.close_code, seen.close_reason) == (4000, "client done")


def _http_get(port: int, path: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        return answer.status, answer.read().decode()
    finally:
        connection.close()


def test_health_and_metrics_are_on_the_admin_listener_only(stack: Stack) -> None:
    for path in ("/health", "/metrics"):
        status, body = _http_get(stack.ws, path)
        assert status == 404, path
        assert "admin listener" in body
        assert _refused(f"ws://127.0.0.1:{stack.ws}{path}").status_code == 404
    assert _http_get(stack.admin, "/health") == (200, "ok\n")
    status, body = _http_get(stack.admin, "/metrics")
    assert status == 200
    assert "asyncapi_gw_connections_open" in body
