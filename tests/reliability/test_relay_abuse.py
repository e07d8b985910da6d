"""Abuse end to end through a running relay: slow handshakes, oversized requests, floods past
the connection limit, malformed frames and messages past the size limit.  Each gets its status
or close code, the relay's memory stays bounded, and it keeps serving.

Short by default; ``RELIABILITY_SCALE=long pytest -m slow`` runs the long variants.
"""

from __future__ import annotations

import asyncio
import logging
import tracemalloc

import pytest
from relay_harness import api, backend, client, run
from relay_load import (
    raise_fd_limit,
    scales,
    snapshot,
    tracing,
    until,
    upgrade,
)

from asyncapi_gw.relay import Relay

_QUICK = {"close_timeout": 0.5, "drain_timeout": 1.0, "ping_interval": None}


async def _answer(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    try:
        return await asyncio.wait_for(reader.read(), 10)
    except ConnectionResetError:  # refused while our bytes were still arriving
        return b"reset"
    finally:
        writer.close()


async def _still_serves(port: int) -> None:
    async with client(port, "/chat/1.0/x") as ws:
        await ws.send("still here")
        assert await ws.recv() == "still here"


@pytest.mark.parametrize("connections", scales(40, 2000))
def test_slow_handshakes_are_dropped_at_the_open_timeout(connections: int) -> None:
    raise_fd_limit()

    async def slowloris(port: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = upgrade("/chat/1.0/x")
        got = b""
        for i in range(len(request) - 2):  # never the final CRLF
            writer.write(request[i : i + 1])
            try:
                got = await asyncio.wait_for(reader.read(), 0.1)
            except asyncio.TimeoutError:
                continue
            break
        writer.close()
        return got

    async def main() -> None:
        async with (
            backend() as b,
            Relay([api(b.url)], ws_port=0, open_timeout=1, **_QUICK) as relay,
        ):
            with tracing():
                base = snapshot().traced
                answers = await asyncio.wait_for(
                    asyncio.gather(*(slowloris(relay.ports["ws"]) for _ in range(connections))),
                    60,
                )
                grown = tracemalloc.get_traced_memory()[1] - base
            # dropped without an answer (nothing was asked), none reached a backend
            assert answers == [b""] * connections
            assert b.paths == []
            assert grown < connections * 16 * 1024 + 4 * 1024 * 1024
            assert await until(lambda: not relay._live, 10)
            await _still_serves(relay.ports["ws"])

    run(main(), timeout=120)


def test_oversized_request_lines_and_headers_are_431(caplog: pytest.LogCaptureFixture) -> None:
    oversized = {
        "request line": b"GET /chat/1.0/" + b"a" * 10_000 + b" HTTP/1.1\r\n",
        "header line": b"GET /chat/1.0/x HTTP/1.1\r\nX-Big: " + b"a" * 10_000 + b"\r\n\r\n",
        "too many headers": b"GET /chat/1.0/x HTTP/1.1\r\n" + b"X-N: a\r\n" * 200 + b"\r\n",
        "megabyte header": b"GET /chat/1.0/x HTTP/1.1\r\nX-Big: " + b"a" * 1_000_000,
    }

    async def main() -> None:
        async with backend() as b, Relay([api(b.url)], ws_port=0, **_QUICK) as relay:
            with tracing():
                base = snapshot().traced
                for name, data in oversized.items():
                    answer = await _answer(relay.ports["ws"], data)
                    if answer != b"reset":  # the 431 may be lost to the reset
                        assert answer.startswith(b"HTTP/1.1 431 "), (name, answer[:60])
                assert tracemalloc.get_traced_memory()[1] - base < 8 * 1024 * 1024
            assert relay.stats.rejections == {431: len(oversized)}  # the relay sent each one
            assert b.paths == []
            await _still_serves(relay.ports["ws"])

    with caplog.at_level(logging.ERROR):
        run(main())
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_backend_answering_oversized_headers_is_502(caplog: pytest.LogCaptureFixture) -> None:
    async def huge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nX-Big: " + b"b" * 100_000 + b"\r\n\r\n")
        await reader.read()
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(huge, "127.0.0.1", 0)
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        async with server, Relay([api(url)], ws_port=0, **_QUICK) as relay:
            answer = await _answer(relay.ports["ws"], upgrade("/chat/1.0/x"))
            assert answer.startswith(b"HTTP/1.1 502 "), answer[:80]

    with caplog.at_level(logging.ERROR):
        run(main())
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
