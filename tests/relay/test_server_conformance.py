"""The relay shell against peers that break the protocol, and the HTTP answers RFC 9110/9112 and
RFC 6750 ask for, over real loopback sockets (raw bytes where a real client would not misbehave).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import re
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import attrs
import pytest
from raw_frames import parse_frames, raw_frame
from relay_harness import UPGRADE, api, backend, client, closed_code, http_get, run

from asyncapi_gw.relay import Relay

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_QUICK = {"close_timeout": 1.0, "ping_interval": None}


@attrs.define
class RawBackend:
    """A backend written byte by byte: ``received`` is everything the relay sent it after its
    handshake, read until the relay closed its side."""

    url: str = ""
    received: bytes = b""
    done: asyncio.Event = attrs.Factory(asyncio.Event)

    def frames(self) -> list[tuple[int, int, bytes]]:
        return parse_frames(self.received)


Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def raw_backend(script: Script, *, accept: bytes | None = None) -> AsyncIterator[RawBackend]:
    """Answers the upgrade (with the header line ``accept`` instead of the right
    ``Sec-WebSocket-Accept`` when given), runs ``script``, then records what arrives until EOF."""
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
        try:
            await script(reader, writer)
            state.received += await asyncio.wait_for(reader.read(), 10)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            state.done.set()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    state.url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    async with server:
        yield state


def _close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


# What a backend may send that breaks RFC 6455, and the reason the relay gives it with 1002.
BACKEND_VIOLATIONS = {
    "close code 1005": (raw_frame(8, _close_payload(1005), mask=False), "invalid close code"),
    "masked frame": (raw_frame(1, b"hi", mask=True), "masked frame"),
    "RSV bits": (raw_frame(1, b"hi", mask=False, rsv=4), "reserved bits"),
}


@pytest.mark.parametrize("name", BACKEND_VIOLATIONS)
def test_backend_protocol_error_is_1014_to_the_client_and_1002_to_the_backend(name: str) -> None:
    bad, why = BACKEND_VIOLATIONS[name]

    async def misbehave(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.received += await reader.readexactly(6 + 2)  # the client's "go", masked
        writer.write(bad)

    async def main() -> None:
        nonlocal state
        async with (
            raw_backend(misbehave) as state,
            Relay([api(state.url)], ws_port=0, **_QUICK) as relay,
            client(relay.ports["ws"], "/chat/1.0/x", compression=None) as ws,
        ):
            await ws.send("go")
            code, reason = await closed_code(ws)
            assert code == 1014
            assert reason is not None
            assert reason.startswith("bad gateway: backend protocol error")
            assert why in reason
            await asyncio.wait_for(state.done.wait(), 10)
        frames = state.frames()
        assert [opcode for _, opcode, _ in frames] == [1, 8]
        assert frames[0][2] == b"go"
        close = frames[1][2]
        assert struct.unpack("!H", close[:2])[0] == 1002
        assert why in close[2:].decode()

    state = RawBackend()
    run(main())


def test_client_protocol_error_inside_a_fragmented_message_closes_the_backend_cleanly() -> None:
    async def main() -> None:
        async with (
            backend(compression=None) as b,
            Relay([api(b.url)], ws_port=0, **_QUICK) as relay,
        ):
            reader, writer = await asyncio.open_connection("127.0.0.1", relay.ports["ws"])
            writer.write(
                b"GET /chat/1.0/x HTTP/1.1\r\nHost: relay\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\n\r\n"
            )
            await reader.readuntil(b"\r\n\r\n")
            # the first fragment of a text message, then a frame with a reserved bit
            writer.write(raw_frame(1, b"half", fin=False))
            await asyncio.sleep(0.05)  # the fragment goes out alone
            writer.write(raw_frame(0, b"rest", rsv=2))
            got = parse_frames(await asyncio.wait_for(reader.read(), 10))
            writer.close()
            assert [(opcode, payload[:2]) for _, opcode, payload in got] == [
                (8, struct.pack("!H", 1002))
            ]
            for _ in range(100):
                if b.closes:
                    break
                await asyncio.sleep(0.02)
            assert b.closes == [1001]
            assert b.connections[0].close_reason.startswith("client protocol error: reserved bits")

    run(main())


async def _nothing(_reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
    pass


@pytest.mark.parametrize(
    ("header", "said"),
    [
        (b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n", "wrong Sec-WebSocket-Accept"),
        (b"", "missing Sec-WebSocket-Accept"),
        (b"Sec-WebSocket-Accept: a\r\nSec-WebSocket-Accept: b\r\n", "more than one"),
    ],
)
def test_backend_accept_key_problems_are_502_saying_what_is_wrong(header: bytes, said: str) -> None:
    async def main() -> None:
        async with (
            raw_backend(_nothing, accept=header) as state,
            Relay([api(state.url)], ws_port=0, **_QUICK) as relay,
        ):
            status, _, body = await http_get(relay.ports["ws"], "/chat/1.0/x", UPGRADE)
            assert status == 502
            assert said in body

    run(main())
