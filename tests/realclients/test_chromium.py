"""Headless Chromium through the relay: a page served from 127.0.0.1 opens WebSockets (ws and
wss) with the API key in the query, as browsers must, and reports what it observed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import attrs
import pytest
from realclients_harness import (
    ABORT_ME,
    BACKEND_CLOSE,
    CLOSE_ME,
    KEY,
    SUBPROTOCOL,
    Browser,
    LoopThread,
    Stack,
    digest,
    open_api,
    random_bytes,
)

from asyncapi_gw.model import Operation, Throttling, ThrottlingUnit, Topic, TopicOperation
from asyncapi_gw.relay import Relay

pytestmark = pytest.mark.realclients

BIG = "compressible " * 2000


def _url(stack: Stack, scheme: str, path: str) -> str:
    port = stack.ws if scheme == "ws" else stack.wss
    return f"{scheme}://127.0.0.1:{port}{path}"


@pytest.mark.parametrize("scheme", ["ws", "wss"])
def test_page_relays_text_and_binary_with_subprotocol_and_deflate(
    chromium: Browser, stack: Stack, scheme: str
) -> None:
    before = stack.stats()
    sent = ["hello from the page", BIG, {"binary": [0, 1, 127, 128, 255]}]
    run, page = chromium.scenario(
        _url(stack, scheme, f"/chat/1.0/rooms/7?apikey={KEY}&lang=en"),
        send=sent,
        expect=len(sent),
        protocols=["chat.v1", SUBPROTOCOL],
        close=(4000, "page done"),
    )
    after = stack.stats()

    assert page["events"] == ["open", "close"], page
    assert page["received"] == [sent[0], digest(BIG), sent[2]]
    assert page["protocol"] == SUBPROTOCOL
    assert page["extensions"].startswith("permessage-deflate")
    # the page's close frame reached the backend, whose echo of it reached the page
    assert page["close"] == {"code": 4000, "reason": "page done", "clean": True}

    seen = stack.closed_seen(run)
    assert seen.headers["Sec-WebSocket-Protocol"] == f"chat.v1, {SUBPROTOCOL}"
    assert seen.subprotocol == SUBPROTOCOL
    assert seen.extensions == ["permessage-deflate"]
    assert seen.headers["X-Forwarded-Proto"] == scheme
    assert "apikey" not in seen.path
    assert seen.path.startswith("/?lang=en&run=")
    assert (seen.close_code, seen.close_reason) == (4000, "page done")
    # the relay carried Chromium's compressed frames as they were
    assert after.messages_in - before.messages_in == 3
    assert 0 < after.bytes_in - before.bytes_in < len(BIG) // 4


@pytest.mark.parametrize("scheme", ["ws", "wss"])
def test_backend_close_code_and_reason_reach_onclose(
    chromium: Browser, stack: Stack, scheme: str
) -> None:
    _, page = chromium.scenario(
        _url(stack, scheme, f"/chat/1.0/x?apikey={KEY}"), send=[CLOSE_ME], close=None
    )
    assert page["events"] == ["open", "close"], page
    code, reason = BACKEND_CLOSE
    assert page["close"] == {"code": code, "reason": reason, "clean": True}


@pytest.mark.parametrize("query", ["?apikey=wrong", ""])
def test_wrong_or_missing_key_is_a_failed_connection(
    chromium: Browser, stack: Stack, query: str
) -> None:
    before = stack.stats()
    _, page = chromium.scenario(_url(stack, "ws", f"/chat/1.0/x{query}"), send=["never"])
    after = stack.stats()
    # a refused upgrade is opaque to a page: error, then close 1006, never open
    assert page["events"] == ["error", "close"], page
    assert page["close"]["code"] == 1006
    assert page["received"] == []
    assert after.rejections.get(401, 0) - before.rejections.get(401, 0) == 1


@pytest.mark.parametrize("scheme", ["ws", "wss"])
def test_large_messages_cross_intact(chromium: Browser, stack: Stack, scheme: str) -> None:
    noise = {"random": 300_000, "seed": 7}  # incompressible: large deflate frames
    text = {"repeat": "x", "times": 500_000}
    _, page = chromium.scenario(
        _url(stack, scheme, f"/chat/1.0/x?apikey={KEY}"), send=[noise, text], expect=2
    )
    assert page["events"] == ["open", "close"], page
    assert page["received"] == [digest(random_bytes(300_000, 7)), digest("x" * 500_000)]


@pytest.fixture(scope="module")
def small_relay(loop_thread: LoopThread, stack: Stack) -> Iterator[int]:
    """A relay with a 64 KiB message limit in front of the echo backend (whose own limit is
    1 MiB): ``/free/1.0``. Yields its ws port."""

    async def start() -> Relay:
        relay = Relay([open_api("Free", stack.echo_url)], ws_port=0, max_message_size=64 * 1024)
        await relay.start()
        return relay

    relay = loop_thread.run(start())
    yield relay.ports["ws"]
    loop_thread.run(relay.close())


def test_the_limit_holds_on_what_the_page_s_compressed_messages_inflate_to(
    chromium: Browser, stack: Stack, small_relay: int
) -> None:
    url = f"ws://127.0.0.1:{small_relay}/free/1.0/x"
    # similar messages under the limit, both ways: Chromium and the backend take over context
    similar = [f"message {n} " + "similar words " * 4000 for n in range(4)]
    run, page = chromium.scenario(url, send=similar, expect=len(similar))
    assert page["received"] == [digest(m) for m in similar], page
    assert page["extensions"].startswith("permessage-deflate")
    assert stack.closed_seen(run).close_code == 1000
    # 2 MiB of one letter crosses the wire in a few KB: refused by what it inflates to
    run, page = chromium.scenario(url, send=[{"repeat": "a", "times": 2 << 20}], close=None)
    assert page["close"] == {
        "code": 1009,
        "reason": "compressed message inflates past 65536 bytes",
        "clean": True,
    }, page
    seen = stack.closed_seen(run)
    assert (seen.close_code, seen.close_reason) == (  # the message never reached the backend
        1001,
        "client message too big: compressed message inflates past 65536 bytes",
    )


@pytest.fixture(scope="module")
def policy_relay(loop_thread: LoopThread, stack: Stack) -> Iterator[int]:
    """A relay with fast keepalive pings: ``/quota/1.0`` (2 events a minute), ``/free/1.0`` and
    ``/readonly/1.0`` (subscribe only), all to the echo backend. Yields its ws port."""
    subscribe_only = Topic(name="/*", subscribe=TopicOperation(operation=Operation.SUBSCRIBE))
    apis = [
        attrs.evolve(
            open_api("Quota", stack.echo_url),
            throttling=Throttling(events=2, unit=ThrottlingUnit.MINUTE),
        ),
        open_api("Free", stack.echo_url),
        attrs.evolve(open_api("Readonly", stack.echo_url), topics=(subscribe_only,)),
    ]

    async def start() -> Relay:
        relay = Relay(apis, ws_port=0, ping_interval=0.2, ping_timeout=0.2, drain_timeout=2)
        await relay.start()
        return relay

    relay = loop_thread.run(start())
    yield relay.ports["ws"]
    loop_thread.run(relay.close())


def test_relay_pings_are_answered_by_chromium(chromium: Browser, policy_relay: int) -> None:
    # the page stays quiet for several ping intervals; a missing pong would close it 1011
    _, page = chromium.scenario(
        f"ws://127.0.0.1:{policy_relay}/free/1.0/x", send=["late"], expect=1, delay=1200
    )
    assert page["received"] == ["late"], page
    assert page["close"] == {"code": 1000, "reason": "page done", "clean": True}


def test_relay_originated_frames_reach_the_page(
    chromium: Browser, stack: Stack, policy_relay: int
) -> None:
    # throttled frames are answered with WSO2's text frame (uncompressed, beside deflate ones)
    _, page = chromium.scenario(
        f"ws://127.0.0.1:{policy_relay}/quota/1.0/x", send=["1", "2", "3", "4"], expect=4
    )
    throttled = "Error code: 4003 reason: Websocket frame throttled out"
    assert sorted(page["received"]) == sorted(["1", "2", throttled, throttled]), page
    assert page["close"]["code"] == 1000
    # a message against the topic's direction: close 1008 from the relay
    _, page = chromium.scenario(
        f"ws://127.0.0.1:{policy_relay}/readonly/1.0/x", send=["no"], close=None
    )
    assert page["close"] == {"code": 1008, "reason": "topic does not allow publish", "clean": True}
    # the backend's TCP connection drops: close 1014 from the relay
    _, page = chromium.scenario(
        _url(stack, "ws", f"/chat/1.0/x?apikey={KEY}"), send=[ABORT_ME], close=None
    )
    assert page["close"] == {"code": 1014, "reason": "backend connection lost", "clean": True}


def test_closing_the_tab_closes_the_backend(chromium: Browser, stack: Stack) -> None:
    query = f"apikey={KEY}&q=a%20b&check=%E2%9C%93&empty="
    run, page = chromium.scenario(
        _url(stack, "ws", f"/chat/1.0/x?{query}"), send=["hi"], expect=1, hold=True
    )
    assert page["events"] == ["open"], page
    seen = stack.closed_seen(run)  # the tab was closed after its report: Chromium's 1001
    assert seen.close_code == 1001
    assert seen.path == f"/?q=a%20b&check=%E2%9C%93&empty=&run={run}"  # credentials removed


def test_relay_drain_reaches_the_page_as_1001(
    chromium: Browser, loop_thread: LoopThread, stack: Stack
) -> None:
    async def start() -> Relay:
        relay = Relay([open_api("Free", stack.echo_url)], ws_port=0, drain_timeout=2)
        await relay.start()
        return relay

    async def drain_once_echoed(relay: Relay) -> None:
        for _ in range(500):
            if relay.stats.messages_out:
                break
            await asyncio.sleep(0.02)
        await relay.close()

    relay = loop_thread.run(start())
    draining = asyncio.run_coroutine_threadsafe(drain_once_echoed(relay), loop_thread.loop)
    try:
        _, page = chromium.scenario(
            f"ws://127.0.0.1:{relay.ports['ws']}/free/1.0/x", send=["a"], expect=2
        )
    finally:
        draining.result(15)
    assert page["received"] == ["a"], page
    assert page["close"] == {"code": 1001, "reason": "relay shutting down", "clean": True}
