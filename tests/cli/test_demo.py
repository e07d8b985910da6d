"""``asyncapi-gw demo``: a message each way through a real relay, on free loopback ports."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from asyncapi_gw.cli import main

ROOT = Path(__file__).resolve().parents[2]
CHAT = ROOT / "fixtures" / "chatroom.yaml"
BUNDLED = ROOT / "asyncapi_gw" / "examples" / "chatroom.yaml"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def field(out: str, name: str) -> str:
    found = re.search(rf"^{name} +(.*)$", out, re.MULTILINE)
    assert found, out
    return found.group(1)


def document(tmp_path: Path, channels: dict[str, object], *, api_key: bool = False) -> str:
    server: dict[str, object] = {"url": "ws://backend.example:9000/base", "protocol": "ws"}
    doc: dict[str, object] = {
        "asyncapi": "2.6.0",
        "info": {"title": "Feed", "version": "2"},
        "servers": {"production": server},
        "channels": channels,
    }
    if api_key:
        server["security"] = [{"key": []}]
        scheme = {"type": "httpApiKey", "name": "apikey", "in": "header"}
        doc["components"] = {"securitySchemes": {"key": scheme}}
    path = tmp_path / "feed.json"
    path.write_text(json.dumps(doc))
    return str(path)


def test_the_bundled_example_relays_a_message_each_way(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "demo")
    assert code == 0, err
    gateway = field(out, "gateway")
    backend = field(out, "backend")
    assert re.match(r"ws://127\.0\.0\.1:\d+/chats/1\.0\.0/rooms/demo ", gateway)
    # the echo backend was dialled on the topic's URL mapping under the endpoint's path
    assert re.match(r"ws://127\.0\.0\.1:\d+/ws/rooms/demo ", backend)
    assert gateway.split("/")[2] != backend.split("/")[2]  # through the relay, not around it
    assert field(out, "topic") == "/rooms/{roomId}"
    assert "declares ws://localhost:8080/ws" in out
    assert "bearer JWT" in field(out, "client")
    example = '{"user": "ada", "text": "Hello, room!"}'
    assert field(out, "sent") == f"client -> relay -> backend: {example}"
    assert field(out, "received") == f"backend -> relay -> client: {example}"


def test_the_bundled_example_is_the_fixture_the_readme_validates() -> None:
    assert BUNDLED.read_bytes() == CHAT.read_bytes()


def test_an_api_key_api_and_a_message_without_example(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = document(
        tmp_path,
        {
            "/items/{id}": {
                "parameters": {"id": {"schema": {"type": "string"}}},
                "publish": {"x-uri-mapping": "/items?item={uri.var.id}"},
                "subscribe": {"x-scopes": ["read"]},
            }
        },
        api_key=True,
    )
    code, out, err = run(capsys, "demo", path)
    assert code == 0, err
    assert re.match(r"ws://127\.0\.0\.1:\d+/feed/2/items/demo ", field(out, "gateway"))
    assert re.match(r"ws://127\.0\.0\.1:\d+/base/items\?item=demo ", field(out, "backend"))
    assert "API key made up for the run holding read" in field(out, "client")
    assert field(out, "received").endswith('{"hello": "from the asyncapi-gw demo"}')


def test_a_busy_port_is_a_clean_error(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, out, err = run(capsys, "demo", "--port", str(port))
    assert code == 2
    assert out == ""
    assert err.startswith("asyncapi-gw demo: error: cannot listen on 127.0.0.1")
    assert "Traceback" not in err


def test_an_api_without_a_two_way_topic_is_a_clean_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = document(tmp_path, {"/news": {"subscribe": {}}})
    code, out, err = run(capsys, "demo", path)
    assert (code, out) == (2, "")
    assert "no topic that allows both publish and subscribe" in err


def test_an_invalid_document_exits_as_in_every_command(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("asyncapi: 2.6.0\ninfo: {}\n")
    assert run(capsys, "demo", str(bad))[0] == 1


def test_the_installed_command_runs_the_demo() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "asyncapi_gw", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert "done: one message relayed each way" in done.stdout
