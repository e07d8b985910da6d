"""What only the ASGI front has: the path under a mount, refusals on a server without the
Denial Response extension, plain HTTP and lifespan, sharing an app with other routes, and a
library that needs no ASGI package. The behaviours it shares with the listener are in
test_fronts.py."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websocket
from asgi_servers import MOUNT, mounted, server, uvicorn_server
from fronts import ASGI_FRONTS
from relay_harness import api, backend, closed_code, http_get, run
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.sync.server import ServerConnection, serve

from asyncapi_gw.documents import read_document
from asyncapi_gw.errors import RelayError
from asyncapi_gw.relay import AsgiRelay
from asyncapi_gw.relay.asgi import route_target

ROOT = Path(__file__).resolve().parents[2]
CLOSE = "Connection: close\r\n"  # the server ends the connection after its answer


@pytest.mark.parametrize(
    ("scope", "target"),
    [
        ({"path": "/chat/1.0/x", "query_string": b""}, "/chat/1.0/x"),
        ({"path": "/gw/chat/1.0/x", "root_path": "/gw", "query_string": b"a=1"}, "/chat/1.0/x?a=1"),
        # the raw path keeps the client's percent-encoding; the mount is removed from it
        (
            {"path": "/gw/chat/1.0/a b", "raw_path": b"/gw/chat/1.0/a%20b", "root_path": "/gw"},
            "/chat/1.0/a%20b",
        ),
        # a root path that is not a whole segment of the path is not removed
        ({"path": "/gwx/chat", "root_path": "/gw"}, "/gwx/chat"),
        ({"path": "/gw", "root_path": "/gw"}, "/"),
        # without a raw path, the decoded path is encoded again
        ({"path": "/chat/1.0/a b"}, "/chat/1.0/a%20b"),
    ],
)
def test_route_target_is_the_path_under_the_mount(scope: dict[str, Any], target: str) -> None:
    assert route_target(scope) == target


def _without_denial(app: Any) -> Any:
    """``app`` as a server without the Denial Response extension runs it."""

    async def stripped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            scope = {**scope, "extensions": {}}
        await app(scope, receive, send)

    return stripped


def test_a_server_without_denial_responses_gets_close_4000_plus_the_status() -> None:
    async def main() -> None:
        relay = AsgiRelay([api("ws://127.0.0.1:9")])
        async with uvicorn_server(_without_denial(relay)) as port:
            async with connect(f"ws://127.0.0.1:{port}/nowhere") as ws:
                assert await closed_code(ws) == (4404, "No API is served at /nowhere.")
            async with connect(f"ws://127.0.0.1:{port}/chat/1.0/x") as ws:
                code, reason = await closed_code(ws)
                assert code == 4502
                assert reason is not None
                assert reason.startswith("cannot reach the backend")
        assert relay.stats.rejections == {404: 1, 502: 1}

    run(main())


def test_long_refusal_reasons_are_cut_to_fit_a_close_frame() -> None:
    async def main() -> None:
        relay = AsgiRelay([api("ws://127.0.0.1:9")])
        async with uvicorn_server(_without_denial(relay)) as port:
            path = "/" + "x" * 300
            async with connect(f"ws://127.0.0.1:{port}{path}") as ws:
                code, reason = await closed_code(ws)
        assert code == 4404
        assert reason is not None
        assert len(reason.encode()) == 123

    run(main())


@pytest.mark.parametrize("kind", ASGI_FRONTS)
def test_plain_http_under_the_relay_is_426_as_on_the_listener(kind: str) -> None:
    async def main() -> None:
        relay = AsgiRelay([api("ws://127.0.0.1:9")])
        app, base = mounted(kind, relay)
        async with server(kind, app) as port:
            for path in ("/chat/1.0/x", "/nowhere"):
                status, head, body = await http_get(port, f"{base}{path}", CLOSE)
                assert status == 426
                assert "upgrade: websocket" in head.lower()
                assert body == "426 Upgrade Required: only WebSocket upgrades are served here\n"

    run(main())


def test_the_relay_shares_a_fastapi_app_with_other_routes() -> None:
    async def main() -> None:
        async with backend() as b:
            relay = AsgiRelay([api(b.url)])
            app, base = mounted("uvicorn-sansio+fastapi", relay)
            assert base == MOUNT
            async with uvicorn_server(app) as port:
                status, _, body = await http_get(port, "/health", CLOSE)
                assert (status, body) == (200, '{"status":"ok"}')
                # the relay routes under its mount only: the same path at the root is FastAPI's
                with pytest.raises(InvalidStatus) as caught:
                    async with connect(f"ws://127.0.0.1:{port}/chat/1.0/x"):
                        pass
                assert caught.value.response.status_code in (403, 404)
                async with connect(f"ws://127.0.0.1:{port}{MOUNT}/chat/1.0/x") as ws:
                    await ws.send("through the mount")
                    assert await ws.recv() == "through the mount"

    run(main())


def test_an_invalid_configuration_is_a_relay_error() -> None:
    with pytest.raises(RelayError, match="invalid relay configuration"):
        AsgiRelay([], max_connections=0)
    with pytest.raises(RelayError, match="invalid relay configuration"):
        AsgiRelay([], no_such_option=1)


def test_the_library_needs_no_asgi_package() -> None:
    code = (
        "import sys\n"
        "for name in ('fastapi', 'starlette', 'uvicorn', 'hypercorn'):\n"
        "    sys.modules[name] = None  # any import of it fails\n"
        "from asyncapi_gw.relay import AsgiRelay\n"
        "import asyncapi_gw.relay.asgi\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.fixture
def echo_backend() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A threaded websockets echo backend's URL, and the headers of each handshake."""
    seen: list[dict[str, str]] = []

    def handler(ws: ServerConnection) -> None:
        if ws.request is not None:
            seen.append(dict(ws.request.headers.raw_items()))
        for message in ws:
            ws.send(message)

    with serve(handler, "127.0.0.1", 0) as echo:
        thread = threading.Thread(target=echo.serve_forever, daemon=True)
        thread.start()
        yield f"ws://127.0.0.1:{echo.socket.getsockname()[1]}", seen
        echo.shutdown()
        thread.join(5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_fastapi_example_relays_with_the_shipped_keys(
    tmp_path: Path, echo_backend: tuple[str, list[dict[str, str]]]
) -> None:
    """examples/fastapi_relay.py as a user runs it, driven by websocket-client."""
    url, seen = echo_backend
    doc = tmp_path / "chat.json"
    doc.write_text(
        json.dumps(
            {
                "asyncapi": "2.6.0",
                "info": {"title": "Chat", "version": "1.0"},
                "servers": {"production": {"url": url, "protocol": "ws"}},
                "channels": {"/rooms/{room}": {"publish": {}, "subscribe": {}}},
                "components": {
                    "securitySchemes": {
                        "key": {"type": "httpApiKey", "name": "apikey", "in": "header"}
                    }
                },
            }
        )
    )
    keys = read_document(ROOT / "examples" / "api-keys.yaml").data
    key = next(iter(keys))
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "fastapi_relay.py"), str(doc), str(port)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # the package under test
    )
    try:
        health = f"http://127.0.0.1:{port}/health"
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(health, timeout=1) as answer:
                    assert json.load(answer) == {"status": "ok", "relayed": 0}
                break
            except OSError:
                assert time.monotonic() < deadline, "the example did not start"
                time.sleep(0.1)
        base = f"ws://127.0.0.1:{port}/gw/chat/1.0/rooms/lobby"
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(base, timeout=5)
        assert refused.value.status_code == 401
        ws = websocket.create_connection(base, header=[f"apikey: {key}"], timeout=5)
        ws.send("through FastAPI")
        assert ws.recv() == "through FastAPI"
        ws.close()
        principal = json.loads(seen[0]["X-Asyncapi-Gw-Principal"])
        assert principal["principal"] == keys[key]["name"]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)


