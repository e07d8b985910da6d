"""Raw WebSocket frames and a raw backend, built byte by byte (RFC 6455), independently of the
code under test."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import re
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import attrs

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def raw_frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    mask: bool = True,
    rsv: int = 0,
    length: int | None = None,
) -> bytes:
    """One frame in the minimal length form; ``length`` overrides the declared payload length."""
    size = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    bit = 0x80 if mask else 0
    if size < 126:
        head += bytes([bit | size])
    elif size < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", size)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", size)
    if not mask:
        return head + payload
    key = os.urandom(4)
    n = len(payload)
    stream = (key * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")
    return head + key + masked


def parse_frames(data: bytes) -> list[tuple[int, int, bytes]]:
    """The whole frames at the start of ``data``: (first header byte, opcode, unmasked payload).

    A frame cut short at the end of ``data`` is left out."""
    frames = []
    i = 0
    while len(data) - i >= 2:
        b0, b1 = data[i], data[i + 1]
        size, i = b1 & 0x7F, i + 2
        if size == 126:
            size, i = struct.unpack("!H", data[i : i + 2])[0], i + 2
        elif size == 127:
            size, i = struct.unpack("!Q", data[i : i + 8])[0], i + 8
        key = b""
        if b1 & 0x80:
            key, i = data[i : i + 4], i + 4
        if i + size > len(data):
            break
        payload = data[i : i + size]
        if key:
            payload = bytes(c ^ key[n % 4] for n, c in enumerate(payload))
        frames.append((b0, b0 & 0x0F, payload))
        i += size
    return frames


@attrs.define
class RawBackend:
    """A backend written byte by byte: ``received`` is what the relay sent it after its
    handshake, up to its close frame."""

    url: str = ""
    received: bytes = b""
    done: asyncio.Event = attrs.Factory(asyncio.Event)

    def frames(self) -> list[tuple[int, int, bytes]]:
        return parse_frames(self.received)


Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def raw_backend(script: Script, *, accept: bytes | None = None) -> AsyncIterator[RawBackend]:
    """Answers the upgrade (with the header line ``accept`` instead of the right
    ``Sec-WebSocket-Accept`` when given), runs ``script``, then records what arrives until a
    close frame or EOF, and closes."""
    state = RawBackend()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        found = re.search(rb"\r\nSec-WebSocket-Key: ([^\r]+)", head)
        assert found is not None
        right = b"Sec-WebSocket-Accept: %s\r\n" % base64.b64encode(
            hashlib.sha1(found[1] + _GUID, usedforsecurity=False).digest()
        )
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + (right if accept is None else accept)
            + b"\r\n"
        )

        async def record() -> None:
            while not any(opcode == 8 for _, opcode, _ in state.frames()):
                data = await reader.read(65536)
                if not data:
                    return
                state.received += data

        try:
            await script(reader, writer)
            await asyncio.wait_for(record(), 10)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            state.done.set()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    state.url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    async with server:
        yield state
