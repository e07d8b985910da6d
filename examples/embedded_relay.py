"""Serve an AsyncAPI document through the relay from your own asyncio program.

Run: ``python examples/embedded_relay.py chat.yaml [PORT]`` (Ctrl-C stops it).
"""

import asyncio
import sys

from asyncapi_gw.asyncapi import load_asyncapi
from asyncapi_gw.relay import Relay


async def main(path: str, port: int = 9099) -> None:
    async with Relay([load_asyncapi(path)], ws_port=port) as relay:
        print(f"relaying on ws://127.0.0.1:{relay.ports['ws']}", flush=True)
        await asyncio.Future()  # serve until cancelled


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], *map(int, sys.argv[2:3])))
