"""The two embedding examples, run as scripts against a real backend (the shipped API keys
file included), and the handler path."""

from __future__ import annotations

import asyncio
import json
import os
import re
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import attrs
import pytest
from relay_harness import api, backend, closed_code, embedded, http_get, run, until
from websockets.asyncio.client import connect as aconnect
from websockets.asyncio.server import ServerConnection as AsyncServerConnection
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.sync.server import ServerConnection, serve

from asyncapi_gw.documents import read_document
from asyncapi_gw.model import AuthKind, SecurityScheme
from asyncapi_gw.relay import ApiKeyInfo, AuthConfig, Relay, load_auth_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def echo() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """An echo backend's URL, and the headers of each handshake it accepted."""
    seen: list[dict[str, str]] = []

    def pick(_conn: ServerConnection, offered: list[str]) -> str | None:
        return "chat.v1" if "chat.v1" in offered else None

    def handler(ws: ServerConnection) -> None:
        if ws.request is not None:
            seen.append(dict(ws.request.headers.raw_items()))
        for message in ws:
            ws.send(message)

    with serve(handler, "127.0.0.1", 0, select_subprotocol=pick) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}", seen
        server.shutdown()
        thread.join(5)


def _start(script: str, doc: Path) -> tuple[subprocess.Popen[bytes], int]:
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / script), str(doc), "0"],
        stdout=subprocess.PIPE,
        # the package under test, not whichever copy the interpreter has installed
        env={**os.environ, "PYTHONPATH": str(EXAMPLES.parent)},
    )
    assert proc.stdout is not None
    out, deadline = b"", time.monotonic() + 10
    while b"\n" not in out and time.monotonic() < deadline:
        if select.select([proc.stdout], [], [], 0.1)[0]:
            out += os.read(proc.stdout.fileno(), 1024)
    found = re.search(rb"ws://127\.0\.0\.1:(\d+)", out)
    assert found, out
    return proc, int(found.group(1))


@pytest.mark.parametrize("script", ["embedded_relay.py", "websockets_handler.py"])
def test_example_relays_messages(
    tmp_path: Path, echo: tuple[str, list[dict[str, str]]], script: str
) -> None:
    echo_url = echo[0]
    doc = tmp_path / "echo.json"
    doc.write_text(
        json.dumps(
            {
                "asyncapi": "2.6.0",
                "info": {"title": "Echo", "version": "1.0"},
                "servers": {"production": {"url": echo_url, "protocol": "ws"}},
                "channels": {"/*": {"publish": {}, "subscribe": {}}},
            }
        )
    )
    proc, port = _start(script, doc)
    try:
        with connect(f"ws://127.0.0.1:{port}/echo/1.0/x", subprotocols=["chat.v1"]) as ws:
            assert ws.subprotocol == "chat.v1"
            ws.send("embedded")
            assert ws.recv(5) == "embedded"
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()


def test_the_shipped_api_keys_file_loads() -> None:
    keys = read_document(EXAMPLES / "api-keys.yaml").data
    config = load_auth_config(api_keys_file=EXAMPLES / "api-keys.yaml")
    assert isinstance(config.api_keys, Mapping)
    assert set(config.api_keys) == set(keys)
    assert {info.name for info in config.api_keys.values()} == {
        "dashboard",
        "moderation-bot",
        "staging-tests",
    }


def test_embedded_example_authenticates_with_the_shipped_keys(
    tmp_path: Path, echo: tuple[str, list[dict[str, str]]]
) -> None:
    url, seen = echo
    doc = tmp_path / "chat.json"
    doc.write_text(
        json.dumps(
            {
                "asyncapi": "2.6.0",
                "info": {"title": "Chat", "version": "1.0"},
                "servers": {"production": {"url": url, "protocol": "ws"}},
                "channels": {
                    "/rooms/{room}": {
                        "parameters": {"room": {"schema": {"type": "string"}}},
                        "publish": {"x-scopes": ["chat:write"]},
                        "subscribe": {"x-scopes": ["chat:write"]},
                    }
                },
                "components": {
                    "securitySchemes": {
                        "key": {"type": "httpApiKey", "name": "apikey", "in": "header"}
                    }
                },
            }
        )
    )
    keys = read_document(EXAMPLES / "api-keys.yaml").data
    writer = next(k for k, v in keys.items() if "chat:write" in v["scopes"] and len(v) == 2)
    reader = next(k for k, v in keys.items() if v["scopes"] == ["chat:read"])
    proc, port = _start("embedded_relay.py", doc)
    try:
        base = f"ws://127.0.0.1:{port}/chat/1.0/rooms/lobby"
        for headers, status in [({}, 401), ({"apikey": reader}, 403)]:
            with pytest.raises(InvalidStatus) as refused:
                connect(base, additional_headers=headers, open_timeout=5)
            assert refused.value.response.status_code == status
        with connect(base, additional_headers={"apikey": writer}, open_timeout=5) as ws:
            ws.send("hello")
            assert ws.recv(5) == "hello"
        principal = json.loads(seen[0]["X-Asyncapi-Gw-Principal"])
        assert principal["principal"] == keys[writer]["name"]
        assert "apikey" not in {name.lower() for name in seen[0]}
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()


def test_handler_path_refuses_before_the_upgrade_and_passes_close_codes() -> None:
    async def main() -> None:
        async def closer(ws: AsyncServerConnection) -> None:
            await ws.recv()
            await ws.close(4100, "bye from backend")

        async with backend(closer) as b:
            relay = Relay([api(b.url)])
            async with embedded(relay) as port:
                with pytest.raises(InvalidStatus) as caught:
                    async with aconnect(f"ws://127.0.0.1:{port}/nope/1.0/x"):
                        pass
                assert caught.value.response.status_code == 404
                async with aconnect(f"ws://127.0.0.1:{port}/chat/1.0/x") as ws:
                    await ws.send("x")
                    await ws.wait_closed()
                    assert (ws.close_code, ws.close_reason) == (4100, "bye from backend")
            assert relay.stats.rejections == {404: 1}

    run(main())


