"""Reloads seen by clients nobody here wrote: PyPI's websocket-client and headless Chromium
connected through a relay whose document and API keys change under them."""

from __future__ import annotations

import asyncio
import struct

import attrs
import pytest
import websocket
from realclients_harness import Browser, LoopThread, Stack, chat_api

from asyncapi_gw.model import Topic
from asyncapi_gw.relay import ApiKeyInfo, AuthConfig, Relay, ReloadReport

pytestmark = pytest.mark.realclients

KEYS = {"alice-key": ApiKeyInfo(), "bob-key": ApiKeyInfo(scopes={"admin"})}


def _start(loop_thread: LoopThread, stack: Stack) -> Relay:
    async def start() -> Relay:
        relay = Relay([chat_api(stack.echo_url)], ws_port=0, auth=AuthConfig(api_keys=KEYS))
        await relay.start()
        return relay

    return loop_thread.run(start())


def _reload(loop_thread: LoopThread, relay: Relay, **changes: object) -> ReloadReport:
    async def reload() -> ReloadReport:  # on the relay's own loop
        return relay.reload(**changes)  # type: ignore[arg-type]

    return loop_thread.run(reload())


def _close_frame(ws: websocket.WebSocket) -> tuple[int, str]:
    """The close code and reason websocket-client receives next."""
    opcode, data = ws.recv_data(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    return struct.unpack("!H", data[:2])[0], data[2:].decode()


def test_websocket_client_sees_1012_for_its_removed_topic_and_4001_for_its_revoked_key(
    loop_thread: LoopThread, stack: Stack
) -> None:
    relay = _start(loop_thread, stack)
    url = f"ws://127.0.0.1:{relay.ports['ws']}/chat/1.0"
    try:
        alice = websocket.create_connection(f"{url}/x", timeout=5, header={"apikey": "alice-key"})
        admin = websocket.create_connection(f"{url}/admin?apikey=bob-key", timeout=5)
        bob = websocket.create_connection(f"{url}/x?apikey=bob-key", timeout=5)
        for ws in (alice, admin, bob):
            ws.send("before")
            assert ws.recv() == "before"
        api = chat_api(stack.echo_url)
        without_admin = api.with_topics([t for t in api.topics if t.name != "/admin"])
        report = _reload(loop_thread, relay, apis=[attrs.evolve(without_admin, description="v2")])
        assert (report.kept, report.closed) == (2, {(1012, "reload: topic removed"): 1})
        assert _close_frame(admin) == (1012, "reload: topic removed")
        report = _reload(loop_thread, relay, auth=AuthConfig(api_keys={"bob-key": KEYS["bob-key"]}))
        assert report.closed == {(4001, "reload: API key revoked"): 1}
        assert _close_frame(alice) == (4001, "reload: API key revoked")
        bob.send("after both reloads")
        assert bob.recv() == "after both reloads"
        bob.close()
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(f"{url}/x?apikey=alice-key", timeout=5)
        assert refused.value.status_code == 401
        # reconnecting meets the new document: /admin is now the wildcard topic's
        again = websocket.create_connection(f"{url}/admin?apikey=bob-key", timeout=5)
        again.send("via /*")
        assert again.recv() == "via /*"
        again.close()
    finally:
        loop_thread.run(relay.close())


def test_chromium_sees_its_revoked_key_close_4001(
    chromium: Browser, loop_thread: LoopThread, stack: Stack
) -> None:
    relay = _start(loop_thread, stack)

    async def revoke_once_echoed() -> ReloadReport:
        for _ in range(500):
            if relay.stats.messages_out:
                break
            await asyncio.sleep(0.02)
        return relay.reload(auth=AuthConfig(api_keys={"bob-key": KEYS["bob-key"]}))

    revoking = asyncio.run_coroutine_threadsafe(revoke_once_echoed(), loop_thread.loop)
    try:
        _, page = chromium.scenario(
            f"ws://127.0.0.1:{relay.ports['ws']}/chat/1.0/x?apikey=alice-key",
            send=["hello"],
            expect=1,
            close=None,  # the page waits for the relay to close
        )
        assert revoking.result(15).closed == {(4001, "reload: API key revoked"): 1}
    finally:
        loop_thread.run(relay.close())
    assert page["received"] == ["hello"], page
    assert page["close"] == {"code": 4001, "reason": "reload: API key revoked", "clean": True}


def test_the_topics_that_did_not_change_keep_their_chromium_page(
    chromium: Browser, loop_thread: LoopThread, stack: Stack
) -> None:
    relay = _start(loop_thread, stack)
    api = chat_api(stack.echo_url)
    news = Topic(name="/news", subscribe=api.topics[0].subscribe)

    async def add_a_topic_then_drain() -> ReloadReport:
        for _ in range(500):
            if relay.stats.messages_out:
                break
            await asyncio.sleep(0.02)
        report = relay.reload([api.with_topics([*api.topics, news])])
        await asyncio.sleep(0.3)  # the page would see a close now if the reload sent one
        await relay.close()
        return report

    acting = asyncio.run_coroutine_threadsafe(add_a_topic_then_drain(), loop_thread.loop)
    _, page = chromium.scenario(
        f"ws://127.0.0.1:{relay.ports['ws']}/chat/1.0/x?apikey=alice-key",
        send=["hello"],
        expect=1,
        close=None,
    )
    assert acting.result(15) == ReloadReport(kept=1)
    assert page["close"] == {"code": 1001, "reason": "relay shutting down", "clean": True}