def test_the_readme_fastapi_snippet_relays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, echo_backend: tuple[str, list[dict[str, str]]]
) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### In a FastAPI or Starlette app (ASGI)") :]
    snippet = section[section.index("```python\n") + 10 : section.index("\n```\n")]
    assert len(snippet.splitlines()) <= 15
    url, _ = echo_backend
    (tmp_path / "chat.yaml").write_text(
        "asyncapi: 2.6.0\n"
        "info: {title: Chat, version: '1.0'}\n"
        f"servers: {{production: {{url: '{url}', protocol: ws}}}}\n"
        "channels: {/rooms/lobby: {publish: {}, subscribe: {}}}\n"
    )
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    exec(compile(snippet, "README.md", "exec"), namespace)  # noqa: S102

    async def main() -> None:
        async with (
            uvicorn_server(namespace["app"]) as port,
            connect(f"ws://127.0.0.1:{port}/gw/chat/1.0/rooms/lobby") as ws,
        ):
            await ws.send("from the README")
            assert await ws.recv() == "from the README"

    run(main())


@pytest.mark.parametrize("kind", ASGI_FRONTS)
def test_permessage_deflate_is_the_servers_and_each_leg_its_own(kind: str) -> None:
    async def main() -> None:
        async with backend() as b:
            for compression in (True, False):
                relay = AsgiRelay([api(b.url)], compression=compression)
                app, base = mounted(kind, relay)
                async with (
                    server(kind, app) as port,
                    connect(f"ws://127.0.0.1:{port}{base}/chat/1.0/x") as ws,
                ):
                    # the server negotiates with the client whatever the relay's setting
                    assert [e.name for e in ws.protocol.extensions] == ["permessage-deflate"]
                    text = "compressible " * 2000
                    await ws.send(text)
                    assert await ws.recv() == text
                leg = b.connections[-1].protocol.extensions
                assert [e.name for e in leg] == (["permessage-deflate"] if compression else [])

    run(main())


@pytest.mark.parametrize("kind", ASGI_FRONTS)
def test_a_client_gone_while_the_backend_is_dialled_leaves_no_error(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()
            writer.close()

        hanging = await asyncio.start_server(silent, "127.0.0.1", 0)
        url = f"ws://127.0.0.1:{hanging.sockets[0].getsockname()[1]}"
        relay = AsgiRelay([api(url)], open_timeout=0.4)
        app, base = mounted(kind, relay)
        async with hanging, server(kind, app) as port:
            with pytest.raises(TimeoutError):
                await connect(f"ws://127.0.0.1:{port}{base}/chat/1.0/x", open_timeout=0.1)
            for _ in range(100):  # the relay answers 504 to a client that is gone
                if relay.stats.rejections:
                    break
                await asyncio.sleep(0.02)
            assert relay.stats.rejections == {504: 1}
            assert relay.stats.connections_open == 0

    with caplog.at_level(logging.ERROR):
        run(main())
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