def test_handler_path_connections_are_judged_by_a_reload() -> None:
    async def main() -> None:
        keys = {"alice-key": ApiKeyInfo(), "bob-key": ApiKeyInfo()}
        async with backend() as b:
            keyed = api(b.url, security=(SecurityScheme(name="k", kind=AuthKind.API_KEY),))
            relay = Relay([keyed], auth=AuthConfig(api_keys=keys))
            async with embedded(relay) as port:
                url = f"ws://127.0.0.1:{port}/chat/1.0/x?apikey="
                async with aconnect(url + "alice-key") as alice, aconnect(url + "bob-key") as bob:
                    for ws in (alice, bob):
                        await ws.send("before")
                        assert await ws.recv() == "before"
                    report = relay.reload(auth=AuthConfig(api_keys={"bob-key": ApiKeyInfo()}))
                    assert (report.kept, report.closed) == (
                        1,
                        {(4001, "reload: API key revoked"): 1},
                    )
                    await alice.wait_closed()
                    assert (alice.close_code, alice.close_reason) == (
                        4001,
                        "reload: API key revoked",
                    )
                    await bob.send("kept")
                    assert await bob.recv() == "kept"
                    read_only = keyed.with_topics([attrs.evolve(keyed.topics[0], publish=None)])
                    assert relay.reload([read_only]).updated == 1
                    await bob.send("no longer allowed")
                    await bob.wait_closed()
                    assert (bob.close_code, bob.close_reason) == (
                        1008,
                        "topic does not allow publish",
                    )
            await until(lambda: len(b.closes) == 2, timeout=2)  # both connections ended
            # the backend is told the relay closed (1001), for a reload as for a policy fault
            assert b.closes == [1001, 1001]

    run(main())


def test_handler_path_closes_an_idle_connection_1001_both_ways() -> None:
    async def main() -> None:
        async with backend() as b:
            relay = Relay([api(b.url)], idle_timeout=0.3, ping_interval=None)
            async with (
                embedded(relay) as port,
                aconnect(f"ws://127.0.0.1:{port}/chat/1.0/x") as ws,
            ):
                for _ in range(3):  # messages keep it open past the timeout
                    await ws.send("x")
                    assert await ws.recv() == "x"
                    await asyncio.sleep(0.15)
                assert await closed_code(ws) == (1001, "idle timeout")
            await until(lambda: bool(b.closes), timeout=2)
            assert b.closes == [1001]

    run(main())


def test_handler_path_pings_the_backend_and_closes_the_client_1011_when_it_is_silent() -> None:
    async def main() -> None:
        heard = asyncio.Event()

        async def deaf(ws: AsyncServerConnection) -> None:
            ws.transport.pause_reading()  # pings go unanswered
            await heard.wait()
            ws.transport.resume_reading()

        async with backend(deaf) as b:
            relay = Relay(
                [api(b.url)],
                ping_interval=0.1,
                ping_timeout=0.3,
                close_timeout=0.3,
                idle_timeout=None,
            )
            try:
                async with (
                    embedded(relay) as port,
                    aconnect(f"ws://127.0.0.1:{port}/chat/1.0/x") as ws,
                ):
                    assert (await closed_code(ws))[0] == 1011
            finally:
                heard.set()  # the backend may close (a failure must not hang the test)

    run(main())


def test_handler_path_tells_the_backend_who_connected() -> None:
    async def main() -> None:
        async with backend() as b:
            relay = Relay([api(b.url)], principal_header="X-Who")
            async with embedded(relay) as port:
                headers = {"X-Who": "forged"}
                async with aconnect(
                    f"ws://127.0.0.1:{port}/chat/1.0/x", additional_headers=headers
                ) as ws:
                    await ws.send("x")
                    assert await ws.recv() == "x"
            assert json.loads(b.headers[0]["X-Who"]) == {
                "auth": "none",
                "principal": None,
                "scopes": [],
            }

    run(main())


def test_handler_path_closes_the_backend_of_a_client_websockets_refuses() -> None:
    """A request the relay routes but websockets then refuses (a plain GET: 426) never reaches
    the handler: the backend connection dialled for it is closed, not left open."""

    async def main() -> None:
        async with backend() as b:
            relay = Relay([api(b.url)])
            async with embedded(relay) as port:
                for _ in range(3):
                    status, _, _ = await http_get(port, "/chat/1.0/x")
                    assert status == 426
                # until the backend has seen every connection end
                await until(lambda: len(b.closes) == len(b.connections), timeout=2)

    run(main())


def test_handler_path_forwards_the_allowed_headers_and_x_forwarded_as_the_listener() -> None:
    async def main() -> None:
        async with backend() as b:
            relay = Relay([api(b.url)], forward_headers=["X-Trace"])
            async with embedded(relay) as port:
                headers = {"X-Trace": "t-1", "X-Other": "no"}
                async with aconnect(
                    f"ws://127.0.0.1:{port}/chat/1.0/x", additional_headers=headers
                ) as ws:
                    await ws.send("x")
                    assert await ws.recv() == "x"
            seen = {name.lower(): value for name, value in b.headers[0].items()}
            assert seen["x-trace"] == "t-1"
            assert "x-other" not in seen
            assert seen["x-forwarded-for"] == "127.0.0.1"
            assert seen["x-forwarded-proto"] == "ws"
            assert seen["x-forwarded-host"] == f"127.0.0.1:{port}"

    run(main())
