"""A real ``asyncapi-gw serve`` process for tests: started, read (stderr), signalled, stopped."""

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
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect
from websockets.sync.server import ServerConnection, serve

from asyncapi_gw.relay.quota import THROTTLED_MESSAGE

__all__ = [
    "ADMIN",
    "CLIENTS",
    "LISTENING",
    "SCHEMES",
    "START",
    "WORKERS",
    "CountingBackend",
    "Instance",
    "Serve",
    "clients",
    "document",
    "echoes",
    "http_get",
    "own_ports",
    "send_until",
    "serving_pids",
    "worker_pids",
]

LISTENING = re.compile(r"listening on (wss?)://([^:]+|\[.*\]):(\d+)")
ADMIN = re.compile(r"admin listener on http://([^:]+):(\d+) ")
WORKERS = re.compile(r"(\d+) workers ready: (.*)")
"""The supervisor's line once every worker serves; :func:`worker_pids` reads their pids."""


def worker_pids(found: re.Match[str]) -> list[int]:
    """The pids a :data:`WORKERS` line names, in worker order."""
    return [int(pid) for pid in re.findall(r"\(pid (\d+)\)", found.group(2))]


def serving_pids(pids: list[int], port: int) -> dict[int, int]:
    """Which of ``pids`` holds each TCP connection accepted on loopback ``port``: the client's
    port -> the pid (Linux ``/proc``: the process's socket inodes against ``/proc/net/tcp``)."""
    by_inode: dict[str, int] = {}
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                by_inode[target[8:-1]] = pid
    found = {}
    with open("/proc/net/tcp") as table:
        for row in list(table)[1:]:
            fields = row.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if int(local.split(":")[1], 16) == port and inode in by_inode:
                found[int(remote.split(":")[1], 16)] = by_inode[inode]
    return found


def own_ports(args: tuple[str, ...]) -> list[str]:
    """``args``, with a free admin port unless they choose one: tests never bind the default."""
    if "--admin-port" in args or "--no-admin" in args:
        return list(args)
    return [*args, "--admin-port", "0"]


SCHEMES = {
    "key": {"type": "httpApiKey", "name": "apikey", "in": "query"},
    "token": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
}


def document(
    tmp_path: Path,
    backend: str,
    *,
    title: str = "Echo",
    name: str = "echo.json",
    security: str | None = None,
    **info: str,
) -> Path:
    path = tmp_path / name
    server: dict[str, object] = {"url": backend, "protocol": "ws"}
    document: dict[str, object] = {
        "asyncapi": "2.6.0",
        "info": {"title": title, "version": "1.0", **info},
        "servers": {"production": server},
        "channels": {"/*": {"publish": {}, "subscribe": {}}},
    }
    if security is not None:
        server["security"] = [{security: []}]
        document["components"] = {"securitySchemes": {security: SCHEMES[security]}}
    path.write_text(json.dumps(document))
    return path


class Serve:
    """A running ``asyncapi-gw serve``; ``lines`` holds its stderr read so far."""

    def __init__(
        self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "asyncapi_gw", "serve", *own_ports(args)],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
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


def http_get(port: int, path: str, *, whole: bool = False) -> bytes:
    """The start of the answer to ``GET path`` on loopback ``port`` (``whole``: all of it)."""
    with socket.create_connection(("127.0.0.1", port), 5) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        if not whole:
            return s.recv(100)
        s.settimeout(10)
        return b"".join(iter(lambda: s.recv(65536), b""))


START = 60  # seconds for every worker to start on a busy machine
CLIENTS = 16  # the chance that the kernel gives all of them to one of two workers is 2**-15


class Instance:
    """``serve --workers 2`` started and ready: its ports and its workers' pids."""

    def __init__(self, *args: str) -> None:
        self.serve = Serve(*args, "--ws-port", "0", "--workers", "2", "--drain-timeout", "5")
        self.port = int(self.serve.wait_for(LISTENING, START)[3])
        self.admin = int(self.serve.wait_for(ADMIN)[2])
        self.pids = worker_pids(self.serve.wait_for(WORKERS))

    def clients(
        self, stack: ExitStack, path: str = "/echo/1.0/room", count: int = CLIENTS
    ) -> list[ClientConnection]:
        """``count`` clients of this instance, closed when ``stack`` closes."""
        return clients(stack, self.port, path, count)

    def metric(self, name: str) -> float:
        text = http_get(self.admin, "/metrics", whole=True).decode()
        assert text.startswith("HTTP/1.1 200 "), text
        return float(re.search(rf"^{name} (\S+)$", text, re.MULTILINE)[1])  # type: ignore[index]


def clients(stack: ExitStack, port: int, path: str, count: int) -> list[ClientConnection]:
    """``count`` WebSocket clients of loopback ``port``, closed when ``stack`` closes."""
    url = f"ws://127.0.0.1:{port}{path}"
    return [stack.enter_context(connect(url, open_timeout=10)) for _ in range(count)]


def echoes(ws: ClientConnection, text: str = "ping") -> bool:
    """``text`` comes back (through the relay to an echo backend); ``False`` once closed."""
    try:
        ws.send(text)
        return ws.recv(10) == text
    except ConnectionClosed:
        return False


class CountingBackend:
    """An echo backend, started by ``with``, that notes when every message reaches it (the
    wall clock: Redis's quota windows are whole seconds of this machine's clock)."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self._server = serve(self._echo, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}"

    def _echo(self, ws: ServerConnection) -> None:
        for message in ws:
            self.arrivals.append(time.time())
            ws.send(message)

    def __enter__(self) -> CountingBackend:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()

    def throttled_document(self, tmp_path: Path, limit: int) -> Path:
        """A document relaying to this backend, its API limited to ``limit`` events a second."""
        path = document(tmp_path, self.url)
        doc = json.loads(path.read_text())
        doc["x-asyncapi-gw-throttling"] = {"events": limit, "per": "second"}
        path.write_text(json.dumps(doc))
        return path

    def per_second(self) -> list[int]:
        """The messages that arrived in each whole second (not the first or the last, which
        were partly idle)."""
        counts: dict[int, int] = {}
        for arrived in self.arrivals:
            counts[int(arrived)] = counts.get(int(arrived), 0) + 1
        return [counts[second] for second in sorted(counts)[1:-1]]


def send_until(ports: list[int], seconds: float) -> int:
    """A client on each of ``ports`` (a port twice: two clients) sends to ``/echo/1.0/x`` as
    fast as it gets answers for ``seconds``; how many answers said throttled."""
    end = time.time() + seconds
    throttled = [0]

    def send(port: int) -> None:
        with connect(f"ws://127.0.0.1:{port}/echo/1.0/x", open_timeout=10) as ws:
            while time.time() < end:
                ws.send("event")
                if ws.recv(10) == THROTTLED_MESSAGE:  # else the echo
                    throttled[0] += 1

    senders = [threading.Thread(target=send, args=(port,)) for port in ports]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(seconds + 20)
    assert not any(sender.is_alive() for sender in senders)
    return throttled[0]
