"""Real clients through the ASGI front: headless Chromium, npm's wscat and PyPI's
websocket-client against the relay mounted in FastAPI under uvicorn, and run directly by
hypercorn, in front of the same backends as the listener's real-client tests."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import attrs
import pytest
import websocket
from asgi_servers import mounted, server
from realclients_harness import (
    BACKEND_CLOSE,
    CLOSE_ME,
    KEY,
    REFUSED,
    SUBPROTOCOL,
    Browser,
    LoopThread,
    Stack,
    chat_api,
    digest,
    open_api,
    run_wscat,
)

from asyncapi_gw.relay import ApiKeyInfo, AsgiRelay, AuthConfig

pytestmark = pytest.mark.realclients

KINDS = ("uvicorn-sansio+fastapi", "hypercorn")


@attrs.frozen
class Front:
    kind: str
    url: str  # ws:// up to the mount: the gateway path follows


@pytest.fixture(scope="module", params=KINDS)
def front(request: pytest.FixtureRequest, loop_thread: LoopThread, stack: Stack) -> Iterator[Front]:
    """The ASGI front ``request.param`` in front of the stack's backends."""
    kind: str = request.param
    relay = AsgiRelay(
        [
            chat_api(stack.echo_url),
            open_api("Dead", "ws://127.0.0.1:9"),
            open_api("Strict", stack.echo_url, topic="/rooms"),
        ],
        auth=AuthConfig(api_keys={KEY: ApiKeyInfo()}),
    )
    app, base = mounted(kind, relay)
    exits = contextlib.AsyncExitStack()

    async def start() -> int:
        port: int = await exits.enter_async_context(server(kind, app))
        return port

    async def stop() -> None:
        await exits.aclose()

    port = loop_thread.run(start())
    yield Front(kind, f"ws://127.0.0.1:{port}{base}")
    loop_thread.run(stop())


def test_wscat_messages_are_relayed(wscat: str, stack: Stack, front: Front) -> None:
    run = uuid.uuid4().hex[:12]
    first, second = f"hello {run}", f"second {run}"
    url = f"{front.url}/chat/1.0/rooms/1?run={run}"
    code, out = run_wscat(
        wscat, "-c", url, "-H", f"apikey: {KEY}", "-x", first, "-x", second, "-w", "1"
    )
    assert (code, out.splitlines()) == (0, [first, second])
    seen = stack.closed_seen(run)
    assert "apikey" not in {name.lower() for name in seen.headers}
    assert seen.headers["X-Forwarded-Proto"] == "ws"


def test_wscat_gets_the_backends_subprotocol_and_close(
    wscat: str, stack: Stack, front: Front
) -> None:
    run = uuid.uuid4().hex[:12]
    url = f"{front.url}/chat/1.0/x?run={run}"
    # wscat (the ws library) fails when the 101 lacks the subprotocol the backend chose
    args = ("-c", url, "-H", f"apikey: {KEY}", "-s", "chat.v1", "-s", SUBPROTOCOL)
    code, out = run_wscat(wscat, *args, "-x", CLOSE_ME, "-w", "1")
    assert (code, out) == (0, "")
    seen = stack.closed_seen(run)
    assert seen.subprotocol == SUBPROTOCOL
    assert (seen.close_code, seen.close_reason) == BACKEND_CLOSE


@pytest.mark.parametrize(("path", "headers", "status"), REFUSED)
def test_wscat_prints_the_status_of_a_refused_upgrade(
    wscat: str, front: Front, path: str, headers: tuple[str, ...], status: int
) -> None:
    code, out = run_wscat(
        wscat, "-c", f"{front.url}{path}", *headers, "-x", "never sent", "-w", "1"
    )
    assert code != 0
    assert out == f"error: Unexpected server response: {status}\n"


def test_websocket_client_sees_statuses_challenges_and_close_codes(front: Front) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(f"{front.url}/chat/1.0/x", timeout=5)
    assert refused.value.status_code == 401
    assert refused.value.resp_headers is not None
    assert refused.value.resp_headers["www-authenticate"] == 'ApiKey realm="Chat"'
    ws = websocket.create_connection(f"{front.url}/chat/1.0/x?apikey={KEY}", timeout=5)
    ws.send("both ways")
    assert ws.recv() == "both ways"
    ws.send(CLOSE_ME)
    opcode, payload = ws.recv_data(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert (int.from_bytes(payload[:2], "big"), payload[2:].decode()) == BACKEND_CLOSE
    ws.close()


def test_chromium_relays_through_the_asgi_front(
    chromium: Browser, stack: Stack, front: Front
) -> None:
    big = "compressible " * 2000
    sent = ["hello from the page", big, {"binary": [0, 1, 127, 128, 255]}]
    run, page = chromium.scenario(
        f"{front.url}/chat/1.0/rooms/7?apikey={KEY}&lang=en",
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
    closed = (1001, "client went away") if front.kind == "hypercorn" else (4000, "page done")
    assert (seen.close_code, seen.close_reason) == closed


def test_chromium_sees_the_backends_close_and_a_refusal(chromium: Browser, front: Front) -> None:
    _, page = chromium.scenario(f"{front.url}/chat/1.0/x?apikey={KEY}", send=[CLOSE_ME], close=None)
    assert page["events"] == ["open", "close"], page
    assert page["close"] == {"code": BACKEND_CLOSE[0], "reason": BACKEND_CLOSE[1], "clean": True}
    _, page = chromium.scenario(f"{front.url}/chat/1.0/x", close=None)  # no key: 401
    assert page["events"] == ["error", "close"], page
    assert page["close"]["code"] == 1006
