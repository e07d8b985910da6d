"""Fixtures for the CLI's process tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from websockets.sync.server import Server, ServerConnection, serve


@pytest.fixture
def echo_backend() -> Iterator[str]:
    def echo(ws: ServerConnection) -> None:
        for message in ws:
            ws.send(message)

    server: Server
    with serve(echo, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}"
        server.shutdown()
        thread.join(5)
