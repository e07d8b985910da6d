"""npm's wscat through the relay: messages relayed and echoed, subprotocols and refused
upgrades printed with their HTTP status through every front (the listener, and the ASGI app
mounted in FastAPI under uvicorn and run by hypercorn), wss with a self-signed certificate."""

from __future__ import annotations

import uuid

import pytest
from realclients_harness import (
    BACKEND_CLOSE,
    CLOSE_ME,
    KEY,
    SUBPROTOCOL,
    Front,
    Stack,
    run_wscat,
)

pytestmark = pytest.mark.realclients

# (path, wscat's header options, the HTTP status) of upgrades every front refuses
REFUSED: list[tuple[str, tuple[str, ...], int]] = [
    ("/chat/1.0/x", ("-H", "apikey: wrong"), 401),
    ("/chat/1.0/x", (), 401),
    ("/nope/1.0/x", (), 404),
    ("/strict/1.0/other", (), 404),
    ("/dead/1.0/x", (), 502),
]


def test_messages_are_relayed_and_echoes_printed(wscat: str, stack: Stack, ws_front: Front) -> None:
    run = uuid.uuid4().hex[:12]
    url = f"{ws_front.url}/chat/1.0/rooms/1?run={run}"
    first, second = f"hello {run}", f"second {run}"
    code, out = run_wscat(
        wscat, "-c", url, "-H", f"apikey: {KEY}", "-x", first, "-x", second, "-w", "1"
    )
    assert (code, out.splitlines()) == (0, [first, second])
    seen = stack.closed_seen(run)
    assert "apikey" not in {name.lower() for name in seen.headers}
    assert seen.headers["X-Forwarded-Proto"] == "ws"


def test_wss_with_a_self_signed_certificate_needs_no_check(wscat: str, stack: Stack) -> None:
    run = uuid.uuid4().hex[:12]
    url = f"wss://127.0.0.1:{stack.wss}/chat/1.0/x?run={run}"
    args = ("-c", url, "-H", f"apikey: {KEY}", "-x", f"secure {run}", "-w", "1")
    assert run_wscat(wscat, "-n", *args) == (0, f"secure {run}\n")
    assert stack.seen_for(run).headers["X-Forwarded-Proto"] == "wss"
    # without -n wscat checks the relay's certificate, which nobody signed
    code, out = run_wscat(wscat, *args)
    assert code != 0
    assert out == "error: self-signed certificate\n"


def test_subprotocol_is_negotiated_and_backend_close_ends_the_session(
    wscat: str, stack: Stack, ws_front: Front
) -> None:
    run = uuid.uuid4().hex[:12]
    url = f"{ws_front.url}/chat/1.0/x?run={run}"
    # wscat (the ws library) fails when the 101 lacks the subprotocol the backend chose
    code, out = run_wscat(
        wscat,
        "-c",
        url,
        "-H",
        f"apikey: {KEY}",
        "-s",
        "chat.v1",
        "-s",
        SUBPROTOCOL,
        "-x",
        CLOSE_ME,
        "-w",
        "1",
    )
    assert (code, out) == (0, "")
    seen = stack.closed_seen(run)
    offered = [p.strip() for p in seen.headers["Sec-WebSocket-Protocol"].split(",")]
    assert offered == ["chat.v1", SUBPROTOCOL]
    assert seen.subprotocol == SUBPROTOCOL
    assert (seen.close_code, seen.close_reason) == BACKEND_CLOSE


@pytest.mark.parametrize(("path", "headers", "status"), REFUSED)
def test_refused_upgrade_is_an_error_with_the_status(
    wscat: str, ws_front: Front, path: str, headers: tuple[str, ...], status: int
) -> None:
    url = f"{ws_front.url}{path}"
    code, out = run_wscat(wscat, "-c", url, *headers, "-x", "never sent", "-w", "1")
    assert code != 0
    assert out == f"error: Unexpected server response: {status}\n"
