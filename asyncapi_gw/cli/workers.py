"""The supervisor behind ``asyncapi-gw serve --workers N``: N worker processes, one instance.

Each worker is a process of its own (started fresh, not forked from a running event loop) with
its own event loop and its own ``ws``/``wss`` listeners bound with ``SO_REUSEPORT`` on the same
ports, so the kernel spreads new connections over the workers. The supervisor holds those ports
(bound, never listening: it takes no connections) so that port 0 means one port for all
workers and a port taken by another program fails the start, and it serves the instance's admin
listener itself:

- ``/health`` is 200 only when every worker is running and answers its own ``/health`` with
  200; 503 ``draining`` once the instance shuts down, 503 naming the missing worker otherwise.
- ``/metrics`` asks every worker and adds up their samples (same name and labels: one sample,
  the sum), then adds the instance's own ``asyncapi_gw_workers`` and
  ``asyncapi_gw_worker_restarts_total``. When a worker does not answer the scrape gets 503:
  never the sum of only some workers.

A worker that dies is started again after a delay that doubles with each death in a row
(:class:`Backoff`), and the supervisor says so on standard error. SIGHUP is passed on to every
worker (each reloads as a single ``serve`` does); SIGTERM or SIGINT drain every worker (their
clients get close 1001) and end the instance with exit code 0, also while the workers still
start. On Linux a worker whose
supervisor dies, even by SIGKILL, gets SIGTERM and drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from asyncapi_gw.relay.admin import admin_answer
from asyncapi_gw.relay.handshake import HandshakeError, HttpRequest, RequestParser, plain_response

__all__ = [
    "Backoff",
    "Supervisor",
    "die_with_parent",
    "merge_expositions",
    "report_ready",
    "worker_count",
]

RESTART_DELAY = 0.5  # seconds before the first restart of a worker that died
RESTART_DELAY_CAP = 30.0
STABLE_AFTER = 10.0  # a worker that ran this long before dying starts the backoff afresh
ASK_TIMEOUT = 2.0  # for a worker's own /health or /metrics
STOP_GRACE = 5.0  # past the drain timeout, before a worker that does not end is killed
EXIT_OK, EXIT_FAILED = 0, 2


def worker_count(text: str) -> int:
    """``--workers``: a positive number, or ``auto`` for the CPUs this process may run on."""
    if text.strip().lower() == "auto":
        try:
            return len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            return os.cpu_count() or 1
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither a number nor 'auto'") from None
    if value < 1:
        raise ValueError(f"{text!r} must be at least 1")
    return value


class Backoff:
    """How long to wait before starting a worker again: ``base`` after its first death, then
    twice as long after each death in a row, at most ``cap``; a worker that ran at least
    ``stable_after`` seconds before it died starts again after ``base``."""

    def __init__(
        self,
        *,
        base: float = RESTART_DELAY,
        cap: float = RESTART_DELAY_CAP,
        stable_after: float = STABLE_AFTER,
    ) -> None:
        self.base, self.cap, self.stable_after = base, cap, stable_after
        self._deaths = 0  # in a row

    def delay(self, *, started: float, died: float) -> float:
        """The wait before the next start of a worker that ran from ``started`` to ``died``."""
        if died - started >= self.stable_after:
            self._deaths = 0
        wait = min(self.base * 2.0**self._deaths, self.cap)
        self._deaths += 1
        return wait


def merge_expositions(texts: Iterable[str]) -> str:
    """Prometheus text expositions (format 0.0.4) added up: a sample with the same name and
    labels in several is one sample with their sum. Each metric family keeps its ``# HELP``
    and ``# TYPE`` lines once and all its samples together, families in the order first seen."""
    families: dict[str, tuple[list[str], dict[str, float]]] = {}
    for text in texts:
        for line in text.splitlines():
            if line.startswith(("# HELP ", "# TYPE ")):
                headers, _ = families.setdefault(line.split(" ", 3)[2], ([], {}))
                if line not in headers:
                    headers.append(line)
            elif line.strip() and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                _, samples = families.setdefault(key.split("{", 1)[0], ([], {}))
                samples[key] = samples.get(key, 0.0) + float(value)
    return "".join(
        "".join(f"{line}\n" for line in headers)
        + "".join(f"{key} {_number(total)}\n" for key, total in samples.items())
        for headers, samples in families.values()
    )


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() and math.isfinite(value) else repr(value)


