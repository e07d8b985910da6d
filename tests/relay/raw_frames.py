"""Raw WebSocket frames built byte by byte (RFC 6455), independently of the code under test."""

from __future__ import annotations

import os
import struct


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
