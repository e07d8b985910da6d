"""Shared pieces of the relay shell's tests: APIs, real websockets backends and clients."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import attrs
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from asyncapi_gw.model import (
    Endpoint,
    Operation,
    StreamingAPI,
    Topic,
    TopicOperation,
)

PUB = TopicOperation(operation=Operation.PUBLISH)
SUB = TopicOperation(operation=Operation.SUBSCRIBE)


def run(coro: Coroutine[Any, Any, Any], timeout: float = 15.0) -> Any:
    """Run one test coroutine on a fresh loop, bounded in time."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait (polling the loop) until ``condition`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def topic(name: str, *, pub: bool = True, sub: bool = True, **fields: Any) -> Topic:
    return Topic(name=name, publish=PUB if pub else None, subscribe=SUB if sub else None, **fields)


def api(
    backend: str,
    *,
    name: str = "Chat",
    version: str = "1.0",
    context: str = "/chat",
    topics: tuple[Topic, ...] | None = None,
    **fields: Any,
) -> StreamingAPI:
    return StreamingAPI(
        name=name,
        version=version,
        context=context,
        production_endpoint=Endpoint(url=backend),
        topics=topics if topics is not None else (topic("/*"),),
        **fields,
    )


@attrs.define
class Backend:
    """A real websockets server on 127.0.0.1; ``requests`` holds each handshake's path and
    headers, ``closes`` the close code each connection ended with."""

    url: str = ""
    paths: list[str] = attrs.Factory(list)
    headers: list[dict[str, str]] = attrs.Factory(list)
    closes: list[int | None] = attrs.Factory(list)
    connections: list[ServerConnection] = attrs.Factory(list)


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


@contextlib.asynccontextmanager
async def backend(
    handler: Callable[[ServerConnection], Awaitable[None]] = echo, **options: Any
) -> AsyncIterator[Backend]:
    state = Backend()

    async def wrapped(ws: ServerConnection) -> None:
        state.connections.append(ws)
        state.paths.append(ws.request.path if ws.request else "")
        state.headers.append(dict(ws.request.headers.raw_items()) if ws.request else {})
        with contextlib.suppress(ConnectionClosed):
            await handler(ws)
        state.closes.append(ws.close_code)

    async with serve(wrapped, "127.0.0.1", 0, **options) as server:
        port = server.sockets[0].getsockname()[1]
        state.url = f"ws://127.0.0.1:{port}"
        yield state


def client(relay_port: int, path: str, **options: Any) -> Any:
    """``async with client(port, "/chat/1.0/x") as ws`` — a websockets client via the relay."""
    options.setdefault("open_timeout", 5)
    return connect(f"ws://127.0.0.1:{relay_port}{path}", **options)


async def http_get(port: int, target: str, headers: str = "") -> tuple[int, str, str]:
    """A raw HTTP/1.1 GET: status, head and body of the answer (read to EOF)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode("latin-1"))
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = data.decode("latin-1").partition("\r\n\r\n")
    return int(head.split(" ", 2)[1]), head, body


UPGRADE = (
    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)


async def closed_code(ws: ClientConnection) -> tuple[int | None, str | None]:
    """Wait for the connection to close; the code and reason the client received."""
    with contextlib.suppress(ConnectionClosed):
        while True:
            await ws.recv()
    frame = ws.protocol.close_rcvd
    return (frame.code, frame.reason) if frame else (None, None)


@contextlib.asynccontextmanager
async def embedded(relay: Any) -> AsyncIterator[int]:
    """``relay`` inside a websockets server of its own, as an embedder runs it; yields its port."""
    async with serve(
        relay.handler,
        "127.0.0.1",
        0,
        process_request=relay.process_request,
        process_response=relay.process_response,
    ) as server:
        yield server.sockets[0].getsockname()[1]
