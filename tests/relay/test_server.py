"""The relay shell over real loopback sockets: relaying, handshake refusals, HTTP endpoints."""

from __future__ import annotations

import asyncio

import pytest
from relay_harness import UPGRADE, api, backend, client, closed_code, http_get, run, topic
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import InvalidStatus

from asyncapi_gw.errors import RelayError
from asyncapi_gw.relay import Relay


def test_messages_relay_both_ways_and_normal_close() -> None:
    async def main() -> None:
        async with backend() as b, Relay([api(b.url)], ws_port=0) as relay:
            port = relay.ports["ws"]
            async with client(port, "/chat/1.0/room") as ws:
                await ws.send("hello")
                assert await ws.recv() == "hello"
                await ws.send(b"\x00\x01")
                assert await ws.recv() == b"\x00\x01"
            assert ws.close_code == 1000
            await asyncio.sleep(0.05)
            stats = relay.stats
            assert stats.messages_in == 2
            assert stats.messages_out == 2
            assert stats.connections_total == 1
            assert stats.connections_open == 0
            assert stats.close_codes == {1000: 1}

    run(main())


def test_port_zero_binds_and_wss_is_off_without_a_certificate() -> None:
    async def main() -> None:
        async with Relay([api("ws://127.0.0.1:9")], ws_port=0) as relay:
            assert set(relay.ports) == {"ws"}
            assert relay.ports["ws"] > 0
            assert relay.addresses["ws"][0] == "127.0.0.1"

    run(main())


def test_unknown_path_is_404_before_the_upgrade() -> None:
    async def main() -> None:
        async with backend() as b, Relay([api(b.url)], ws_port=0) as relay:
            with pytest.raises(InvalidStatus) as caught:
                async with client(relay.ports["ws"], "/nope/1.0/x"):
                    pass
            assert caught.value.response.status_code == 404
            assert caught.value.response.headers["Content-Type"].startswith("text/plain")
            assert b.paths == []
            assert relay.stats.rejections == {404: 1}

    run(main())


def test_no_topic_is_404() -> None:
    async def main() -> None:
        only = api("ws://127.0.0.1:9", topics=(topic("/rooms"),))
        async with Relay([only], ws_port=0) as relay:
            status, _, body = await http_get(relay.ports["ws"], "/chat/1.0/other", UPGRADE)
            assert status == 404
            assert body.strip()

    run(main())


def test_health_and_metrics_are_on_the_admin_listener_only() -> None:
    async def main() -> None:
        async with backend() as b, Relay([api(b.url)], ws_port=0, admin_port=0) as relay:
            port, admin = relay.ports["ws"], relay.ports["admin"]
            assert relay.addresses["admin"] == ("127.0.0.1", admin)  # loopback by default
            async with client(port, "/chat/1.0/t") as ws:
                await ws.send("abc")
                await ws.recv()
            await http_get(port, "/missing/1.0/x", UPGRADE)
            for path in ("/health", "/metrics", "/metrics?x=1"):
                status, _, body = await http_get(port, path)
                assert status == 404, path
                assert "admin listener" in body
            status, _, body = await http_get(admin, "/health")
            assert (status, body) == (200, "ok\n")
            status, head, body = await http_get(admin, "/metrics")
            assert status == 200
            assert "version=0.0.4" in head
            assert "asyncapi_gw_connections_open 0" in body
            assert 'asyncapi_gw_connections_total{api="Chat"} 1' in body
            assert 'asyncapi_gw_messages_total{api="Chat",topic="/*",direction="in"} 1' in body
            assert 'asyncapi_gw_bytes_total{api="Chat",topic="/*",direction="out"}' in body
            assert 'asyncapi_gw_rejections_total{status="404"} 4' in body
            assert 'asyncapi_gw_close_codes_total{code="1000"} 1' in body
            assert (await http_get(admin, "/chat/1.0/t", UPGRADE))[0] == 404

    run(main())


