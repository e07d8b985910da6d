"""The handshake helpers give what websockets' own protocol objects give, for less work."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.client import ClientProtocol
from websockets.datastructures import Headers
from websockets.http11 import Request
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from asyncapi_gw.relay.handshake import (
    BackendHandshake,
    HandshakeError,
    HttpRequest,
    RequestParser,
    check_upgrade,
    switching_protocols,
)

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
UPGRADE = (
    "GET /x HTTP/1.1\r\nHost: gw.example:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"
)


def request(extra: str = "", *, head: str = UPGRADE) -> HttpRequest:
    parsed = RequestParser().feed((head + extra + "\r\n").encode("iso-8859-1"))
    assert parsed is not None
    return parsed


@pytest.mark.parametrize(
    "url",
    [
        "ws://127.0.0.1:9000/echo",
        "ws://backend/a/b?x=1&y=%20",
        "wss://user:secret@backend.example/feed",
        "ws://[::1]:81/",
        "wss://backend.example:443",
    ],
)
def test_backend_request_starts_as_websockets_client_request(url: str) -> None:
    plan = BackendHandshake.build(
        url, request(), forward_headers=(), client_host="10.0.0.1", secure_client=False
    )
    client = ClientProtocol(parse_uri(url))
    reference = client.connect().serialize().replace(client.key.encode(), plan.key.encode())
    assert plan.request.startswith(reference[:-2])  # the relay's headers follow
    assert plan.request.endswith(
        b"X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: ws\r\n"
        b"X-Forwarded-Host: gw.example:8080\r\n\r\n"
    )


def test_every_backend_request_has_its_own_key() -> None:
    keys = {
        BackendHandshake.build(
            "ws://b/x", request(), forward_headers=(), client_host="h", secure_client=True
        ).key
        for _ in range(200)  # past a refill of the key pool
    }
    assert len(keys) == 200
    assert {len(base64.b64decode(key, validate=True)) for key in keys} == {16}


@given(
    st.lists(
        st.tuples(
            st.from_regex(r"X-T[A-Za-z0-9-]{0,10}", fullmatch=True),
            st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=20),
        ),
        max_size=5,
    )
)
def test_forwarded_headers_serialize_as_websockets_does(headers: list[tuple[str, str]]) -> None:
    client = request("".join(f"{name}: {value}\r\n" for name, value in headers))
    plan = BackendHandshake.build(
        "ws://b/x",
        client,
        forward_headers=[name for name, _ in headers],
        client_host="h",
        secure_client=True,
    )
    sent = RequestParser().feed(plan.request)
    assert sent is not None
    assert [(n, v) for n, v in sent.headers.raw_items() if n.startswith("X-T")] == headers
    assert plan.request == Request(sent.path, Headers(sent.headers.raw_items())).serialize()


def test_a_backend_path_with_forbidden_characters_is_refused_every_time() -> None:
    for _ in range(2):  # the parsed URL is cached; the refusal must not be
        with pytest.raises(HandshakeError) as caught:
            BackendHandshake.build(
                "ws://b/a b", request(), forward_headers=(), client_host="h", secure_client=False
            )
        assert caught.value.status == 400


@pytest.mark.parametrize(
    ("head", "extra"),
    [
        (UPGRADE, ""),
        (UPGRADE.replace("GET", "POST"), ""),
        (UPGRADE.replace("Upgrade: websocket", "Upgrade: h2c"), ""),
        (UPGRADE.replace("Connection: Upgrade", "Connection: keep-alive"), ""),
        (UPGRADE.replace(KEY, "short"), ""),
        (UPGRADE.replace("Version: 13", "Version: 8"), ""),
        (UPGRADE, f"Sec-WebSocket-Key: {KEY}\r\n"),
        (UPGRADE, "Sec-WebSocket-Extensions: permessage-deflate; x=\r\n"),
    ],
)
def test_check_upgrade_judges_as_a_fresh_websockets_server(head: str, extra: str) -> None:
    client = request(extra, head=head)
    theirs = Request(
        client.path, Headers(client.headers.raw_items()), client.method, client.protocol
    )
    response = ServerProtocol().accept(theirs)
    for _ in range(2):  # the shared checker keeps nothing of an earlier request
        problem = check_upgrade(client)
        if response.status_code == 101:
            assert problem is None
        else:
            assert problem is not None
            assert problem.status == response.status_code


def test_switching_protocols_carries_date_accept_and_the_backend_choices() -> None:
    head = switching_protocols(request(), subprotocol="chat", extensions="permessage-deflate")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 101 Switching Protocols"
    assert lines[1].startswith("Date: ")
    assert lines[1].endswith(" GMT")
    assert "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in lines
    assert "Sec-WebSocket-Protocol: chat" in lines
    assert head.endswith(b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n")
