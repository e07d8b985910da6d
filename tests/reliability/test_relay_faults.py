"""Faults end to end through a running relay: backends killed, refusing or hanging, peers
that stop reading, clients resetting mid-frame, the relay shut down under load (in process and
as ``asyncapi-gw serve``).  Every wait is bounded by the relay's own timeouts plus a margin."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from raw_frames import raw_frame
from relay_harness import api, backend, client, closed_code, run
from relay_load import (
    raise_fd_limit,
    raw_open,
    read_close,
    reset,
    scales,
    snapshot,
    tracing,
    until,
    upgrade,
)
from websockets.asyncio.server import ServerConnection

from asyncapi_gw.relay import Relay

_QUICK = {"close_timeout": 1.0, "drain_timeout": 2.0, "ping_interval": None}
# A websockets echo backend in its own process, so that it can be killed with SIGKILL.
_ECHO_PROCESS = """
import asyncio, sys
from websockets.asyncio.server import serve
async def echo(ws):
    async for message in ws:
        await ws.send(message)
async def main():
    async with serve(echo, "127.0.0.1", 0, compression=None) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()
asyncio.run(main())
"""


@pytest.mark.parametrize("connections", scales(20, 400))
def test_backend_killed_mid_stream_gives_every_client_1014(connections: int) -> None:
    raise_fd_limit()
    proc = subprocess.Popen([sys.executable, "-c", _ECHO_PROCESS], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    port = int(proc.stdout.readline())

    async def streaming(relay_port: int, started: asyncio.Event) -> tuple[int | None, str | None]:
        async with client(relay_port, "/chat/1.0/x", compression=None, open_timeout=30) as ws:
            await ws.send("0")
            await ws.recv()
            started.set()
            for n in range(1, 1_000_000):  # until the backend dies
                try:
                    await ws.send(str(n))
                    await ws.recv()
                except Exception:
                    break
            return await closed_code(ws)

    async def main() -> None:
        async with Relay([api(f"ws://127.0.0.1:{port}")], ws_port=0, **_QUICK) as relay:
            events = [asyncio.Event() for _ in range(connections)]
            tasks = [asyncio.create_task(streaming(relay.ports["ws"], e)) for e in events]
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 60)
            proc.send_signal(signal.SIGKILL)
            # the relay learns of the loss from the kernel and answers at once; no timer involved
            codes = await asyncio.wait_for(asyncio.gather(*tasks), 30)
            assert codes == [(1014, "backend connection lost")] * connections
            assert await until(lambda: relay.connections == 0, 5)
            assert relay.stats.close_codes == {1014: connections}

    try:
        run(main(), timeout=120)
    finally:
        proc.kill()
        proc.wait()


async def _status(port: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(upgrade("/chat/1.0/x"))
    answer = await reader.read()
    writer.close()
    return int(answer.split(b" ", 2)[1])


@pytest.mark.parametrize("connections", scales(10, 300))
def test_backends_failing_the_handshake_give_502_or_504_within_the_open_timeout(
    connections: int,
) -> None:
    raise_fd_limit()
    behaviours = {
        "refuses": 502,  # nothing listens
        "closes at once": 502,
        "resets at once": 502,
        "answers garbage": 502,
        "answers 200": 502,
        "accepts and hangs": 504,
        "answers half a response and hangs": 504,
    }

    async def misbehave(
        kind: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if kind == "resets at once":
            reset(writer)
            return
        if kind != "closes at once":
            await reader.readuntil(b"\r\n\r\n")
        if kind == "answers garbage":
            writer.write(b"\x16\x03\x01 not HTTP at all\r\n\r\n")
        elif kind == "answers 200":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        elif kind == "answers half a response and hangs":
            writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n")
        if "hangs" in kind:
            await reader.read()
        writer.close()

    async def main() -> None:
        for kind, expected in behaviours.items():
            server = await asyncio.start_server(
                lambda r, w, k=kind: misbehave(k, r, w), "127.0.0.1", 0, backlog=4096
            )
            port = server.sockets[0].getsockname()[1]
            if kind == "refuses":
                server.close()
                await server.wait_closed()
            open_timeout = 3.0
            async with Relay(
                [api(f"ws://127.0.0.1:{port}")], ws_port=0, open_timeout=open_timeout, **_QUICK
            ) as relay:
                statuses = await asyncio.wait_for(
                    asyncio.gather(*(_status(relay.ports["ws"]) for _ in range(connections))),
                    open_timeout + 10,  # generous: the relay's own timeout bounds the answers
                )
                assert statuses == [expected] * connections, kind
                assert relay.stats.rejections == {expected: connections}, kind
                assert await until(lambda: relay.connections == 0, 5), kind
            server.close()

    run(main(), timeout=120)


def _stalled(counts: list[int]) -> Callable[[], bool]:
    """A predicate true once ``counts`` did not change since it was last asked."""
    last: list[int] = []

    def stalled() -> bool:
        nonlocal last
        same, last = counts == last, list(counts)
        return same

    return stalled


@pytest.mark.parametrize("connections", scales(10, 100))
def test_backend_that_stops_reading_pushes_back_to_every_client(connections: int) -> None:
    raise_fd_limit()
    limit = 64 * 1024

    async def never_reads(ws: ServerConnection) -> None:
        ws.transport.pause_reading()
        await ws.wait_closed()

    async def main() -> None:
        async with (
            backend(never_reads, compression=None, close_timeout=0.5) as b,
            Relay([api(b.url)], ws_port=0, write_buffer_limit=limit, **_QUICK) as relay,
        ):
            writers = []
            sent = [0] * connections

            async def flood(i: int) -> None:
                _, writer, _ = await raw_open(relay.ports["ws"], "/chat/1.0/x")
                writers.append(writer)
                chunk = raw_frame(2, b"z" * 65536)
                for _ in range(4000):  # 256 MiB each if nothing pushed back
                    writer.write(chunk)
                    await writer.drain()  # blocks once the relay stops reading us
                    sent[i] += 1

            with tracing():
                base = snapshot().traced
                tasks = [asyncio.create_task(flood(i)) for i in range(connections)]
                assert await until(lambda: relay.stats.connections_open == connections, 30)
                assert await until(_stalled(sent), 30, step=0.3)
                assert max(sent) < 1000  # every client is blocked
                grown = tracemalloc.get_traced_memory()[1] - base
                # bounded by the buffers, not by the 256 MiB each client tried to send
                assert grown < connections * 2 * 1024 * 1024 + 8 * 1024 * 1024
            for task in tasks:
                task.cancel()
            for writer in writers:
                writer.transport.abort()
            # the relay is not reading these clients and cannot see them go (without keepalive
            # they stay until the backend moves); the drain ends them
            await asyncio.wait_for(relay.close(), _QUICK["drain_timeout"] + 10)
            assert relay.connections == 0

    run(main(), timeout=120)


@pytest.mark.parametrize("connections", scales(10, 200))
def test_client_that_stops_reading_pushes_back_to_the_backend(connections: int) -> None:
    raise_fd_limit()
    limit = 64 * 1024
    sent: list[int] = []

    async def floods(ws: ServerConnection) -> None:
        sent.append(0)
        me = len(sent) - 1
        chunk = b"w" * 65536
        for _ in range(4000):
            await ws.send(chunk)
            sent[me] += 1

    async def main() -> None:
        async with (
            backend(floods, compression=None, close_timeout=0.5) as b,
            Relay([api(b.url)], ws_port=0, write_buffer_limit=limit, **_QUICK) as relay,
        ):
            writers = []
            with tracing():
                base = snapshot().traced
                for _ in range(connections):
                    _reader, writer, _ = await raw_open(relay.ports["ws"], "/chat/1.0/x")
                    writer.transport.pause_reading()  # this client stops reading
                    writers.append(writer)
                assert await until(lambda: relay.stats.connections_open == connections, 30)
                stalled = _stalled(sent)
                assert await until(lambda: len(sent) == connections and stalled(), 30, step=0.3)
                assert max(sent) < 1000  # every backend is blocked
                grown = tracemalloc.get_traced_memory()[1] - base
                assert grown < connections * 2 * 1024 * 1024 + 8 * 1024 * 1024
            for writer in writers:
                writer.transport.abort()
            await asyncio.wait_for(relay.close(), _QUICK["drain_timeout"] + 10)
            assert relay.connections == 0
            assert await until(lambda: len(b.closes) == connections, 10)

    run(main(), timeout=120)


def test_a_paused_client_that_vanishes_is_reaped_by_the_keepalive() -> None:
    async def never_reads(ws: ServerConnection) -> None:
        ws.transport.pause_reading()
        await ws.wait_closed()

    async def main() -> None:
        keepalive = {"ping_interval": 0.5, "ping_timeout": 0.5, "close_timeout": 0.5}
        async with (
            backend(never_reads, compression=None, close_timeout=0.5) as b,
            Relay([api(b.url)], ws_port=0, write_buffer_limit=1024, **keepalive) as relay,
        ):
            _, writer, _ = await raw_open(relay.ports["ws"], "/chat/1.0/x")
            for _ in range(30):  # more than the sockets' buffers hold
                writer.write(raw_frame(2, b"z" * 1_000_000))
            # the relay stopped reading this client: its bytes wait in its own buffer
            assert await until(lambda: writer.transport.get_write_buffer_size() > 0, 10)
            reset(writer)
            # two ping intervals and the close timeout, plus a generous margin
            assert await until(lambda: relay.connections == 0, 10)
            # lost when a ping cannot be written (1006), or silent after it (1011)
            assert sum(relay.stats.close_codes.values()) == 1
            assert set(relay.stats.close_codes) <= {1006, 1011}

    run(main())


@pytest.mark.parametrize("connections", scales(30, 1000))
def test_clients_resetting_mid_frame_or_mid_handshake_leave_nothing_behind(
    connections: int,
) -> None:
    raise_fd_limit()

    async def hangs(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    async def main() -> None:
        hanging = await asyncio.start_server(hangs, "127.0.0.1", 0, backlog=4096)
        hang_url = f"ws://127.0.0.1:{hanging.sockets[0].getsockname()[1]}"
        async with backend(close_timeout=0.5, backlog=4096) as b, hanging:
            apis = [api(b.url), api(hang_url, name="Hang", context="/hang")]
            async with Relay(apis, ws_port=0, open_timeout=3, **_QUICK) as relay:
                port = relay.ports["ws"]
                before = snapshot()

                async def one(i: int) -> None:
                    kind = i % 4
                    if kind == 0:  # mid-frame: a header promising 1000 bytes, then 10
                        _, writer, _ = await raw_open(port, "/chat/1.0/x")
                        writer.write(raw_frame(2, b"q" * 1000)[:16])
                        await writer.drain()
                    elif kind == 1:  # mid-handshake
                        _, writer = await asyncio.open_connection("127.0.0.1", port)
                        writer.write(upgrade("/chat/1.0/x")[:30])
                        await writer.drain()
                    elif kind == 2:  # while the relay dials a backend that hangs
                        _, writer = await asyncio.open_connection("127.0.0.1", port)
                        writer.write(upgrade("/hang/1.0/x"))
                        await writer.drain()
                    else:  # mid-frame of a fragmented message
                        _, writer, _ = await raw_open(port, "/chat/1.0/x")
                        head = raw_frame(1, b"part", fin=False)
                        writer.write(head + raw_frame(0, b"x" * 500)[:100])
                        await writer.drain()
                    await asyncio.sleep(0.05)
                    reset(writer)

                await asyncio.gather(*(one(i) for i in range(connections)))
                assert await until(lambda: relay.connections == 0, 10)
                assert relay.connections == 0
                relayed = (connections + 3) // 4 + (connections + 0) // 4
                assert await until(lambda: len(b.closes) >= relayed, 10)
                assert None not in b.closes  # every backend connection was closed
                assert await until(lambda: snapshot().fds <= before.fds, 10)
                # the relay still serves
                async with client(port, "/chat/1.0/x") as ws:
                    await ws.send("alive")
                    assert await ws.recv() == "alive"

    run(main(), timeout=120)


@pytest.mark.parametrize("connections", scales(50, 1000))
def test_shutdown_under_load_gives_every_client_1001_and_nothing_hangs(connections: int) -> None:
    raise_fd_limit()

    async def chatty(ws: ServerConnection) -> None:
        async def push() -> None:
            for n in range(1_000_000):
                await ws.send(f"tick {n}")
                await asyncio.sleep(0.001)

        pusher = asyncio.create_task(push())
        try:
            async for message in ws:
                await ws.send(message)
        finally:
            pusher.cancel()

    async def busy(port: int, ready: asyncio.Event) -> tuple[int | None, str | None]:
        async with client(port, "/chat/1.0/x", open_timeout=60) as ws:
            ready.set()
            for n in range(1_000_000):
                try:
                    await ws.send(f"msg {n}")
                    await ws.recv()
                except Exception:
                    break
            return await closed_code(ws)

    async def main() -> None:
        async with backend(chatty) as b:
            relay = Relay([api(b.url)], ws_port=0, **_QUICK)
            await relay.start()
            events = [asyncio.Event() for _ in range(connections)]
            tasks = [asyncio.create_task(busy(relay.ports["ws"], e)) for e in events]
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 60)
            await asyncio.wait_for(relay.close(), _QUICK["drain_timeout"] + 10)
            codes = await asyncio.wait_for(asyncio.gather(*tasks), 30)
            assert codes == [(1001, "relay shutting down")] * connections
            assert relay.connections == 0
            assert await until(lambda: len(b.closes) == connections, 10)

    run(main(), timeout=180)


def test_serve_process_shut_down_under_load_closes_every_client_1001(tmp_path: Path) -> None:
    raise_fd_limit()
    connections = 50

    async def main() -> None:
        async with backend() as b:
            doc = tmp_path / "echo.json"
            doc.write_text(
                json.dumps(
                    {
                        "asyncapi": "2.6.0",
                        "info": {"title": "Echo", "version": "1.0"},
                        "servers": {"production": {"url": b.url, "protocol": "ws"}},
                        "channels": {"/*": {"publish": {}, "subscribe": {}}},
                    }
                )
            )
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "asyncapi_gw",
                "serve",
                str(doc),
                "--host",
                "127.0.0.1",
                "--ws-port",
                "0",
                "--no-wss",
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                assert proc.stderr is not None
                port = 0
                while not port:
                    line = (await asyncio.wait_for(proc.stderr.readline(), 20)).decode()
                    assert line, "serve exited"
                    if found := re.search(r"listening on ws://[^:]+:(\d+)", line):
                        port = int(found.group(1))
                readers = []
                for _ in range(connections):
                    reader, writer, _ = await raw_open(port, "/echo/1.0/room")
                    writer.write(raw_frame(1, b"load"))
                    readers.append((reader, writer))
                proc.send_signal(signal.SIGTERM)
                codes = await asyncio.gather(*(read_close(r, 30) for r, _ in readers))
                assert codes == [1001] * connections
                for _, writer in readers:
                    writer.close()
                assert await asyncio.wait_for(proc.wait(), 30) == 0
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()

    run(main(), timeout=90)
