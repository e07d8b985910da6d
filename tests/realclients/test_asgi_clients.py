"""Headless Chromium and PyPI's websocket-client through the ASGI front: the relay mounted in
FastAPI under uvicorn, and run directly by hypercorn, in front of the same backends as the
listener's real-client tests (wscat runs through every front in test_wscat.py)."""

from __future__ import annotations

import pytest
import websocket
from realclients_harness import (
    BACKEND_CLOSE,
    CLOSE_ME,
    KEY,
    SUBPROTOCOL,
    Browser,
    Front,
    Stack,
    digest,
)

pytestmark = pytest.mark.realclients


def test_websocket_client_sees_statuses_challenges_and_close_codes(asgi_front: Front) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(f"{asgi_front.url}/chat/1.0/x", timeout=5)
    assert refused.value.status_code == 401
    assert refused.value.resp_headers is not None
    assert refused.value.resp_headers["www-authenticate"] == 'ApiKey realm="Chat"'
    ws = websocket.create_connection(f"{asgi_front.url}/chat/1.0/x?apikey={KEY}", timeout=5)
    ws.send("both ways")
    assert ws.recv() == "both ways"
    ws.send(CLOSE_ME)
    opcode, payload = ws.recv_data(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert (int.from_bytes(payload[:2], "big"), payload[2:].decode()) == BACKEND_CLOSE
    ws.close()


def test_chromium_relays_through_the_asgi_front(
    chromium: Browser, stack: Stack, asgi_front: Front
) -> None:
    big = "compressible " * 2000
    sent = ["hello from the page", big, {"binary": [0, 1, 127, 128, 255]}]
    run, page = chromium.scenario(
        f"{asgi_front.url}/chat/1.0/rooms/7?apikey={KEY}&lang=en",
        send=sent,
        expect=len(sent),
        protocols=["chat.v1", SUBPROTOCOL],
        close=(4000, "page done"),
    )
    assert page["events"] == ["open", "close"], page
    assert page["received"] == [sent[0], digest(big), sent[2]]
    assert page["protocol"] == SUBPROTOCOL
    assert page["extensions"].startswith("permessage-deflate")  # the server's, with the page
    seen = stack.closed_seen(run)
    assert seen.subprotocol == SUBPROTOCOL
    assert seen.path.startswith("/?lang=en&run=")
    # hypercorn reports every close a client starts as 1006: the backend then gets 1001
    closed = (1001, "client went away") if asgi_front.kind == "hypercorn" else (4000, "page done")
    assert (seen.close_code, seen.close_reason) == closed


def test_chromium_sees_the_backends_close_and_a_refusal(
    chromium: Browser, asgi_front: Front
) -> None:
    _, page = chromium.scenario(
        f"{asgi_front.url}/chat/1.0/x?apikey={KEY}", send=[CLOSE_ME], close=None
    )
    assert page["events"] == ["open", "close"], page
    assert page["close"] == {"code": BACKEND_CLOSE[0], "reason": BACKEND_CLOSE[1], "clean": True}
    _, page = chromium.scenario(f"{asgi_front.url}/chat/1.0/x", close=None)  # no key: 401
    assert page["events"] == ["error", "close"], page
    assert page["close"]["code"] == 1006
