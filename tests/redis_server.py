"""A real ``redis-server`` for the tests: started on a free loopback port, without persistence,
and killed and started again on the same port when a test needs Redis to blink."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["RedisServer", "redis_server_binary"]


def redis_server_binary() -> str | None:
    """Debian's ``redis-server`` (``.ci/run`` installs it), else one on ``PATH``."""
    for candidate in ("/usr/bin/redis-server", shutil.which("redis-server")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process on ``127.0.0.1:port``."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.port = _free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it and wait until it answers ``PING``."""
        self._process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--logfile",
                str(self.directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while self.command("PING") != "+PONG":
            if self._process.poll() is not None or time.monotonic() > deadline:
                log = (self.directory / "redis.log").read_text(errors="replace")
                raise RuntimeError(f"redis-server did not start:\n{log}")
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL: every count it held is gone, as after a crash without persistence."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def command(self, *words: str) -> str | None:
        """One command in RESP: its reply, a line or a bulk string (``None`` when nothing
        answers, ``""`` for nil)."""
        request = f"*{len(words)}\r\n" + "".join(f"${len(w)}\r\n{w}\r\n" for w in words)
        reply = b""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as connection:
                connection.sendall(request.encode())
                while not _whole(reply):
                    chunk = connection.recv(65536)
                    if not chunk:
                        return None
                    reply += chunk
        except OSError:
            return None
        first, _, rest = reply.decode().partition("\r\n")
        if first.startswith("$"):
            return "" if first == "$-1" else rest.removesuffix("\r\n")
        return first

    def integer(self, *words: str) -> int:
        """A command whose reply is an integer or a bulk string holding one (0 for nil)."""
        reply = self.command(*words)
        assert reply is not None, f"redis-server does not answer {words}"
        return int(reply.removeprefix(":") or 0)


def _whole(reply: bytes) -> bool:
    """Whether ``reply`` is one whole simple reply or bulk string."""
    if not reply.endswith(b"\r\n"):
        return False
    return not reply.startswith(b"$") or reply.startswith(b"$-1") or reply.count(b"\r\n") >= 2


@contextlib.contextmanager
def running_redis(directory: Path) -> Iterator[RedisServer]:
    binary = redis_server_binary()
    if binary is None:
        pytest.skip("redis-server is not installed (.ci/run installs it with apt-get)")
    server = RedisServer(binary, directory)
    server.start()
    try:
        yield server
    finally:
        server.kill()
