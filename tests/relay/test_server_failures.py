"""The listener when things go wrong, where it differs from the other fronts: message counts of
dropped messages, compression turned off for validation, its own keepalive and open deadline.
What every front does alike (dead, refusing and hanging backends, lost sides, limits, quotas,
authentication, token expiry) is the behaviour table in test_fronts.py."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
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

from asyncapi_gw.model import (
    Operation,
    StreamingAPI,
    Topic,
    TopicOperation,
)
from asyncapi_gw.relay import Relay


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