def report_ready(channel: Connection, admin_port: int) -> None:
    """Tell the supervisor that this worker serves and where its own admin listener is."""
    channel.send({"admin_port": admin_port})
    channel.close()


def die_with_parent() -> None:
    """Have the kernel send this process SIGTERM when its parent dies (Linux; elsewhere a
    no-op), so that no worker outlives a supervisor that was killed."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes  # noqa: PLC0415 - Linux only

    parent = os.getppid()
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request took
        os.kill(os.getpid(), signal.SIGTERM)


def _say(message: str) -> None:
    """One line on standard error in one write, as the workers' lines; a standard error that
    is gone (a closed pipe) does not stop the supervisor."""
    with contextlib.suppress(OSError):
        sys.stderr.write(f"{message}\n")
        sys.stderr.flush()


def _reserve(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` with ``SO_REUSEPORT`` that does not listen: it holds
    the port (port 0 picks one) for the workers, which bind it too, and takes no connection."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def _death(code: int | None) -> str:
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


async def _ask(port: int, path: str) -> tuple[int, str]:
    """A worker's own admin listener's status and body for ``GET path``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        data = await reader.read()
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body.decode()


class _Slot:
    """One worker: the process running now (or ``None`` between a death and its restart)."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.process: BaseProcess | None = None
        self.channel: Connection | None = None
        self.admin_port: int | None = None  # set once the worker reported it serves
        self.started = 0.0
        self.death = ""  # how its last process ended
        self.backoff = Backoff()
        self.restart: asyncio.TimerHandle | None = None

    @property
    def name(self) -> str:
        pid = self.process.pid if self.process is not None else None
        return f"worker {self.index} (pid {pid})"


class Supervisor:
    """Runs ``target(*target_args, ports, channel)`` in ``workers`` processes; see the module.

    ``listeners`` maps each client listener (``ws``, ``wss``) to the ``(host, port)`` to hold;
    ``ports`` is what they got. The target calls :func:`report_ready` on ``channel`` once it
    serves. ``admin`` is the instance's admin address, or ``None`` for none.
    """

    def __init__(
        self,
        target: Callable[..., None],
        target_args: tuple[Any, ...],
        *,
        workers: int,
        listeners: dict[str, tuple[str, int]],
        admin: tuple[str, int] | None,
        drain_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._target, self._target_args = target, target_args
        self._listeners, self._admin = listeners, admin
        self._drain_timeout = drain_timeout
        self._clock = clock
        self._slots = [_Slot(index) for index in range(1, workers + 1)]
        self._held: list[socket.socket] = []
        self.ports: dict[str, int] = {}
        self._admin_server: asyncio.Server | None = None
        self._admin_clients: set[asyncio.Task[None]] = set()
        self._context = multiprocessing.get_context("spawn")
        self._changed = asyncio.Event()
        self._starting = True
        self._stopping = False
        self._restarts = 0

    async def run(self) -> int:
        """Start the workers, serve until SIGTERM or SIGINT, drain; the exit code."""
        try:
            self._hold_ports()
            if self._admin is not None:
                self._admin_server = await asyncio.start_server(self._admin_client, *self._admin)
        except OSError as exc:
            self._release()
            _say(f"asyncapi-gw serve: error: cannot listen: {exc.strerror or exc}")
            return EXIT_FAILED
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._forward, signal.SIGHUP)
        try:
            for slot in self._slots:
                self._start(slot)
            if not await self._started(stop):
                return EXIT_OK if stop.is_set() else EXIT_FAILED  # asked to stop, or a death
            self._announce()
            await stop.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            try:
                await self._stop()  # a SIGHUP meanwhile is ignored, not the end of the drain
            finally:
                loop.remove_signal_handler(signal.SIGHUP)
        return EXIT_OK

    # -- workers -------------------------------------------------------------------------------

    def _hold_ports(self) -> None:
        for scheme, (host, port) in self._listeners.items():
            sock = _reserve(host, port)
            self._held.append(sock)
            self.ports[scheme] = sock.getsockname()[1]

    def _release(self) -> None:
        for sock in self._held:
            sock.close()
        self._held.clear()

    def _start(self, slot: _Slot) -> None:
        slot.restart = None
        reader, writer = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=self._target,
            args=(*self._target_args, dict(self.ports), writer),
            name=f"asyncapi-gw worker {slot.index}",
            daemon=True,  # should the supervisor fail, it ends its workers rather than wait
        )
        process.start()
        writer.close()
        slot.process, slot.channel, slot.admin_port = process, reader, None
        slot.started = self._clock()
        loop = asyncio.get_running_loop()
        loop.add_reader(reader.fileno(), self._on_message, slot, reader)
        loop.add_reader(process.sentinel, self._on_exit, slot, process)

    def _on_message(self, slot: _Slot, channel: Connection) -> None:
        try:
            message = channel.recv()
        except (EOFError, OSError):
            message = None
        self._forget_channel(slot)
        if isinstance(message, dict) and isinstance(message.get("admin_port"), int):
            slot.admin_port = message["admin_port"]
            if not self._starting:
                _say(f"{slot.name} ready")
        self._changed.set()

    def _forget_channel(self, slot: _Slot) -> None:
        if slot.channel is not None:
            asyncio.get_running_loop().remove_reader(slot.channel.fileno())
            slot.channel.close()
            slot.channel = None

    def _on_exit(self, slot: _Slot, process: BaseProcess) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(process.sentinel)
        self._forget_channel(slot)
        process.join()
        death = _death(process.exitcode)
        name = slot.name
        slot.process, slot.admin_port, slot.death = None, None, death
        process.close()
        self._changed.set()
        if self._starting and not self._stopping:
            _say(f"{name} {death} while starting: stopping the instance")
        if self._stopping or self._starting:
            return
        wait = slot.backoff.delay(started=slot.started, died=self._clock())
        _say(f"{name} {death}; starting it again in {wait:g} s")
        self._restarts += 1
        slot.restart = loop.call_later(wait, self._start, slot)

    async def _started(self, stop: asyncio.Event) -> bool:
        """Wait until every worker serves (``True``) or one ended or a stop came (``False``)."""
        while not all(slot.admin_port is not None for slot in self._slots):
            if stop.is_set() or any(slot.process is None for slot in self._slots):
                return False
            self._changed.clear()
            waiting = [
                asyncio.ensure_future(stop.wait()),
                asyncio.ensure_future(self._changed.wait()),
            ]
            try:
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in waiting:
                    task.cancel()
        self._starting = False
        return True

    def _announce(self) -> None:
        for scheme, port in self.ports.items():
            host = self._listeners[scheme][0]
            shown = f"[{host}]" if ":" in host else host
            _say(f"listening on {scheme}://{shown}:{port}")
        if self._admin_server is not None:
            host, port = self._admin_server.sockets[0].getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            _say(f"admin listener on http://{shown}:{port} (/health, /metrics)")
        names = ", ".join(slot.name for slot in self._slots)
        _say(f"{len(self._slots)} workers ready: {names}")

    def _forward(self, sig: signal.Signals) -> None:
        """Pass ``sig`` on to the workers that serve; one still starting reads every file
        anyway, and would die of a signal it has no handler for yet. Draining, nothing."""
        if self._stopping:
            return
        ready = [slot for slot in self._slots if slot.admin_port is not None]
        _say(f"{sig.name}: passed on to {len(ready)} worker(s)")
        _send(ready, sig)

    async def _stop(self) -> None:
        """Drain every worker (SIGTERM), kill those that outlast the drain, close the admin."""
        self._stopping = True
        for slot in self._slots:
            if slot.restart is not None:
                slot.restart.cancel()
                slot.restart = None
        _send(self._slots, signal.SIGTERM)
        if any(slot.process is not None for slot in self._slots):
            _say("shutting down: draining every worker")
        deadline = self._clock() + self._drain_timeout + STOP_GRACE
        while any(slot.process is not None for slot in self._slots):
            left = deadline - self._clock()
            if left <= 0:
                _send(self._slots, signal.SIGKILL)
                left = STOP_GRACE
                deadline = self._clock() + STOP_GRACE
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)
        self._release()
        if self._admin_server is not None:
            self._admin_server.close()
            for task in list(self._admin_clients):
                task.cancel()
            await self._admin_server.wait_closed()

    # -- admin ---------------------------------------------------------------------------------

    async def _admin_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._admin_clients.add(task)
        try:
            request = await asyncio.wait_for(self._request(reader), ASK_TIMEOUT * 5)
            if isinstance(request, HandshakeError):
                writer.write(plain_response(request.status, request.reason + "\n"))
            elif request is not None:
                writer.write(await self._answer(request))
            await writer.drain()
        except (TimeoutError, OSError):
            pass
        finally:
            if task is not None:
                self._admin_clients.discard(task)
            writer.close()

    @staticmethod
    async def _request(reader: asyncio.StreamReader) -> HttpRequest | HandshakeError | None:
        parser = RequestParser()
        while data := await reader.read(4096):
            try:
                request = parser.feed(data)
            except HandshakeError as exc:
                return exc
            if request is not None:
                return request
        return None

    async def _answer(self, request: HttpRequest) -> bytes:
        path = request.path.split("?", 1)[0]
        missing = metrics = ""
        if (
            path in ("/health", "/metrics")
            and request.method in ("GET", "HEAD")
            and not self._stopping
        ):
            missing, metrics = await self._picture(path)
        if missing:
            answer = plain_response(503, missing)
            if request.method == "HEAD":
                return answer[: answer.index(b"\r\n\r\n") + 4]
            return answer
        return admin_answer(request, _Picture(draining=self._stopping, metrics=metrics))

    async def _picture(self, path: str) -> tuple[str, str]:
        """What is missing for a whole picture (``""``: nothing), and the merged metrics."""
        ports = []
        for slot in self._slots:
            if slot.process is None:  # between a death and its restart
                return f"worker {slot.index} is not serving: {slot.death}\n", ""
            if slot.admin_port is None:
                return f"{slot.name} is not serving (yet)\n", ""
            ports.append(slot.admin_port)
        answers = await asyncio.gather(
            *(asyncio.wait_for(_ask(port, path), ASK_TIMEOUT) for port in ports),
            return_exceptions=True,
        )
        texts = []
        for slot, answer in zip(self._slots, answers, strict=True):
            if isinstance(answer, BaseException) or answer[0] != 200:
                return f"{slot.name} did not answer {path}\n", ""
            texts.append(answer[1])
        if path == "/health":
            return "", ""
        return "", merge_expositions([*texts, self._own_metrics()])

    def _own_metrics(self) -> str:
        return (
            "# HELP asyncapi_gw_workers Worker processes the instance runs.\n"
            "# TYPE asyncapi_gw_workers gauge\n"
            f"asyncapi_gw_workers {len(self._slots)}\n"
            "# HELP asyncapi_gw_worker_restarts_total Workers started again after they died.\n"
            "# TYPE asyncapi_gw_worker_restarts_total counter\n"
            f"asyncapi_gw_worker_restarts_total {self._restarts}\n"
        )


def _send(slots: Iterable[_Slot], sig: signal.Signals) -> None:
    """``sig`` to the running process of each of ``slots``."""
    for slot in slots:
        if slot.process is not None and slot.process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(slot.process.pid, sig)


class _Picture:
    """The instance as the admin answer sees it."""

    def __init__(self, *, draining: bool, metrics: str) -> None:
        self.draining = draining
        self._metrics = metrics

    def metrics_text(self) -> str:
        return self._metrics
