"""The relay shell when things go wrong: dead, refusing and hanging backends, lost clients,
limits, policies and authentication, over real loopback sockets."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time

import pytest
from jwt_tokens import hs256
from relay_harness import (
    SUB,
    UPGRADE,
    api,
    backend,
    client,
    closed_code,
    http_get,
    run,
    topic,
)
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import InvalidStatus

from asyncapi_gw.model import (
    AuthKind,
    Operation,
    SecurityScheme,
    StreamingAPI,
    Throttling,
    ThrottlingUnit,
    Topic,
    TopicOperation,
)
from asyncapi_gw.relay import ApiKeyInfo, AuthConfig, Relay


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _status(port: int, path: str, **options: object) -> int:
    with pytest.raises(InvalidStatus) as caught:
        async with client(port, path, **options):
            pass
    return caught.value.response.status_code


def test_refusing_backend_is_502() -> None:
    async def main() -> None:
        dead = f"ws://127.0.0.1:{_free_port()}"
        async with Relay([api(dead)], ws_port=0) as relay:
            assert await _status(relay.ports["ws"], "/chat/1.0/x") == 502
            assert relay.stats.rejections == {502: 1}

    run(main())


def test_backend_that_never_answers_the_handshake_is_504() -> None:
    async def main() -> None:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()
            writer.close()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with (
            server,
            Relay([api(f"ws://127.0.0.1:{port}")], ws_port=0, open_timeout=0.3) as relay,
        ):
            assert await _status(relay.ports["ws"], "/chat/1.0/x") == 504

    run(main())


def test_backend_refusing_the_upgrade_is_502() -> None:
    async def main() -> None:
        async def http_only(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(http_only, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server, Relay([api(f"ws://127.0.0.1:{port}")], ws_port=0) as relay:
            assert await _status(relay.ports["ws"], "/chat/1.0/x") == 502

    run(main())


def test_backend_lost_mid_stream_closes_the_client_with_1014() -> None:
    async def main() -> None:
        async def dies(ws: ServerConnection) -> None:
            await ws.recv()
            ws.transport.abort()

        async with backend(dies) as b, Relay([api(b.url)], ws_port=0) as relay:
            async with client(relay.ports["ws"], "/chat/1.0/x") as ws:
                await ws.send("bye")
                assert await closed_code(ws) == (1014, "backend connection lost")
            await asyncio.sleep(0.05)
            assert relay.stats.close_codes == {1014: 1}

    run(main())


def test_client_gone_closes_the_backend() -> None:
    async def main() -> None:
        async with backend() as b, Relay([api(b.url)], ws_port=0) as relay:
            async with client(relay.ports["ws"], "/chat/1.0/x") as ws:
                await ws.send("x")
                await ws.recv()
                ws.transport.abort()
            for _ in range(100):
                if b.closes:
                    break
                await asyncio.sleep(0.02)
            assert b.closes == [1001]
            assert relay.stats.connections_open == 0

    run(main())


def test_message_too_big_closes_with_1009() -> None:
    async def main() -> None:
        async with (
            backend() as b,
            Relay([api(b.url)], ws_port=0, max_message_size=100) as relay,
            client(relay.ports["ws"], "/chat/1.0/x", compression=None) as ws,
        ):
            # with permessage-deflate the limit applies to the compressed payload
            await ws.send("a" * 100)
            assert await ws.recv() == "a" * 100
            await ws.send("a" * 101)
            code, _ = await closed_code(ws)
            assert code == 1009

    run(main())


def test_wrong_direction_closes_1008_or_is_dropped() -> None:
    async def main() -> None:
        async def push(ws: ServerConnection) -> None:
            async for message in ws:
                await ws.send(message)

        sub_only = (topic("/*", pub=False),)
        async with backend(push) as b:
            async with (
                Relay([api(b.url, topics=sub_only)], ws_port=0) as relay,
                client(relay.ports["ws"], "/chat/1.0/x") as ws,
            ):
                await ws.send("not allowed")
                assert (await closed_code(ws))[0] == 1008
            pub_only = (topic("/*", sub=False),)
            async with Relay(
                [api(b.url, topics=pub_only)], ws_port=0, on_wrong_direction="drop"
            ) as relay:
                async with client(relay.ports["ws"], "/chat/1.0/x") as ws:
                    await ws.send("one")
                    await ws.send("two")
                    with pytest.raises(TimeoutError):
                        await asyncio.wait_for(ws.recv(), 0.3)
                await asyncio.sleep(0.05)
                assert relay.stats.messages_in == 2

    run(main())


def test_event_quota_answers_4003_text_or_closes() -> None:
    async def main() -> None:
        async with backend() as b:
            quota_api = api(b.url, throttling=Throttling(events=2, unit=ThrottlingUnit.MINUTE))
            async with Relay([quota_api], ws_port=0) as relay:
                async with client(relay.ports["ws"], "/chat/1.0/x") as ws:
                    for n in range(2):
                        await ws.send(f"m{n}")
                        assert await ws.recv() == f"m{n}"
                    await ws.send("m2")
                    assert (
                        await ws.recv() == "Error code: 4003 reason: Websocket frame throttled out"
                    )
                # the quota is shared by the API's connections
                async with client(relay.ports["ws"], "/chat/1.0/x") as ws:
                    await ws.send("again")
                    assert "4003" in await ws.recv()
            async with (
                Relay([quota_api], ws_port=0, on_throttle="close") as relay,
                client(relay.ports["ws"], "/chat/1.0/x") as ws,
            ):
                for n in range(3):
                    await ws.send(f"m{n}")
                assert (await closed_code(ws))[0] == 4003

    run(main())


def test_max_connections_is_503() -> None:
    async def main() -> None:
        async with backend() as b, Relay([api(b.url)], ws_port=0, max_connections=1) as relay:
            port = relay.ports["ws"]
            async with client(port, "/chat/1.0/x") as ws:
                assert await _status(port, "/chat/1.0/x") == 503
                await ws.send("still here")
                assert await ws.recv() == "still here"
            await asyncio.sleep(0.05)
            async with client(port, "/chat/1.0/x") as ws:
                await ws.send("slot free again")
                assert await ws.recv() == "slot free again"

    run(main())


def _validated_api(url: str) -> StreamingAPI:
    schema = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}
    publish = TopicOperation(operation=Operation.PUBLISH, message={"payload": schema})
    return api(url, topics=(Topic(name="/*", publish=publish, subscribe=SUB),))


def test_message_validation_closes_1007_or_drops() -> None:
    async def main() -> None:
        async with backend() as b:
            async with (
                Relay([_validated_api(b.url)], ws_port=0, validate_messages=True) as relay,
                client(relay.ports["ws"], "/chat/1.0/x") as ws,
            ):
                # validation needs plain frames: compression was not negotiated
                assert ws.protocol.extensions == []
                await ws.send('{"n": 1}')
                assert await ws.recv() == '{"n": 1}'
                await ws.send('{"n": "one"}')
                assert (await closed_code(ws))[0] == 1007
            async with (
                Relay(
                    [_validated_api(b.url)], ws_port=0, validate_messages=True, on_invalid="drop"
                ) as relay,
                client(relay.ports["ws"], "/chat/1.0/x") as ws,
            ):
                await ws.send("not json")
                await ws.send('{"n": 2}')
                assert await ws.recv() == '{"n": 2}'

    run(main())


def _keyed_api(url: str) -> StreamingAPI:
    scoped = TopicOperation(operation=Operation.PUBLISH, scopes=("admin",))
    return api(
        url,
        topics=(topic("/open"), Topic(name="/admin", publish=scoped, subscribe=SUB)),
        security=(SecurityScheme(name="key", kind=AuthKind.API_KEY),),
    )


def test_api_keys_401_403_and_credentials_never_reach_the_backend() -> None:
    async def main() -> None:
        auth = AuthConfig(api_keys={"k-123": ApiKeyInfo()})
        async with backend() as b, Relay([_keyed_api(b.url)], ws_port=0, auth=auth) as relay:
            port = relay.ports["ws"]
            assert await _status(port, "/chat/1.0/open") == 401
            assert await _status(port, "/chat/1.0/open?apikey=wrong") == 401
            assert await _status(port, "/chat/1.0/admin?apikey=k-123") == 403
            async with client(port, "/chat/1.0/open?apikey=k-123&room=7") as ws:
                await ws.send("in")
                assert await ws.recv() == "in"
            async with client(port, "/chat/1.0/open", additional_headers={"apikey": "k-123"}):
                pass
            assert b.paths == ["/?room=7", "/"]
            assert all("apikey" not in {k.lower() for k in h} for h in b.headers)
            assert relay.stats.rejections == {401: 2, 403: 1}

    run(main())


def test_token_expiring_mid_connection_closes_4001() -> None:
    async def main() -> None:
        secret = "s" * 32
        auth = AuthConfig(jwt_secret=secret, leeway=0)
        async with backend() as b:
            secured = api(b.url, security=(SecurityScheme(name="oauth", kind=AuthKind.OAUTH2),))
            async with Relay([secured], ws_port=0, auth=auth) as relay:
                token = hs256(secret, {"sub": "me", "exp": time.time() + 0.5})
                headers = {"Authorization": f"Bearer {token}"}
                async with client(
                    relay.ports["ws"], "/chat/1.0/x", additional_headers=headers
                ) as ws:
                    await ws.send("ok")
                    assert await ws.recv() == "ok"
                    assert await closed_code(ws) == (4001, "token expired")
                assert b.headers[0].get("Authorization") is None

    run(main())


def test_idle_timeout_and_keepalive() -> None:
    async def main() -> None:
        async with (
            backend() as b,
            Relay([api(b.url)], ws_port=0, idle_timeout=0.3, ping_interval=None) as relay,
            client(relay.ports["ws"], "/chat/1.0/x") as ws,
        ):
            assert (await closed_code(ws))[0] == 1001
        # a client that never answers pings is closed with 1011
        async with (
            backend() as b,
            Relay([api(b.url)], ws_port=0, ping_interval=0.2, ping_timeout=0.2) as relay,
        ):
            reader, writer = await asyncio.open_connection("127.0.0.1", relay.ports["ws"])
            writer.write(f"GET /chat/1.0/x HTTP/1.1\r\nHost: x\r\n{UPGRADE}\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101")
            data = await asyncio.wait_for(reader.read(), 5)  # pings, then the close frame
            assert b"\x89\x00" in data
            close = data[data.index(b"\x88") :]
            assert int.from_bytes(close[2:4], "big") == 1011
            writer.close()
        # a client that answers pings (websockets does) stays connected
        async with (
            backend() as b,
            Relay([api(b.url)], ws_port=0, ping_interval=0.1) as relay,
            client(relay.ports["ws"], "/chat/1.0/x") as ws,
        ):
            await asyncio.sleep(0.5)
            await ws.send("alive")
            assert await ws.recv() == "alive"

    run(main())


def test_ping_timeout_is_how_long_a_pinged_side_may_stay_silent() -> None:
    async def main() -> None:
        async with (
            backend() as b,
            Relay([api(b.url)], ws_port=0, ping_interval=0.1, ping_timeout=1.5) as relay,
        ):
            reader, writer = await asyncio.open_connection("127.0.0.1", relay.ports["ws"])
            writer.write(f"GET /chat/1.0/x HTTP/1.1\r\nHost: x\r\n{UPGRADE}\r\n".encode())
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
            early = b""
            with contextlib.suppress(TimeoutError):
                early = await asyncio.wait_for(reader.read(1000), 0.6)
            assert early.startswith(b"\x89\x00")  # pinged, and not yet given up on
            assert b"\x88" not in early
            data = await asyncio.wait_for(reader.read(), 5)  # more pings, then the close
            close = data[data.index(b"\x88") :]
            assert int.from_bytes(close[2:4], "big") == 1011
            writer.close()
        # a connection whose sides answer pings stays through many ticks
        async with (
            backend() as b,
            Relay([api(b.url)], ws_port=0, ping_interval=0.05, ping_timeout=0.2) as relay,
            client(relay.ports["ws"], "/chat/1.0/x") as ws,
        ):
            await asyncio.sleep(1)  # 20 ticks and their checks
            await ws.send("alive")
            assert await ws.recv() == "alive"

    run(main())


def test_a_request_completed_at_the_open_deadline_is_answered() -> None:
    """The request and the open deadline due in the same loop iteration: the client gets an
    answer and the connection ends (it once stayed dialling forever)."""

    async def main() -> None:
        async with (
            backend() as b,
            Relay([api(b.url)], ws_port=0, open_timeout=0.5) as relay,
        ):
            reader, writer = await asyncio.open_connection("127.0.0.1", relay.ports["ws"])
            await asyncio.sleep(0.2)
            writer.write(f"GET /chat/1.0/x HTTP/1.1\r\nHost: x\r\n{UPGRADE}\r\n".encode())
            time.sleep(0.5)  # the loop is busy past the deadline while the request arrives
            answer = await asyncio.wait_for(reader.read(), 5)
            assert answer.startswith((b"HTTP/1.1 504 ", b"HTTP/1.1 101 ")), answer[:40]
            writer.close()

    run(main())


def test_non_upgrade_when_health_paths_are_asked_with_upgrade() -> None:
    async def main() -> None:
        async with Relay([api("ws://127.0.0.1:9")], ws_port=0) as relay:
            status, _, _ = await http_get(relay.ports["ws"], "/health", UPGRADE)
            assert status == 404

    run(main())
