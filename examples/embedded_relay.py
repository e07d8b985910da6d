"""Serve an AsyncAPI document through the relay from your own asyncio program, with auth.

Run: ``python examples/embedded_relay.py chat.yaml [PORT]`` (Ctrl-C stops it). API keys come
from ``examples/api-keys.yaml`` (beside this file); bearer JWTs (HS256) are accepted when the
``JWT_SECRET`` environment variable holds the shared secret (32 bytes or more). The backend is
told who each client is in the ``X-Asyncapi-Gw-Principal`` header, and ``/health`` and
``/metrics`` are served on a loopback admin port of their own.
"""

import asyncio
import os
import sys
from pathlib import Path

from asyncapi_gw.asyncapi import load_asyncapi
from asyncapi_gw.relay import Relay, load_auth_config
from asyncapi_gw.relay.config import DEFAULT_PRINCIPAL_HEADER

KEYS = Path(__file__).with_name("api-keys.yaml")


async def main(path: str, port: int = 9099) -> None:
    # As `asyncapi-gw serve --api-keys FILE --jwt-secret S` reads them. An embedder may pass
    # AuthConfig(api_keys=lookup) instead: a callable from a key to an ApiKeyInfo(name=...,
    # scopes=..., environment=...) or None, for keys kept elsewhere (a database).
    auth = load_auth_config(api_keys_file=KEYS, jwt_secret=os.environ.get("JWT_SECRET"))
    async with Relay(
        [load_asyncapi(path)],
        ws_port=port,
        auth=auth,
        principal_header=DEFAULT_PRINCIPAL_HEADER,
        admin_port=0,  # any free port; the relay reports it
    ) as relay:
        print(f"relaying on ws://127.0.0.1:{relay.ports['ws']}", flush=True)
        print(f"admin on http://127.0.0.1:{relay.ports['admin']}/health", flush=True)
        await asyncio.Future()  # serve until cancelled


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], *map(int, sys.argv[2:3])))
