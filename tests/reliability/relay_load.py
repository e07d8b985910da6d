"""Shared pieces of the relay reliability suites: the size knob, raw sockets and frames,
resource probes.

Every suite runs short by default; ``RELIABILITY_SCALE=long`` (with ``-m slow``) selects the
long variants, marked ``slow`` so CI never runs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import resource
import socket
import struct
import tracemalloc
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from relay_harness import UPGRADE

LONG = os.environ.get("RELIABILITY_SCALE", "short") == "long"


def scales(short: Any, long: Any) -> list[Any]:
    """Parameters for a sized test: the short one always, the long one marked ``slow``
    (selected by ``-m slow``; it runs only with ``RELIABILITY_SCALE=long``).  Tuples are
    several parameters."""
    short, long = (v if isinstance(v, tuple) else (v,) for v in (short, long))
    return [
        pytest.param(*short, id="short"),
        pytest.param(
            *long,
            id="long",
            marks=[
                pytest.mark.slow,
                pytest.mark.skipif(not LONG, reason="set RELIABILITY_SCALE=long"),
            ],
        ),
    ]


def raise_fd_limit() -> int:
    """Raise the open-file soft limit to the hard limit; the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_kib(pid: int | str = "self", field: str = "VmRSS") -> int:
    """Resident memory in KiB; ``field="VmHWM"`` for the peak."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field}")


@attrs.define
class Snapshot:
    fds: int
    tasks: int
    traced: int  # bytes allocated by Python, as tracemalloc counts them


def snapshot() -> Snapshot:
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else 0
    return Snapshot(fds=open_fds(), tasks=len(asyncio.all_tasks()), traced=traced)


@contextlib.contextmanager
def tracing() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


def upgrade(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n{UPGRADE}{extra}\r\n".encode("latin-1")


async def raw_open(
    port: int, path: str, extra: str = ""
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    """A raw client past its 101: reader, writer and the response head."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(upgrade(path, extra))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 101 "), head
    return reader, writer, head


async def read_close(reader: asyncio.StreamReader, timeout: float) -> int | None:
    """Read server frames until a close frame (its code) or EOF (``None``)."""
    return await asyncio.wait_for(_read_close(reader), timeout)


async def _read_close(reader: asyncio.StreamReader) -> int | None:
    while True:
        try:
            first, second = await reader.readexactly(2)
        except asyncio.IncompleteReadError:
            return None
        size = second & 0x7F
        if size == 126:
            size = struct.unpack("!H", await reader.readexactly(2))[0]
        elif size == 127:
            size = struct.unpack("!Q", await reader.readexactly(8))[0]
        try:
            payload = await reader.readexactly(size)
        except asyncio.IncompleteReadError:
            return None
        if first & 0x0F == 8:
            return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0) instead of a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def until(predicate: Any, timeout: float, step: float = 0.01) -> bool:
    """Poll ``predicate`` until true or ``timeout`` (a bounded protocol wait, not a timing)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(step)
    return True
