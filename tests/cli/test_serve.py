"""``asyncapi-gw serve`` as a user runs it: a real process, signals, stderr and exit codes."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tls_certificates import self_signed
from websockets.sync.client import connect
from websockets.sync.server import Server, ServerConnection, serve

LISTENING = re.compile(r"listening on (wss?)://([^:]+|\[.*\]):(\d+)")


def _doc(tmp_path: Path, backend: str, *, title: str = "Echo", name: str = "echo.json") -> Path:
    path = tmp_path / name
    path.write_text(
        json.dumps(
            {
                "asyncapi": "2.6.0",
                "info": {"title": title, "version": "1.0"},
                "servers": {"production": {"url": backend, "protocol": "ws"}},
                "channels": {"/*": {"publish": {}, "subscribe": {}}},
            }
        )
    )
    return path


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


class Serve:
    """A running ``asyncapi-gw serve``; ``lines`` holds its stderr read so far."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "asyncapi_gw", "serve", *args],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
        )
        self.lines: list[str] = []
        self._partial = ""

    def wait_for(self, pattern: re.Pattern[str], timeout: float = 10) -> re.Match[str]:
        """The first unseen stderr line matching ``pattern`` (raw reads: no hidden buffer)."""
        assert self.proc.stderr is not None
        fd = self.proc.stderr.fileno()
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines:
                if found := pattern.search(line):
                    self.lines.remove(line)
                    return found
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern.pattern!r} on stderr: {self.lines}")
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                chunk = os.read(fd, 65536).decode()
                if not chunk:
                    raise AssertionError(f"serve exited; stderr: {self.lines}")
                self._partial += chunk
                *complete, self._partial = self._partial.split("\n")
                self.lines += complete

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(10)
        finally:
            self.proc.kill()
            if self.proc.stderr:
                self.proc.stderr.close()


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "asyncapi_gw", "serve", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_serves_relays_and_exits_0_on_sigterm(tmp_path: Path, echo_backend: str) -> None:
    doc = _doc(tmp_path, echo_backend)
    log = tmp_path / "access.log"
    server = Serve(str(doc), "--host", "127.0.0.1", "--ws-port", "0", "--access-log", str(log))
    try:
        found = server.wait_for(LISTENING)
        assert found.group(1, 2) == ("ws", "127.0.0.1")
        assert any("wss listener off" in line for line in server.lines)
        port = int(found.group(3))
        with connect(f"ws://127.0.0.1:{port}/echo/1.0/room") as ws:
            ws.send("through the CLI")
            assert ws.recv(5) == "through the CLI"
        with socket.create_connection(("127.0.0.1", port), 5) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 200 ")
    finally:
        assert server.stop() == 0
    entry = json.loads(log.read_text().splitlines()[0])
    assert entry["api"] == "Echo"
    assert entry["close_code"] == 1000


def test_sigint_is_a_clean_shutdown(tmp_path: Path) -> None:
    server = Serve(str(_doc(tmp_path, "ws://127.0.0.1:9")), "--ws-port", "0")
    server.wait_for(LISTENING)
    assert server.stop(signal.SIGINT) == 0


def test_sighup_reloads_the_documents(tmp_path: Path, echo_backend: str) -> None:
    doc = _doc(tmp_path, echo_backend)
    server = Serve(str(doc), "--ws-port", "0")
    try:
        port = int(server.wait_for(LISTENING).group(3))
        _doc(tmp_path, echo_backend, title="Renamed")
        server.proc.send_signal(signal.SIGHUP)
        server.wait_for(re.compile("reloaded"))
        with connect(f"ws://127.0.0.1:{port}/renamed/1.0/x") as ws:
            ws.send("new context")
            assert ws.recv(5) == "new context"
    finally:
        assert server.stop() == 0


def test_wss_listener_and_port_offset(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server = Serve(
        str(_doc(tmp_path, "ws://127.0.0.1:9")),
        "--ws-port",
        "0",
        "--wss-port",
        "0",
        "--tls-cert",
        cert,
        "--tls-key",
        key,
    )
    try:
        first = server.wait_for(LISTENING)
        second = server.wait_for(LISTENING)
        assert {first.group(1), second.group(1)} == {"ws", "wss"}
    finally:
        assert server.stop() == 0


def test_port_in_use_is_exit_2(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = _run(str(_doc(tmp_path, "ws://127.0.0.1:9")), "--ws-port", str(port))
    assert done.returncode == 2
    assert "cannot listen" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["a.json", "b.json", "--context", "/x"], "--context applies to a single FILE"),
        (["{doc}", "--tls-cert", "c.pem"], "--tls-cert and --tls-key go together"),
        (["{doc}", "--ws-port", "70000"], "not between 0 and 65535"),
        (["{doc}", "--jwt-secret", "s", "--jwks", "k.json"], "not allowed with"),
        (["missing.yaml"], ""),
        (["{doc}", "--api-keys", "missing.json"], "API key file"),
    ],
)
def test_usage_errors_are_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    doc = str(_doc(tmp_path, "ws://127.0.0.1:9"))
    done = _run(*(a.replace("{doc}", doc) for a in args), "--ws-port", "0")
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_unwritable_access_log_is_exit_2_naming_the_log(tmp_path: Path) -> None:
    log = tmp_path / "no-such-dir" / "access.log"
    done = _run(str(_doc(tmp_path, "ws://127.0.0.1:9")), "--ws-port", "0", "--access-log", str(log))
    assert done.returncode == 2, done.stderr
    assert f"cannot open the access log {log}" in done.stderr
    assert "cannot listen" not in done.stderr
    assert "Traceback" not in done.stderr


def test_invalid_document_is_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"asyncapi": "2.6.0", "info": {"title": "X"}, "channels": {}}))
    done = _run(str(bad), "--ws-port", "0")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
