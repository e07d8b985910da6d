"""Mount the relay in a FastAPI application, beside the application's own routes.

Run: ``python examples/fastapi_relay.py chat.yaml [PORT]`` (Ctrl-C stops it), or import
``create_app`` and serve it with any ASGI server (``uvicorn``, ``hypercorn``). Clients connect
to ``ws://127.0.0.1:PORT/gw/<context>/<version>/<topic>``; API keys come from
``examples/api-keys.yaml`` (beside this file) and the backend is told who each client is in the
``X-Asyncapi-Gw-Principal`` header. ``GET /health`` is the application's own route.
"""

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from asyncapi_gw.asyncapi import load_asyncapi
from asyncapi_gw.relay import AsgiRelay, load_auth_config
from asyncapi_gw.relay.config import DEFAULT_PRINCIPAL_HEADER

KEYS = Path(__file__).with_name("api-keys.yaml")


def create_app(path: str) -> FastAPI:
    relay = AsgiRelay(
        [load_asyncapi(path)],
        auth=load_auth_config(api_keys_file=KEYS),
        principal_header=DEFAULT_PRINCIPAL_HEADER,
        max_connections=1000,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await relay.aclose()  # a mounted app gets no lifespan of its own: close with 1001

    app = FastAPI(lifespan=lifespan)

    @app.get("/health")
    def health() -> dict[str, object]:
        return {"status": "ok", "relayed": relay.stats.connections_open}

    app.mount("/gw", relay)
    return app


if __name__ == "__main__":
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 8000
    print(f"relaying on ws://127.0.0.1:{port}/gw", flush=True)
    uvicorn.run(create_app(sys.argv[1]), host="127.0.0.1", port=port, log_level="warning")
