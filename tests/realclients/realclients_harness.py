"""Shared pieces of the real-client tests: a relay with real websockets backends running on a
background event loop (so synchronous clients and subprocesses can use it), a self-signed
certificate, and the client binaries (Chromium over the DevTools protocol, npm's wscat)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import attrs
from asgi_servers import mounted, server
from tls_certificates import self_signed
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from asyncapi_gw.model import (
    AuthKind,
    Endpoint,
    Operation,
    SecurityScheme,
    StreamingAPI,
    Topic,
    TopicOperation,
)
from asyncapi_gw.relay import ApiKeyInfo, AsgiRelay, AuthConfig, Relay, RelayStats

T = TypeVar("T")

KEY = "k-real-123"
SUBPROTOCOL = "chat.v2"  # the one the echo backend picks when it is offered
CLOSE_ME = "close-me"  # the echo backend answers this message with close 4321
ABORT_ME = "abort-me"  # the echo backend drops its TCP connection on this message
BACKEND_CLOSE = (4321, "backend says bye")

CHROMIUM = "/usr/lib/chromium/chromium"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
WSCAT_LOCAL = Path(__file__).parent / "node_modules" / ".bin" / "wscat"


def wscat_binary() -> str | None:
    """wscat installed by install.sh, else one on PATH, else ``None``."""
    if os.access(WSCAT_LOCAL, os.X_OK):
        return str(WSCAT_LOCAL)
    return shutil.which("wscat")


def chromium_binary() -> str | None:
    return CHROMIUM if os.access(CHROMIUM, os.X_OK) else None


class LoopThread:
    """An event loop on a daemon thread; :meth:`run` executes a coroutine there, bounded."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@attrs.define
class Seen:
    """What the echo backend saw of one connection."""

    path: str
    headers: dict[str, str]
    subprotocol: str | None
    extensions: list[str]
    close_code: int | None = None
    close_reason: str | None = None