def test_admin_listener_answers_head_refuses_other_methods_and_drains_with_503() -> None:
    async def main() -> None:
        relay = Relay([api("ws://127.0.0.1:9")], ws_port=0, admin_port=0, drain_timeout=5)
        async with relay:
            admin = relay.ports["admin"]
            reader, writer = await asyncio.open_connection("127.0.0.1", admin)
            writer.write(b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            assert answer.startswith(b"HTTP/1.1 200 ")
            assert answer.endswith(b"\r\n\r\n")  # no body
            reader, writer = await asyncio.open_connection("127.0.0.1", admin)
            writer.write(b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            assert answer.startswith(b"HTTP/1.1 405 ")
            assert b"Allow: GET, HEAD" in answer
            # a client that never answers the relay's close frame keeps the drain going
            async with backend() as b:
                relay.reload([api(b.url)])
                reader, writer = await asyncio.open_connection("127.0.0.1", relay.ports["ws"])
                writer.write(f"GET /chat/1.0/t HTTP/1.1\r\nHost: x\r\n{UPGRADE}\r\n".encode())
                assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101 ")
                closing = asyncio.create_task(relay.close())
                await asyncio.sleep(0)
                assert relay.draining
                status, _, body = await http_get(admin, "/health")
                assert (status, body) == (503, "draining\n")
                writer.close()
                await closing

    run(main())


def test_plain_get_elsewhere_is_426() -> None:
    async def main() -> None:
        async with Relay([api("ws://127.0.0.1:9")], ws_port=0) as relay:
            status, head, _ = await http_get(relay.ports["ws"], "/chat/1.0/x")
            assert status == 426
            assert "Upgrade: websocket" in head

    run(main())


def test_malformed_request_is_400() -> None:
    async def main() -> None:
        async with Relay([api("ws://127.0.0.1:9")], ws_port=0) as relay:
            reader, writer = await asyncio.open_connection("127.0.0.1", relay.ports["ws"])
            writer.write(b"GARBAGE\r\n\r\n")
            data = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            assert data.startswith(b"HTTP/1.1 400 ")

    run(main())


def test_duplicate_gateway_paths_and_busy_ports_raise_relay_error() -> None:
    async def main() -> None:
        with pytest.raises(RelayError):
            Relay([api("ws://127.0.0.1:9"), api("ws://127.0.0.1:9", name="Other")], ws_port=0)
        async with Relay([api("ws://127.0.0.1:9")], ws_port=0) as first:
            with pytest.raises(RelayError, match="cannot listen"):
                async with Relay([api("ws://127.0.0.1:9")], ws_port=first.ports["ws"]):
                    pass

    run(main())


def test_permessage_deflate_passes_end_to_end() -> None:
    async def main() -> None:
        async with backend() as b, Relay([api(b.url)], ws_port=0) as relay:
            async with client(relay.ports["ws"], "/chat/1.0/x") as ws:  # offers deflate
                assert [e.name for e in ws.protocol.extensions] == ["permessage-deflate"]
                text = "compressible " * 2000
                await ws.send(text)
                assert await ws.recv() == text
            assert [e.name for e in b.connections[0].protocol.extensions] == ["permessage-deflate"]
            stats = relay.stats
            assert stats.bytes_in < len(text) // 4  # the relay carried compressed frames
            async with client(relay.ports["ws"], "/chat/1.0/x", compression=None) as ws:
                assert ws.protocol.extensions == []
                await ws.send("plain")
                assert await ws.recv() == "plain"

    run(main())


def test_the_size_limit_holds_on_what_compressed_messages_inflate_to() -> None:
    async def main() -> None:
        limit = 64 * 1024
        received: list[int] = []

        async def counting(ws: ServerConnection) -> None:
            async for message in ws:
                received.append(len(message))
                await ws.send(message)

        async with (
            backend(counting, max_size=None) as b,
            Relay([api(b.url)], ws_port=0, max_message_size=limit) as relay,
        ):
            port = relay.ports["ws"]
            async with client(port, "/chat/1.0/x", max_size=None) as ws:
                # a run of similar messages under the limit: context takeover both ways
                for n in range(20):
                    text = f"message {n} " + "similar text " * 4000
                    await ws.send(text)
                    assert await ws.recv() == text
                await ws.send("z" * (20 << 20))  # 20 MiB in about 20 KB on the wire
                assert await closed_code(ws) == (
                    1009,
                    f"compressed message inflates past {limit} bytes",
                )
            assert len(received) == 20  # the bomb never reached the backend
            assert relay.stats.bytes_in < 200_000
            async with client(port, "/chat/1.0/x") as ws:
                await ws.send(b"\x00" * limit)  # at the limit: through
                assert len(await ws.recv()) == limit

    run(main())


def test_no_compression_strips_the_offer() -> None:
    async def main() -> None:
        async with (
            backend() as b,
            Relay([api(b.url)], ws_port=0, compression=False) as relay,
            client(relay.ports["ws"], "/chat/1.0/x") as ws,  # offers deflate
        ):
            await ws.send("plain")
            assert await ws.recv() == "plain"
            assert ws.protocol.extensions == []
            assert "Sec-WebSocket-Extensions" not in b.headers[0]

    run(main())


def test_only_permessage_deflate_is_offered_to_the_backend() -> None:
    async def main() -> None:
        async with backend() as b, Relay([api(b.url)], ws_port=0) as relay:
            reader, writer = await asyncio.open_connection("127.0.0.1", relay.ports["ws"])
            offer = "Sec-WebSocket-Extensions: x-unknown; a=1, permessage-deflate\r\n"
            writer.write(f"GET /chat/1.0/x HTTP/1.1\r\nHost: x\r\n{UPGRADE}{offer}\r\n".encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            writer.close()
            assert head.startswith(b"HTTP/1.1 101 ")
            assert b"Sec-WebSocket-Extensions: permessage-deflate" in head
            assert b.headers[0]["Sec-WebSocket-Extensions"] == "permessage-deflate"

    run(main())
