"""The relay shell against peers that break the protocol, and the HTTP answers RFC 9110/9112 and
RFC 6750 ask for, over real loopback sockets (raw bytes where a real client would not misbehave).
"""

from __future__ import annotations

import asyncio
import json
import struct
from pathlib import Path

import pytest
from jwt_tokens import hs256
from raw_frames import RawBackend, parse_frames, raw_backend, raw_frame
from relay_harness import (
    UPGRADE,
    api,
    backend,
    client,
    closed_code,
    embedded,
    http_get,
    run,
    topic,
)
from websockets.exceptions import InvalidStatus

from asyncapi_gw.model import (
    AuthKind,
    AuthType,
    Operation,
    SecurityScheme,
    StreamingAPI,
    Topic,
    TopicOperation,
)
from asyncapi_gw.relay import ApiKeyInfo, AuthConfig, Relay

_QUICK = {"close_timeout": 1.0, "ping_interval": None}


def _close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


# What a backend may send that breaks RFC 6455, and the reason the relay gives it with 1002.
BACKEND_VIOLATIONS = {
    "close code 1005": (raw_frame(8, _close_payload(1005), mask=False), "invalid close code"),
    "masked frame": (raw_frame(1, b"hi", mask=True), "masked frame"),
    "RSV bits": (raw_frame(1, b"hi", mask=False, rsv=4), "reserved bits"),
}


