"""Leaks: many connect/disconnect cycles through a running relay (whole sessions, clients that
vanish, aborted and refused handshakes, a backend that refuses); open descriptors, asyncio tasks
and traced memory return to their baseline.

Short run: 1,000 cycles.  Long run (``RELIABILITY_SCALE=long pytest -m slow``): 20,000 cycles.
"""

from __future__ import annotations

import asyncio
import socket
import time
import tracemalloc

import pytest
from raw_frames import raw_frame
from relay_harness import api, echo, run
from relay_load import (
    raise_fd_limit,
    raw_open,
    read_close,
    reset,
    rss_kib,
    scales,
    snapshot,
    tracing,
    until,
    upgrade,
)
from websockets.asyncio.server import ServerConnection, serve

from asyncapi_gw.relay import Relay

_KINDS = (
    "session",  # open, one message each way, close 1000
    "client vanishes",  # RST after the 101
    "aborted handshake",  # half a request, then RST
    "refused 404",
    "backend refuses 502",
    "empty connection",  # connect and close without a byte
)


_BASE: list[tracemalloc.Snapshot] = []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _cycle(port: int, kind: str) -> None:
    if kind == "session":
        reader, writer, _ = await raw_open(port, "/chat/1.0/x")
        writer.write(raw_frame(1, b"ping?"))
        echo = await reader.readexactly(7)
        assert echo == b"\x81\x05ping?"
        writer.write(raw_frame(8, b"\x03\xe8"))
        assert await read_close(reader, 10) == 1000
        writer.close()
        return
    if kind == "client vanishes":
        _, writer, _ = await raw_open(port, "/chat/1.0/x")
        reset(writer)
        return
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if kind == "aborted handshake":
        writer.write(upgrade("/chat/1.0/x")[:40])
        await writer.drain()
        reset(writer)
        return
    if kind == "empty connection":
        writer.close()
        return
    writer.write(upgrade("/nowhere/1.0/x" if kind == "refused 404" else "/dead/1.0/x"))
    answer = await asyncio.wait_for(reader.read(), 10)
    assert answer.startswith(b"HTTP/1.1 404 " if kind == "refused 404" else b"HTTP/1.1 502 ")
    writer.close()


@pytest.mark.parametrize("cycles", scales(600, 20_000))
def test_connect_disconnect_cycles_return_to_the_baseline(cycles: int) -> None:
    raise_fd_limit()
    figures: dict[str, float] = {}

    async def batch(port: int, count: int, workers: int = 50) -> None:
        async def worker(first: int) -> None:
            for i in range(first, count, workers):
                await _cycle(port, _KINDS[i % len(_KINDS)])

        await asyncio.gather(*(worker(w) for w in range(workers)))

    opened = closed = 0

    async def counted(ws: ServerConnection) -> None:  # the harness's backend keeps its peers
        nonlocal opened, closed
        opened += 1
        try:
            await echo(ws)
        finally:
            closed += 1

    async def main() -> None:
        dead = f"ws://127.0.0.1:{_free_port()}"
        async with serve(counted, "127.0.0.1", 0, compression=None, close_timeout=1) as server:
            url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
            apis = [api(url), api(dead, name="Dead", context="/dead")]
            async with Relay(apis, ws_port=0, close_timeout=1, ping_interval=None) as relay:
                port = relay.ports["ws"]

                def settled() -> bool:
                    return relay.connections == 0 and opened == closed

                await batch(port, 300)  # warm up: lazy imports, caches, free lists
                assert await until(settled, 10)
                before = snapshot()
                _BASE.append(tracemalloc.take_snapshot())
                rss_before = rss_kib()
                started = time.monotonic()
                await batch(port, cycles)
                figures["seconds"] = time.monotonic() - started
                assert await until(settled, 30)
                assert await until(lambda: snapshot().fds <= before.fds, 10)
                after = snapshot()
                assert after.fds == before.fds
                assert after.tasks == before.tasks
                # counters and free lists may hold a little; a leak of even 100 bytes per
                # cycle would pass this bound at the long run's size
                figures["grown"] = after.traced - before.traced
                if figures["grown"] >= 512 * 1024:
                    for stat in tracemalloc.take_snapshot().compare_to(_BASE[0], "lineno")[:8]:
                        print(stat)
                assert figures["grown"] < 512 * 1024
                figures["peak"] = tracemalloc.get_traced_memory()[1]
                figures["rss"] = rss_kib() - rss_before
                assert relay.connections == 0
                assert relay.stats.connections_open == 0
                sessions = len(range(0, cycles, len(_KINDS)))
                assert relay.stats.close_codes.get(1000, 0) >= sessions

    with tracing():
        run(main(), timeout=900)
    print(
        f"\nleaks: {cycles} cycles in {figures['seconds']:.1f} s; traced memory "
        f"{figures['grown']:+,.0f} B, traced peak {figures['peak']:,.0f} B, "
        f"RSS {figures['rss']:+,.0f} KiB, peak RSS {rss_kib(field='VmHWM'):,} KiB"
    )