def _pick(_conn: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    return Subprotocol(SUBPROTOCOL) if SUBPROTOCOL in offered else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@attrs.define
class Stack:
    """The relay (``ws``, ``wss`` and admin listeners) in front of the backends, on ``loop``.

    APIs: ``/chat/1.0`` (API key; topics ``/*`` and ``/admin``, whose publish needs scope
    ``admin``) to the echo backend; ``/dead/1.0`` to a closed port; ``/refusing/1.0`` to a
    backend answering HTTP 403; ``/strict/1.0`` with the single topic ``/rooms``.
    """

    loop: LoopThread
    relay: Relay
    seen: list[Seen]
    echo_url: str
    cert: str
    exits: contextlib.AsyncExitStack

    @property
    def ws(self) -> int:
        return self.relay.ports["ws"]

    @property
    def wss(self) -> int:
        return self.relay.ports["wss"]

    @property
    def admin(self) -> int:
        return self.relay.ports["admin"]

    def stats(self) -> RelayStats:
        async def read() -> RelayStats:
            return self.relay.stats

        return self.loop.run(read())

    def seen_for(self, run: str) -> Seen:
        """The backend connection whose forwarded query carried ``run=<run>``."""
        found = [s for s in self.seen if f"run={run}" in s.path]
        assert len(found) == 1, (run, self.seen)
        return found[0]

    def closed_seen(self, run: str) -> Seen:
        """:meth:`seen_for` once the backend's handler has recorded the close (bounded)."""

        async def closed() -> Seen:
            for _ in range(250):
                seen = self.seen_for(run)
                if seen.close_code is not None:
                    return seen
                await asyncio.sleep(0.02)
            raise AssertionError(f"the backend never saw run {run} close")

        return self.loop.run(closed())


def chat_api(backend: str) -> StreamingAPI:
    pub = TopicOperation(operation=Operation.PUBLISH)
    sub = TopicOperation(operation=Operation.SUBSCRIBE)
    admin = TopicOperation(operation=Operation.PUBLISH, scopes=("admin",))
    return StreamingAPI(
        name="Chat",
        version="1.0",
        context="/chat",
        production_endpoint=Endpoint(url=backend),
        topics=(
            Topic(name="/*", publish=pub, subscribe=sub),
            Topic(name="/admin", publish=admin, subscribe=sub),
        ),
        security=(SecurityScheme(name="key", kind=AuthKind.API_KEY),),
    )


def open_api(name: str, backend: str, topic: str = "/*") -> StreamingAPI:
    return StreamingAPI(
        name=name,
        version="1.0",
        context=f"/{name.lower()}",
        production_endpoint=Endpoint(url=backend),
        topics=(
            Topic(
                name=topic,
                publish=TopicOperation(operation=Operation.PUBLISH),
                subscribe=TopicOperation(operation=Operation.SUBSCRIBE),
            ),
        ),
    )


async def start_stack(loop: LoopThread, directory: Path) -> Stack:
    """Start the backends and the relay (run on ``loop``); :func:`stop_stack` ends them."""
    seen: list[Seen] = []

    async def echo(ws: ServerConnection) -> None:
        request = ws.request
        entry = Seen(
            path=request.path if request else "",
            headers=dict(request.headers.raw_items()) if request else {},
            subprotocol=ws.subprotocol,
            extensions=[e.name for e in ws.protocol.extensions],
        )
        seen.append(entry)
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                if message == CLOSE_ME:
                    await ws.close(*BACKEND_CLOSE)
                    break
                if message == ABORT_ME:
                    ws.transport.abort()
                    break
                await ws.send(message)
        entry.close_code, entry.close_reason = ws.close_code, ws.close_reason

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        writer.close()

    exits = contextlib.AsyncExitStack()
    try:
        echo_server = await exits.enter_async_context(
            serve(echo, "127.0.0.1", 0, select_subprotocol=_pick)
        )
        refusing = await asyncio.start_server(refuse, "127.0.0.1", 0)
        await exits.enter_async_context(refusing)
        echo_port = echo_server.sockets[0].getsockname()[1]
        refusing_port = refusing.sockets[0].getsockname()[1]
        cert, key = self_signed(directory)
        apis = [
            chat_api(f"ws://127.0.0.1:{echo_port}"),
            open_api("Dead", f"ws://127.0.0.1:{_free_port()}"),
            open_api("Refusing", f"ws://127.0.0.1:{refusing_port}"),
            open_api("Strict", f"ws://127.0.0.1:{echo_port}", topic="/rooms"),
        ]
        relay = Relay(
            apis,
            ws_port=0,
            wss_port=0,
            tls_cert=cert,
            tls_key=key,
            admin_port=0,
            auth=AuthConfig(api_keys={KEY: ApiKeyInfo()}),
            drain_timeout=2,
        )
        await exits.enter_async_context(relay)
    except BaseException:
        await exits.aclose()
        raise
    echo_url = f"ws://127.0.0.1:{echo_port}"
    return Stack(loop=loop, relay=relay, seen=seen, echo_url=echo_url, cert=cert, exits=exits)


async def stop_stack(stack: Stack) -> None:
    await stack.exits.aclose()


@attrs.frozen
class Front:
    """A front in front of the stack's backends: ``url`` is ws:// up to its mount."""

    kind: str
    url: str


def front_for(kind: str, loop_thread: LoopThread, stack: Stack) -> Iterator[Front]:
    """The front ``kind`` in front of ``stack``'s backends, until the generator is closed:
    ``listener`` (the stack's own), or an ASGI kind of ``asgi_servers``."""
    if kind == "listener":
        yield Front(kind, f"ws://127.0.0.1:{stack.ws}")
        return
    relay = AsgiRelay(
        [
            chat_api(stack.echo_url),
            open_api("Dead", "ws://127.0.0.1:9"),
            open_api("Strict", stack.echo_url, topic="/rooms"),
        ],
        auth=AuthConfig(api_keys={KEY: ApiKeyInfo()}),
    )
    app, base = mounted(kind, relay)
    exits = contextlib.AsyncExitStack()

    async def start() -> int:
        port: int = await exits.enter_async_context(server(kind, app))
        return port

    port = loop_thread.run(start())
    yield Front(kind, f"ws://127.0.0.1:{port}{base}")
    loop_thread.run(exits.aclose())


# -- wscat -------------------------------------------------------------------------------------


def run_wscat(binary: str, *args: str, timeout: float = 20.0) -> tuple[int, str]:
    """Run wscat with ``args``; its stdin stays open until it exits (it quits at once, before
    sending anything, when stdin closes). Returns the exit code and stdout + stderr."""
    read_end, write_end = os.pipe()
    try:
        proc = subprocess.Popen(
            [binary, "--no-color", *args],
            stdin=read_end,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1"},
        )
        os.close(read_end)
        read_end = -1
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            raise AssertionError(
                f"wscat {args} did not exit: {out.decode(errors='replace')}"
            ) from None
    finally:
        if read_end >= 0:
            os.close(read_end)
        os.close(write_end)
    return proc.returncode, out.decode(errors="replace")


# -- Chromium ----------------------------------------------------------------------------------

# The page runs the scenario in its URL fragment: open a WebSocket (optionally offering
# subprotocols), send messages ``delay`` ms after it opens, close after ``expect`` answers,
# then POST what it observed back to the page server (with ``hold``: report after ``expect``
# answers and leave the socket open, for the tab's closing to end it). Messages are strings,
# ``{"binary": [bytes]}``, ``{"repeat": text, "times": n}`` or ``{"random": size, "seed": n}``;
# received messages over 64 bytes are reported as their size and SHA-256 (see :func:`digest`).
PAGE = """<!doctype html>
<meta charset="utf-8"><title>pending</title>
<script>
const p = JSON.parse(decodeURIComponent(location.hash.slice(1)));
const r = {events: [], received: []};
let reported = false;
function report() {
  if (reported) return;
  reported = true;
  document.title = "done";
  fetch("/report/" + p.id, {method: "POST", body: JSON.stringify(r)});
}
function encode(m) {
  if (typeof m === "string") return m;
  if (m.binary) return new Uint8Array(m.binary);
  if (m.repeat) return m.repeat.repeat(m.times);
  const out = new Uint8Array(m.random);  // xorshift32, as random_bytes() in Python
  let x = m.seed >>> 0;
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out[i] = x & 255;
  }
  return out;
}
async function decode(d) {
  const bytes = typeof d === "string" ? new TextEncoder().encode(d) : new Uint8Array(d);
  if (bytes.length <= 64) {
    return typeof d === "string" ? d : {binary: Array.from(bytes)};
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const hex = Array.from(digest, b => b.toString(16).padStart(2, "0")).join("");
  return {[typeof d === "string" ? "text" : "bytes"]: bytes.length, sha256: hex};
}
setTimeout(() => { r.events.push("page timeout"); report(); }, 8000);
try {
  const ws = new WebSocket(p.url, p.protocols);
  ws.binaryType = "arraybuffer";
  const done = () => { if (p.close) ws.close(p.close[0], p.close[1]); };
  ws.onopen = () => {
    r.events.push("open");
    r.protocol = ws.protocol;
    r.extensions = ws.extensions;
    setTimeout(() => {
      p.send.forEach(m => ws.send(encode(m)));
      if (p.expect === 0) done();
    }, p.delay);
  };
  let pending = Promise.resolve();  // keeps the received messages in order
  ws.onmessage = e => {
    pending = pending.then(async () => {
      r.received.push(await decode(e.data));
      if (r.received.length === p.expect) p.hold ? report() : done();
    });
  };
  ws.onerror = () => r.events.push("error");
  ws.onclose = e => {
    r.events.push("close");
    r.close = {code: e.code, reason: e.reason, clean: e.wasClean};
    pending.then(report);
  };
} catch (e) {
  r.events.push("throw " + e);
  report();
}
</script>
"""


def random_bytes(size: int, seed: int) -> bytes:
    """The bytes the page sends for ``{"random": size, "seed": seed}`` (xorshift32)."""
    out = bytearray(size)
    x = seed & 0xFFFFFFFF
    for i in range(size):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out[i] = x & 255
    return bytes(out)


def digest(data: str | bytes) -> dict[str, Any]:
    """How the page reports a received message over 64 bytes."""
    raw = data.encode() if isinstance(data, str) else data
    kind = "text" if isinstance(data, str) else "bytes"
    return {kind: len(raw), "sha256": hashlib.sha256(raw).hexdigest()}


class PageServer:
    """A tiny HTTP server on 127.0.0.1 serving :data:`PAGE` and collecting the pages' reports."""

    def __init__(self) -> None:
        self.port = 0
        self._reports: dict[str, asyncio.Future[Any]] = {}
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def expect(self, run: str) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._reports[run] = future
        return future

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode("latin-1")
            method, target, _ = head.split(" ", 2)
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            body = await asyncio.wait_for(reader.readexactly(length), 10)
            if method == "GET" and target == "/page":
                status, content = "200 OK", PAGE.encode()
            elif method == "POST" and target.startswith("/report/"):
                future = self._reports.get(target.removeprefix("/report/"))
                if future is not None and not future.done():
                    future.set_result(json.loads(body))
                status, content = "204 No Content", b""
            else:
                status, content = "404 Not Found", b""
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n"
                f"Content-Length: {len(content)}\r\nConnection: close\r\n\r\n".encode()
                + content
            )
            await writer.drain()
        except (OSError, ValueError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            writer.close()


class Chromium:
    """Headless Chromium with a fresh profile, driven over its DevTools WebSocket."""

    def __init__(self, binary: str) -> None:
        self._profile = tempfile.TemporaryDirectory(prefix="realclients-chromium-")
        self.proc = subprocess.Popen(
            [
                binary,
                *CHROMIUM_FLAGS,
                "--ignore-certificate-errors",
                f"--user-data-dir={self._profile.name}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.endpoint = ""

    async def wait_ready(self) -> None:
        """Read the DevTools port Chromium chose from its profile (bounded)."""
        active = Path(self._profile.name) / "DevToolsActivePort"
        for _ in range(300):
            if self.proc.poll() is not None:
                raise AssertionError(f"Chromium exited with {self.proc.returncode}")
            lines = active.read_text().split() if active.exists() else []
            if len(lines) == 2:
                self.endpoint = f"ws://127.0.0.1:{lines[0]}{lines[1]}"
                return
            await asyncio.sleep(0.1)
        raise AssertionError("Chromium did not open its DevTools port in 30 s")

    async def open_page(self, url: str, report: asyncio.Future[Any]) -> Any:
        """Open ``url`` in a new tab, wait for the page's report, close the tab."""
        async with connect(self.endpoint, max_size=None, open_timeout=10) as cdp:
            ids = iter(range(1, 1000))

            async def call(method: str, **params: Any) -> Any:
                number = next(ids)
                await cdp.send(json.dumps({"id": number, "method": method, "params": params}))
                while True:
                    answer = json.loads(await cdp.recv())
                    if answer.get("id") == number:
                        if "error" in answer:
                            raise AssertionError(f"{method}: {answer['error']}")
                        return answer["result"]

            target = (await call("Target.createTarget", url=url))["targetId"]
            try:
                return await asyncio.wait_for(report, 15)
            finally:
                await call("Target.closeTarget", targetId=target)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self._profile.cleanup()


@attrs.define
class Browser:
    """Chromium plus the page server, both used from the test thread through ``loop``."""

    loop: LoopThread
    chromium: Chromium
    pages: PageServer

    def scenario(
        self,
        url: str,
        *,
        send: list[Any] | None = None,
        expect: int = 0,
        protocols: list[str] | None = None,
        close: tuple[int, str] | None = (1000, "page done"),
        delay: int = 0,
        hold: bool = False,
    ) -> tuple[str, dict[str, Any]]:
        """Run one page scenario; the run id (also added to ``url``'s query as ``run=``) and
        what the page observed: ``events``, ``received``, ``protocol``, ``extensions``,
        ``close``."""
        run = uuid.uuid4().hex[:12]
        joiner = "&" if "?" in url else "?"
        params = {
            "id": run,
            "url": f"{url}{joiner}run={run}",
            "send": send or [],
            "expect": expect,
            "protocols": protocols or [],
            "close": list(close) if close else None,
            "delay": delay,
            "hold": hold,
        }
        page = f"http://127.0.0.1:{self.pages.port}/page#{quote(json.dumps(params))}"

        async def go() -> Any:
            return await self.chromium.open_page(page, self.pages.expect(run))

        return run, self.loop.run(go(), timeout=30)


@contextlib.contextmanager
def browser(loop: LoopThread, binary: str) -> Iterator[Browser]:
    pages = PageServer()
    loop.run(pages.start())
    chromium = Chromium(binary)
    try:
        loop.run(chromium.wait_ready(), timeout=40)
        yield Browser(loop=loop, chromium=chromium, pages=pages)
    finally:
        chromium.close()
        loop.run(pages.stop())