@pytest.mark.parametrize("name", BACKEND_VIOLATIONS)
def test_backend_protocol_error_is_1014_to_the_client_and_1002_to_the_backend(name: str) -> None:
    bad, why = BACKEND_VIOLATIONS[name]

    async def misbehave(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.received += await reader.readexactly(6 + 2)  # the client's "go", masked
        writer.write(bad)

    async def main() -> None:
        nonlocal state
        async with (
            raw_backend(misbehave) as state,
            Relay([api(state.url)], ws_port=0, **_QUICK) as relay,
            client(relay.ports["ws"], "/chat/1.0/x", compression=None) as ws,
        ):
            await ws.send("go")
            code, reason = await closed_code(ws)
            assert code == 1014
            assert reason is not None
            assert reason.startswith("bad gateway: backend protocol error")
            assert why in reason
            await asyncio.wait_for(state.done.wait(), 10)
        frames = state.frames()
        assert [opcode for _, opcode, _ in frames] == [1, 8]
        assert frames[0][2] == b"go"
        close = frames[1][2]
        assert struct.unpack("!H", close[:2])[0] == 1002
        assert why in close[2:].decode()

    state = RawBackend()
    run(main())


def test_client_protocol_error_inside_a_fragmented_message_closes_the_backend_cleanly() -> None:
    async def main() -> None:
        async with (
            backend(compression=None) as b,
            Relay([api(b.url)], ws_port=0, **_QUICK) as relay,
        ):
            reader, writer = await asyncio.open_connection("127.0.0.1", relay.ports["ws"])
            writer.write(
                b"GET /chat/1.0/x HTTP/1.1\r\nHost: relay\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\n\r\n"
            )
            await reader.readuntil(b"\r\n\r\n")
            # the first fragment of a text message, then a frame with a reserved bit
            writer.write(raw_frame(1, b"half", fin=False))
            await asyncio.sleep(0.05)  # the fragment goes out alone
            writer.write(raw_frame(0, b"rest", rsv=2))
            got = parse_frames(await asyncio.wait_for(reader.read(), 10))
            writer.close()
            assert [(opcode, payload[:2]) for _, opcode, payload in got] == [
                (8, struct.pack("!H", 1002))
            ]
            for _ in range(100):
                if b.closes:
                    break
                await asyncio.sleep(0.02)
            assert b.closes == [1001]
            assert b.connections[0].close_reason.startswith("client protocol error: reserved bits")

    run(main())


async def _nothing(_reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
    pass


@pytest.mark.parametrize(
    ("header", "said"),
    [
        (b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n", "wrong Sec-WebSocket-Accept"),
        (b"", "missing Sec-WebSocket-Accept"),
        (b"Sec-WebSocket-Accept: a\r\nSec-WebSocket-Accept: b\r\n", "more than one"),
    ],
)
def test_backend_accept_key_problems_are_502_saying_what_is_wrong(header: bytes, said: str) -> None:
    async def main() -> None:
        async with (
            raw_backend(_nothing, accept=header) as state,
            Relay([api(state.url)], ws_port=0, **_QUICK) as relay,
        ):
            status, _, body = await http_get(relay.ports["ws"], "/chat/1.0/x", UPGRADE)
            assert status == 502
            assert said in body

    run(main())


# --- HTTP: Host, request-target forms, pipelining, WWW-Authenticate ---------------------------


async def _exchange(port: int, data: bytes, *, head_only: bool = False) -> bytes:
    """Send ``data`` in one write and read until the relay closes (or the response head)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    try:
        read = reader.readuntil(b"\r\n\r\n") if head_only else reader.read()
        return await asyncio.wait_for(read, 10)
    finally:
        writer.close()


def _upgrade(target: str, host: str | None = "relay.example") -> bytes:
    host_line = "" if host is None else f"Host: {host}\r\n"
    return f"GET {target} HTTP/1.1\r\n{host_line}{UPGRADE}\r\n".encode()


def test_http_1_1_without_a_valid_host_is_400() -> None:
    """RFC 9112 section 3.2: 400 for an HTTP/1.1 request without Host or with a bad one."""

    async def main() -> None:
        async with backend() as b, Relay([api(b.url)], ws_port=0, **_QUICK) as relay:
            port = relay.ports["ws"]
            for host in (None, "a b", "user@relay.example", "relay.example:http"):
                answer = await _exchange(port, _upgrade("/chat/1.0/x", host))
                assert answer.startswith(b"HTTP/1.1 400 "), (host, answer[:60])
                assert b"Host header" in answer
            for host in ("relay.example", "127.0.0.1:9099", "[::1]:80", ""):
                answer = await _exchange(port, _upgrade("/chat/1.0/x", host), head_only=True)
                assert answer.startswith(b"HTTP/1.1 101 "), (host, answer[:60])
            assert len(b.paths) == 4

    run(main())


def test_absolute_form_targets_are_routed_by_their_path() -> None:
    """RFC 9112 section 3.2.2: a server must accept absolute form; the target's authority
    replaces Host (the backend's X-Forwarded-Host)."""

    async def main() -> None:
        async with backend() as b, Relay([api(b.url)], ws_port=0, **_QUICK) as relay:
            port = relay.ports["ws"]
            for target in (
                "ws://relay.example/chat/1.0/x?room=1",
                "HTTP://relay.example:9099/chat/1.0/x?room=1",
            ):
                answer = await _exchange(
                    port, _upgrade(target, host="ignored.example"), head_only=True
                )
                assert answer.startswith(b"HTTP/1.1 101 "), (target, answer[:80])
            assert b.paths == ["/?room=1", "/?room=1"]
            hosts = [seen["X-Forwarded-Host"] for seen in b.headers]
            assert hosts == ["relay.example", "relay.example:9099"]
            for target in ("ftp://relay.example/chat/1.0/x", "*", "relay.example:80"):
                answer = await _exchange(port, _upgrade(target))
                assert answer.startswith(b"HTTP/1.1 400 "), (target, answer[:80])
            answer = await _exchange(port, _upgrade("ws://relay.example/nothing/here"))
            assert answer.startswith(b"HTTP/1.1 404 ")

    run(main())


def test_a_pipelined_request_is_never_read_as_another_request() -> None:
    """The first request gets its own answer: an HTTP answer closes the connection without
    reading further (RFC 9112 section 9.6); after a 101 the bytes are WebSocket frames."""
    plain = b"GET /chat/1.0/x HTTP/1.1\r\nHost: relay.example\r\n\r\n"
    health = b"GET /health HTTP/1.1\r\nHost: relay.example\r\n\r\n"

    async def main() -> None:
        async with backend() as b, Relay([api(b.url)], ws_port=0, **_QUICK) as relay:
            port = relay.ports["ws"]
            answer = await _exchange(port, plain + health)
            assert answer.startswith(b"HTTP/1.1 426 ")
            assert answer.count(b"HTTP/1.1") == 1
            # an upgrade with a frame right behind it: the frame is relayed (and echoed)
            early = raw_frame(1, b"early")
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(_upgrade("/chat/1.0/x") + early)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 101 ")
            echoed = await asyncio.wait_for(reader.readexactly(2 + 5), 10)
            assert parse_frames(echoed) == [(0x81, 1, b"early")]
            writer.close()
            # an upgrade with an HTTP request behind it: not frames, so the client broke the
            # protocol (1002) and the backend is told so
            answer = await _exchange(port, _upgrade("/chat/1.0/x") + health)
            head, _, rest = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101 ")
            assert [(opcode, payload[:2]) for _, opcode, payload in parse_frames(rest)] == [
                (8, struct.pack("!H", 1002))
            ]

    run(main())


SECRET = "s" * 32
_SCOPED = (
    topic("/open"),
    Topic(name="/admin", publish=TopicOperation(operation=Operation.PUBLISH, scopes=("admin",))),
)


def _secured(url: str, *kinds: AuthKind) -> StreamingAPI:
    schemes = tuple(SecurityScheme(name=kind.value, kind=kind) for kind in kinds)
    return api(url, topics=_SCOPED, security=schemes)


async def _refusal(port: int, path: str, **headers: str) -> tuple[int, list[str]]:
    """A websockets client's refused upgrade: the status and its WWW-Authenticate values."""
    with pytest.raises(InvalidStatus) as caught:
        async with client(port, path, additional_headers=headers):
            pass
    response = caught.value.response
    return response.status_code, response.headers.get_all("WWW-Authenticate")


def test_401_and_403_carry_www_authenticate_on_both_fronts() -> None:
    """RFC 9110 section 15.5.2: a 401 challenges; RFC 6750 section 3 words the bearer ones."""
    good, unscoped = hs256(SECRET, {"scope": ["admin"]}), hs256(SECRET, {"scope": "other"})
    expired = hs256(SECRET, {"exp": 1})
    auth = AuthConfig(jwt_secret=SECRET, api_keys={"k-1": ApiKeyInfo()})
    cases: list[tuple[str, dict[str, str], int, list[str]]] = [
        ("/chat/1.0/open", {}, 401, ['Bearer realm="Chat", ApiKey realm="Chat"']),
        (
            "/chat/1.0/open",
            {"Authorization": f"Bearer {expired}"},
            401,
            [
                'Bearer realm="Chat", error="invalid_token", error_description="token expired", '
                'ApiKey realm="Chat"'
            ],
        ),
        ("/chat/1.0/open?apikey=nope", {}, 401, ['Bearer realm="Chat", ApiKey realm="Chat"']),
        (
            "/chat/1.0/admin",
            {"Authorization": f"Bearer {unscoped}"},
            403,
            ['Bearer realm="Chat", error="insufficient_scope", scope="admin"'],
        ),
        ("/chat/1.0/admin?apikey=k-1", {}, 403, []),
    ]

    async def main() -> None:
        async with backend() as b:
            apis = [_secured(b.url, AuthKind.OAUTH2, AuthKind.API_KEY)]
            relay = Relay(apis, ws_port=0, auth=auth, **_QUICK)
            async with relay, embedded(relay) as embedded_port:
                for port in (relay.ports["ws"], embedded_port):
                    for path, headers, status, challenges in cases:
                        got = await _refusal(port, path, **headers)
                        assert got == (status, challenges), (port, path)
                    headers = {"Authorization": f"Bearer {good}"}
                    async with client(port, "/chat/1.0/admin", additional_headers=headers):
                        pass

    run(main())


def test_an_open_topic_parameter_cannot_reach_a_scoped_backend_path() -> None:
    """``..%2Fadmin%2F1`` on an open topic would reach ``/open/../admin/1`` at a backend that
    decodes ``%2F``: 400, and the backend is never dialled."""

    def gated(url: str, *, allow: bool) -> StreamingAPI:
        def operations(mapping: str, *scopes: str) -> dict[str, TopicOperation]:
            return {
                kind: TopicOperation(operation=operation, uri_mapping=mapping, scopes=scopes)
                for kind, operation in (
                    ("publish", Operation.PUBLISH),
                    ("subscribe", Operation.SUBSCRIBE),
                )
            }

        return api(
            url,
            topics=(
                Topic(name="/open/{p}", auth_type=AuthType.NONE, **operations("/open/{uri.var.p}")),
                Topic(name="/admin/{id}", **operations("/admin/{uri.var.id}", "admin")),
            ),
            security=(SecurityScheme(name="oauth", kind=AuthKind.OAUTH2),),
            allow_encoded_slashes=allow,
        )

    async def main() -> None:
        async with backend() as b, Relay([gated(b.url, allow=False)], ws_port=0) as relay:
            port = relay.ports["ws"]
            for value in ("..%2Fadmin%2F1", "..%5Cadmin%5C1", "%2E%2E"):
                assert (await _refusal(port, f"/chat/1.0/open/{value}"))[0] == 400
            async with client(port, "/chat/1.0/open/lobby"):
                pass
            relay.reload([gated(b.url, allow=True)])
            async with client(port, "/chat/1.0/open/..%2Fadmin%2F1"):
                pass
            assert b.paths == ["/open/lobby", "/open/..%2Fadmin%2F1"]

    run(main())


def test_a_client_query_parameter_cannot_override_the_mappings(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    mapping = "/rooms?fixed=1"
    fixed = Topic(
        name="/r",
        publish=TopicOperation(operation=Operation.PUBLISH, uri_mapping=mapping),
        subscribe=TopicOperation(operation=Operation.SUBSCRIBE, uri_mapping=mapping),
    )

    async def main() -> str:
        async with (
            backend() as b,
            Relay([api(b.url, topics=(fixed,))], ws_port=0, access_log=str(log)) as relay,
        ):
            async with client(relay.ports["ws"], "/chat/1.0/r?fixed=2&x=1&fixed=3"):
                pass
            assert b.paths == ["/rooms?fixed=1&x=1"]
            return relay.metrics_text()

    metrics = run(main())
    assert 'asyncapi_gw_query_parameters_overridden_total{api="Chat"} 2' in metrics
    [entry] = (json.loads(line) for line in log.read_text().splitlines())
    assert entry["query_dropped"] == ["fixed", "fixed"]


@pytest.mark.parametrize("name", BACKEND_VIOLATIONS)
def test_the_websockets_embedding_blames_the_backend_alike(name: str) -> None:
    bad, _ = BACKEND_VIOLATIONS[name]

    async def misbehave(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(6 + 2)
        writer.write(bad)

    async def main() -> RawBackend:
        async with raw_backend(misbehave) as state:
            relay = Relay([api(state.url)], **_QUICK)
            async with embedded(relay) as port:
                async with client(port, "/chat/1.0/x", compression=None) as ws:
                    await ws.send("go")
                    code, reason = await closed_code(ws)
                    assert code == 1014
                    assert reason is not None
                    assert reason.startswith("bad gateway: backend protocol error")
                await asyncio.wait_for(state.done.wait(), 10)
        return state

    close = run(main()).frames()[-1]
    assert close[1] == 8
    assert struct.unpack("!H", close[2][:2])[0] == 1002
