"""Integrity through a running relay: numbered, checksummed messages both ways, text and
binary, whole and fragmented, over many concurrent connections; the receiving end checks that
none is lost, duplicated, reordered or altered.

Short run: 40 connections x 250 messages.  Long run (``RELIABILITY_SCALE=long pytest -m slow``):
exactly 1,000,000 messages over 1,000 connections.
"""

from __future__ import annotations

import asyncio
import random
import struct
import time
import zlib
from collections.abc import Iterator

import attrs
import pytest
from relay_harness import api, backend, client, run
from relay_load import raise_fd_limit, rss_kib, scales
from websockets.asyncio.connection import Connection
from websockets.asyncio.server import ServerConnection

from asyncapi_gw.relay import Relay

_HEAD = struct.Struct("!III")  # connection, sequence, CRC-32 of the body
_TEXT = "abcdefghijklmnopqrstuvwxyz0123456789 é€😀"  # multi-byte characters split fragments


@attrs.define
class Tally:
    received: int = 0
    problems: list[str] = attrs.Factory(list)


def _bodies(conn: int, direction: int) -> Iterator[tuple[int, str | bytes]]:
    """The kind (0 text, 1 binary, 2 fragmented text, 3 fragmented binary) and body of each
    message, reproducible on both ends."""
    rng = random.Random(conn * 2 + direction)
    seq = 0
    while True:
        roll = rng.random()
        size = rng.randrange(0, 200) if roll < 0.9 else rng.randrange(200, 9000)
        if roll > 0.998:
            size = rng.randrange(65536, 140000)  # 64-bit extended lengths
        kind = seq % 4
        if kind in (0, 2):
            yield kind, "".join(rng.choices(_TEXT, k=size))
        else:
            yield kind, rng.randbytes(size)
        seq += 1


def _message(
    conn: int, seq: int, kind: int, body: str | bytes
) -> str | bytes | list[str] | list[bytes]:
    if isinstance(body, str):
        raw = body.encode()
        head = f"{conn}:{seq}:{zlib.crc32(raw):08x}:"
        if kind == 2:
            cut = len(body) // 3
            return [head, body[:cut], body[cut:]]
        return head + body
    head_bytes = _HEAD.pack(conn, seq, zlib.crc32(body))
    if kind == 3:
        cut = len(body) // 2
        return [head_bytes, body[:cut], body[cut:]]
    return head_bytes + body


def _check(tally: Tally, conn: int, seq: int, message: str | bytes) -> None:
    if isinstance(message, str):
        got_conn, got_seq, crc, body = message.split(":", 3)
        ok = (int(got_conn), int(got_seq), int(crc, 16)) == (conn, seq, zlib.crc32(body.encode()))
    else:
        got = _HEAD.unpack_from(message)
        ok = got == (conn, seq, zlib.crc32(message[_HEAD.size :]))
    if ok:
        tally.received += 1
    elif len(tally.problems) < 20:
        tally.problems.append(f"connection {conn}: expected #{seq}, got {message[:40]!r}")


async def _send(ws: Connection, conn: int, direction: int, count: int) -> None:
    bodies = _bodies(conn, direction)
    for seq in range(count):
        kind, body = next(bodies)
        await ws.send(_message(conn, seq, kind, body))


async def _receive(ws: Connection, conn: int, count: int, tally: Tally) -> None:
    for seq in range(count):
        _check(tally, conn, seq, await ws.recv())


@pytest.mark.parametrize(("connections", "per_connection"), scales((40, 250), (1000, 1000)))
def test_every_message_arrives_once_in_order_and_intact(
    connections: int, per_connection: int
) -> None:
    raise_fd_limit()
    up, down = per_connection // 2, per_connection - per_connection // 2
    at_backend, at_client = Tally(), Tally()
    figures: dict[str, float] = {}

    async def served(ws: ServerConnection) -> None:
        assert ws.request is not None
        conn = int(ws.request.path.rsplit("=", 1)[1])
        await asyncio.gather(_send(ws, conn, 1, down), _receive(ws, conn, up, at_backend))
        await ws.wait_closed()

    async def one(port: int, conn: int, gate: asyncio.Semaphore) -> None:
        async with gate:
            # a quarter of the connections negotiate permessage-deflate end to end
            compression = "deflate" if conn % 4 == 0 else None
            async with client(
                port,
                f"/chat/1.0/x?c={conn}",
                compression=compression,
                max_size=None,
                open_timeout=120,
            ) as ws:
                await asyncio.gather(_send(ws, conn, 0, up), _receive(ws, conn, down, at_client))

    async def main() -> None:
        async with (
            backend(served, max_size=None, open_timeout=120) as b,
            Relay(
                [api(b.url)],
                ws_port=0,
                max_message_size=1 << 20,
                ping_interval=None,
                open_timeout=120,  # one loop runs clients, backend and relay: handshakes queue
            ) as relay,
        ):
            gate = asyncio.Semaphore(100)
            started = time.monotonic()
            results = await asyncio.gather(
                *(one(relay.ports["ws"], conn, gate) for conn in range(connections)),
                return_exceptions=True,
            )
            figures["seconds"] = time.monotonic() - started
            failed = [r for r in results if isinstance(r, BaseException)]
            assert not failed, failed[:3]
            stats = relay.stats
            assert stats.messages_in == connections * up
            assert stats.messages_out == connections * down
            assert stats.close_codes == {1000: connections}

    run(main(), timeout=900)
    assert at_backend.problems == []
    assert at_client.problems == []
    assert at_backend.received == connections * up
    assert at_client.received == connections * down
    total = at_backend.received + at_client.received
    print(
        f"\nintegrity: {total} messages over {connections} connections in "
        f"{figures['seconds']:.1f} s, peak RSS {rss_kib(field='VmHWM'):,} KiB"
    )
