"""Plug the relay into a ``websockets`` server you already run.

``websockets`` owns these sockets, so this path copies messages with websockets connection
objects instead of the relay's raw byte splice (see ``asyncapi_gw.relay.embed``); use
``Relay``'s own listeners when throughput matters.

Run: ``python examples/websockets_handler.py chat.yaml [PORT]``.
"""

import asyncio
import sys

from websockets.asyncio.server import serve

from asyncapi_gw.asyncapi import load_asyncapi
from asyncapi_gw.relay import Relay


async def main(path: str, port: int = 9099) -> None:
    relay = Relay([load_asyncapi(path)])  # no listeners started: websockets serves
    async with serve(
        relay.handler,
        "127.0.0.1",
        port,
        process_request=relay.process_request,
        process_response=relay.process_response,
    ) as server:
        print(f"relaying on ws://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], *map(int, sys.argv[2:3])))
