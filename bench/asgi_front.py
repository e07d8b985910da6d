"""The ASGI targets of ``bench/run.py``: uvicorn serving the relay's ASGI front, or a plain
FastAPI WebSocket endpoint that relays to the same backend.

    python bench/asgi_front.py relay DOC KEYS PORT [--ws websockets]
    python bench/asgi_front.py fastapi-echo BACKEND_URL PORT [--ws websockets]

Both run under uvicorn on uvloop (when installed) with the WebSocket implementation ``--ws``
(uvicorn's ``websockets``, its default for the bench; ``websockets-sansio`` and ``wsproto`` are
its others), one process, access log off; each prints ``listening on ws://127.0.0.1:PORT``.

``relay``: ``AsgiRelay`` over the bench document with its API keys: routing, API key auth,
the event quota and every per-message check, as ``asyncapi-gw serve`` runs them.
``fastapi-echo``: what an application would write by hand with FastAPI, and the least a
relay through an ASGI server costs: accept, dial the backend with websockets' client, copy
messages both ways until one side closes. No routing, auth, limits or close-code mapping.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect  # resolved by FastAPI at run time
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from asyncapi_gw.asyncapi import load_asyncapi
from asyncapi_gw.relay import AsgiRelay, load_auth_config

try:
    import uvloop
except ImportError:  # measured on asyncio then
    uvloop = None  # type: ignore[assignment]


def relay_app(doc: Path, keys: Path) -> Any:
    auth = load_auth_config(api_keys_file=keys)
    return AsgiRelay(
        [load_asyncapi(str(doc))],
        auth=auth,
        max_message_size=1 << 20,
        on_wrong_direction="close",
    )


def fastapi_echo_app(backend_url: str) -> Any:
    app = FastAPI()

    @app.websocket("/{path:path}")
    async def relay(client: WebSocket, path: str) -> None:
        await client.accept()
        async with connect(backend_url, compression=None, ping_interval=None) as backend:

            async def up() -> None:
                with contextlib.suppress(WebSocketDisconnect, ConnectionClosed):
                    while True:
                        message = await client.receive()
                        if message["type"] == "websocket.disconnect":
                            return
                        text = message.get("text")
                        await backend.send(text if text is not None else message["bytes"])

            async def down() -> None:
                with contextlib.suppress(ConnectionClosed, RuntimeError):
                    async for message in backend:
                        if isinstance(message, str):
                            await client.send_text(message)
                        else:
                            await client.send_bytes(message)

            tasks = [asyncio.ensure_future(up()), asyncio.ensure_future(down())]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()
        with contextlib.suppress(RuntimeError):
            await client.close()

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=["relay", "fastapi-echo"])
    parser.add_argument("args", nargs="+")
    parser.add_argument("--ws", default="websockets")
    args = parser.parse_args()
    if args.kind == "relay":
        doc, keys, port = args.args
        app = relay_app(Path(doc), Path(keys))
    else:
        backend_url, port = args.args
        app = fastapi_echo_app(backend_url)
    loop = "asyncio" if uvloop is None else "uvloop"
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=int(port),
        ws=args.ws,
        loop="none",  # the loop is chosen below
        lifespan="off",
        access_log=False,
        log_level="warning",
        ws_ping_interval=None,
        backlog=4096,
    )
    server = uvicorn.Server(config)

    async def serve() -> None:
        serving = asyncio.ensure_future(server.serve())
        while not server.started and not serving.done():
            await asyncio.sleep(0.01)
        print(f"listening on ws://127.0.0.1:{port} ({args.ws}, {loop})", flush=True)
        await serving

    if uvloop is not None:
        uvloop.run(serve())
    else:
        asyncio.run(serve())


if __name__ == "__main__":
    main()
