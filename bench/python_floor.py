"""The floor of a Python relay on this machine: what is left when every feature is taken away.

``python bench/python_floor.py PORT BACKEND_PORT`` listens on 127.0.0.1:PORT and, for each
client, dials 127.0.0.1:BACKEND_PORT, passes the client's bytes (its handshake included) to the
backend and the backend's back, unread, as two ``asyncio.Protocol`` objects on uvloop when it is
installed — the same I/O layer as the relay. No routing, authentication, frame scanning, limits,
quotas, metrics or close codes: it is not a gateway. ``bench/run.py --targets ...,floor``
measures it beside the relay, so ``relay/floor`` shows what the relay's features cost and
``floor/nginx`` what CPython with uvloop can reach at all.
"""

from __future__ import annotations

import asyncio
import sys

try:
    import uvloop
except ImportError:  # measured with plain asyncio then
    uvloop = None  # type: ignore[assignment]


class _Side(asyncio.Protocol):
    """One socket; whatever it receives goes to ``peer``'s socket."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _Side | None = None
        # Received before the peer's socket exists: unbounded, as nothing here is defended.
        self.pending: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None:
            peer.transport.write(data)
        else:
            self.pending.append(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()


class _Client(_Side):
    def __init__(self, backend_port: int) -> None:
        super().__init__()
        self.backend_port = backend_port
        self.dial: asyncio.Task[None] | None = None  # referenced until it ends

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.dial = asyncio.get_running_loop().create_task(self._dial())

    async def _dial(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            transport, backend = await loop.create_connection(_Side, "127.0.0.1", self.backend_port)
        except OSError:
            if self.transport is not None:
                self.transport.close()
            return
        if self.transport is None or self.transport.is_closing():
            transport.close()
            return
        backend.peer, self.peer = self, backend
        for data in self.pending:
            transport.write(data)
        self.pending.clear()


async def _serve(port: int, backend_port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Client(backend_port), "127.0.0.1", port, backlog=4096
    )
    print(f"listening on ws://127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    port, backend_port = int(sys.argv[1]), int(sys.argv[2])
    if uvloop is not None:
        uvloop.run(_serve(port, backend_port))
    else:
        asyncio.run(_serve(port, backend_port))


if __name__ == "__main__":
    main()
