"""Headless Chromium through the relay: a page served from 127.0.0.1 opens WebSockets (ws and
wss) with the API key in the query, as browsers must, and reports what it observed."""

from __future__ import annotations

import pytest
from realclients_harness import BACKEND_CLOSE, CLOSE_ME, KEY, SUBPROTOCOL, Browser, Stack

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
    assert page["received"] == sent
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
