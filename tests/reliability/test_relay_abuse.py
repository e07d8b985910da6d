"""Abuse end to end through a running relay: slow handshakes, oversized requests, floods past
the connection limit, malformed frames and messages past the size limit.  Each gets its status
or close code, the relay's memory stays bounded, and it keeps serving.

Short by default; ``RELIABILITY_SCALE=long pytest -m slow`` runs the long variants.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import tracemalloc

import pytest
from raw_frames import raw_frame
from relay_harness import api, backend, client, run
from relay_load import (
    raise_fd_limit,
    raw_open,
    read_close,
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
            except ConnectionResetError:  # dropped with a reset
                got = b""
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
            assert await until(lambda: relay.connections == 0, 10)
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


@pytest.mark.parametrize(("limit", "flood"), scales((20, 200), (500, 5000)))
def test_connections_past_the_maximum_are_503_and_slots_come_back(limit: int, flood: int) -> None:
    raise_fd_limit()

    async def main() -> None:
        async with (
            backend() as b,
            Relay([api(b.url)], ws_port=0, max_connections=limit, **_QUICK) as relay,
        ):
            port = relay.ports["ws"]
            held = [await raw_open(port, "/chat/1.0/x") for _ in range(limit)]
            gate = asyncio.Semaphore(200)

            async def one() -> bytes:
                async with gate:
                    return await _answer(port, upgrade("/chat/1.0/x"))

            refused = 0
            with tracing():
                base = snapshot().traced
                for start in range(0, flood, 500):  # the peak of each wave of attempts
                    tracemalloc.reset_peak()
                    answers = await asyncio.gather(*(one() for _ in range(min(500, flood - start))))
                    refused += sum(a.startswith(b"HTTP/1.1 503 ") for a in answers)
                    assert tracemalloc.get_traced_memory()[1] - base < 8 * 1024 * 1024
            assert refused == flood
            assert relay.stats.rejections == {503: flood}
            assert len(b.paths) == limit  # no refused connection reached the backend
            for _, writer, _ in held:
                writer.write(raw_frame(8, struct.pack("!H", 1000)))
            assert await until(lambda: relay.connections == 0, 10)
            assert relay.connections == 0
            await _still_serves(port)  # the slots came back

    run(main(), timeout=300)


# Each malformed frame from a client and the close code the client gets (RFC 6455).
MALFORMED = {
    "unmasked frame": (raw_frame(1, b"hi", mask=False), 1002),
    "RSV1 without an extension": (raw_frame(1, b"hi", rsv=4), 1002),
    "RSV2": (raw_frame(1, b"hi", rsv=2), 1002),
    "RSV3": (raw_frame(1, b"hi", rsv=1), 1002),
    "reserved data opcode 3": (raw_frame(3, b"hi"), 1002),
    "reserved control opcode 11": (raw_frame(11, b"hi"), 1002),
    "control frame of 126 bytes": (raw_frame(9, b"p" * 126), 1002),
    "fragmented ping": (raw_frame(9, b"p", fin=False), 1002),
    "continuation without a start": (raw_frame(0, b"x"), 1002),
    "new message inside a fragmented one": (
        raw_frame(1, b"a", fin=False) + raw_frame(1, b"b"),
        1002,
    ),
    "close with a 1-byte payload": (raw_frame(8, b"\x03"), 1002),
    "close with code 1005": (raw_frame(8, struct.pack("!H", 1005)), 1002),
    "close with code 999": (raw_frame(8, struct.pack("!H", 999)), 1002),
    "close with code 5000": (raw_frame(8, struct.pack("!H", 5000)), 1002),
    "close reason not UTF-8": (raw_frame(8, struct.pack("!H", 1000) + b"\xff\xfe"), 1007),
    "64-bit length with the top bit set": (raw_frame(2, b"", length=1 << 63), 1002),
    "text not UTF-8 (the backend judges)": (raw_frame(1, b"\xff\xfe"), 1007),
    "message past the limit": (raw_frame(2, b"x" * 2000), 1009),
    "fragments past the limit": (
        raw_frame(2, b"x" * 600, fin=False) + raw_frame(0, b"x" * 600),
        1009,
    ),
    "a terabyte announced": (raw_frame(2, b"", length=1 << 40), 1009),
    "fragments announcing a terabyte": (
        raw_frame(2, b"x", fin=False) + raw_frame(0, b"", length=1 << 40),
        1009,
    ),
}


async def _close_code_after(port: int, data: bytes) -> int | None:
    """Upgrade a raw client, send ``data``, and return the close code the relay answers."""
    reader, writer, _ = await raw_open(port, "/chat/1.0/x")
    writer.write(data)
    try:
        return await read_close(reader, 10)
    finally:
        writer.close()


@pytest.mark.parametrize("rounds", scales(1, 50))
def test_malformed_frames_and_oversized_messages_get_their_close_code(rounds: int) -> None:
    raise_fd_limit()

    async def main() -> None:
        async with (
            backend(compression=None) as b,
            Relay([api(b.url)], ws_port=0, max_message_size=1024, **_QUICK) as relay,
        ):
            port = relay.ports["ws"]
            with tracing():
                base = snapshot().traced
                for _ in range(rounds):
                    for record in (b.connections, b.paths, b.headers, b.closes):
                        record.clear()  # the harness's backend keeps every peer it had
                    tracemalloc.reset_peak()
                    codes = await asyncio.gather(
                        *(_close_code_after(port, d) for d, _ in MALFORMED.values())
                    )
                    got = dict(zip(MALFORMED, codes, strict=True))
                    assert got == {name: code for name, (_, code) in MALFORMED.items()}
                    # a terabyte announced is never buffered
                    assert tracemalloc.get_traced_memory()[1] - base < 8 * 1024 * 1024
            assert await until(lambda: relay.connections == 0, 10)
            await _still_serves(port)

    run(main(), timeout=300)


@pytest.mark.parametrize("connections", scales(20, 1000))
def test_announced_giants_are_refused_at_the_header_with_bounded_memory(connections: int) -> None:
    """Many clients announce a 1 GiB message and trickle it: 1009 at once, nothing buffered."""
    raise_fd_limit()
    giant = raw_frame(2, b"g" * 4096, length=1 << 30)[: 14 + 4096]

    async def main() -> None:
        async with (
            backend(compression=None) as b,
            Relay([api(b.url)], ws_port=0, max_message_size=1 << 20, **_QUICK) as relay,
        ):
            with tracing():
                base = snapshot().traced
                port = relay.ports["ws"]
                codes = await asyncio.gather(
                    *(_close_code_after(port, giant) for _ in range(connections))
                )
                grown = tracemalloc.get_traced_memory()[1] - base
            assert codes == [1009] * connections
            assert grown < connections * 64 * 1024 + 4 * 1024 * 1024
            assert await until(lambda: relay.connections == 0, 10)

    run(main(), timeout=300)
