"""Scale-out: two ``serve --workers 2`` instances behind HAProxy run with ``deploy/haproxy.cfg``
(L4, health checks on the admin port), clients over both; losing a worker or an instance; and
two such instances counting one API's quota in one real Redis."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from redis_server import RedisServer
from serve_process import (
    CLIENTS,
    START,
    CountingBackend,
    Instance,
    clients,
    document,
    echoes,
    send_until,
    serving_pids,
)
from websockets.exceptions import InvalidStatus

CONFIG = Path(__file__).parents[2] / "deploy" / "haproxy.cfg"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Haproxy:
    """HAProxy with the shipped configuration, in front of ``nodes`` (``gw1``, ``gw2``)."""

    def __init__(self, tmp_path: Path, nodes: list[Instance]) -> None:
        if not os.access(HAPROXY, os.X_OK):
            pytest.skip("haproxy is not installed (.ci/run installs it with apt-get)")
        self.port = _free_port()
        self.socket = str(tmp_path / "haproxy.sock")
        env = {**os.environ, "GW_LISTEN": f"127.0.0.1:{self.port}", "HAPROXY_SOCKET": self.socket}
        for number, node in enumerate(nodes, 1):
            env[f"GW{number}_ADDR"] = f"127.0.0.1:{node.port}"
            env[f"GW{number}_ADMIN_PORT"] = str(node.admin)
        self.proc = subprocess.Popen(
            [HAPROXY, "-db", "-f", str(CONFIG)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for number in range(1, len(nodes) + 1):
            self.wait_status(f"gw{number}", "UP")

    def command(self, line: str) -> str:
        """One command on the runtime API (the socket the configuration names)."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(self.socket)
            s.sendall(line.encode() + b"\n")
            return b"".join(iter(lambda: s.recv(65536), b"")).decode()

    def status(self, server: str) -> str:
        """``UP``, ``DOWN``, ``DRAIN``, ... as the health checks and the runtime API set it."""
        rows = csv.DictReader(io.StringIO(self.command("show stat").lstrip("# ")))
        return next(row["status"] for row in rows if row["svname"] == server)

    def wait_status(self, server: str, wanted: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        seen = ""
        while time.monotonic() < deadline:
            try:
                seen = self.status(server)
            except OSError:  # the socket is not there yet
                seen = "no runtime API"
            if seen.startswith(wanted):
                return
            time.sleep(0.2)  # polling a process we do not own the clock of
        raise AssertionError(f"{server} is {seen}, not {wanted}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def cluster(tmp_path: Path, echo_backend: str) -> Iterator[tuple[Instance, Instance, Haproxy]]:
    """Instances ``a`` and ``b`` (two workers each, a document each) and HAProxy over both."""
    nodes: list[Instance] = []
    try:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            nodes.append(Instance(str(document(tmp_path / name, echo_backend))))
        proxy = Haproxy(tmp_path, nodes)
        try:
            yield nodes[0], nodes[1], proxy
        finally:
            proxy.stop()
    finally:
        for node in nodes:
            node.serve.stop()


def _open(node: Instance) -> int:
    return int(node.metric("asyncapi_gw_connections_open"))


def test_two_instances_behind_haproxy(
    cluster: tuple[Instance, Instance, Haproxy], tmp_path: Path, echo_backend: str
) -> None:
    a, b, proxy = cluster
    with ExitStack() as stack:
        # clients through the load balancer land on both instances
        through = clients(stack, proxy.port, "/echo/1.0/room", CLIENTS)
        assert all(echoes(ws) for ws in through)
        assert _open(a) + _open(b) == CLIENTS
        assert _open(a) > 0
        assert _open(b) > 0

        # draining a for a deploy: new clients go to b, a's clients stay
        proxy.command("set server asyncapi_gw/gw1 state drain")
        before = _open(a), _open(b)
        late = clients(stack, proxy.port, "/echo/1.0/room", 4)
        assert (_open(a), _open(b)) == (before[0], before[1] + 4)
        assert all(echoes(ws) for ws in through + late)
        proxy.command("set server asyncapi_gw/gw1 state ready")

        # a worker of a killed by SIGKILL is replaced; every other connection survives
        direct = a.clients(stack)
        held = serving_pids(a.pids, a.port)
        victim = a.pids[0]
        lost = [ws for ws in direct if held[ws.socket.getsockname()[1]] == victim]
        kept = [ws for ws in direct if ws not in lost]
        assert lost
        assert kept
        on_b = _open(b)
        os.kill(victim, signal.SIGKILL)
        a.serve.wait_for(re.compile(rf"worker 1 \(pid {victim}\) killed by SIGKILL"))
        a.serve.wait_for(re.compile(r"worker 1 \(pid \d+\) ready"), START)
        assert all(echoes(ws) for ws in kept)
        assert not any(echoes(ws) for ws in lost)
        assert _open(b) == on_b
        assert sum(echoes(ws) for ws in through + late) >= on_b

        # SIGHUP to b reloads b only: b serves version 2.0 of its document, a still 1.0
        document(tmp_path / "b", echo_backend, version="2.0")
        b.serve.proc.send_signal(signal.SIGHUP)
        b.serve.wait_for(re.compile("SIGHUP: passed on to 2 worker"))
        b.serve.wait_for(re.compile("reloaded 1 document"))
        b.serve.wait_for(re.compile("reloaded 1 document"))
        assert all(echoes(ws) for ws in b.clients(stack, "/echo/2.0/room"))
        with pytest.raises(InvalidStatus) as refused:
            a.clients(stack, "/echo/2.0/room", 1)
        assert refused.value.response.status_code == 404
        assert all(echoes(ws) for ws in kept)
        assert not [line for line in a.serve.lines if "SIGHUP" in line or "reloaded" in line]

        # losing instance b (SIGKILL): its workers go too, HAProxy's health check takes it
        # out, and every new client through the load balancer is served by a
        b.serve.proc.kill()
        b.serve.proc.wait(10)
        deadline = time.monotonic() + 20
        while any(os.path.exists(f"/proc/{pid}") for pid in b.pids):
            assert time.monotonic() < deadline, "b's workers outlived their supervisor"
            time.sleep(0.1)
        proxy.wait_status("gw2", "DOWN")
        after = clients(stack, proxy.port, "/echo/1.0/room", CLIENTS)
        assert all(echoes(ws) for ws in after)
        assert all(echoes(ws) for ws in kept)


def test_a_per_api_quota_holds_across_two_instances_of_two_workers(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """Two instances of two workers share one Redis and one API's 200-a-second quota, eight
    clients on each instance sending as fast as they get answers: what the backend receives
    in every whole second stays within the documented bound, limit + W x lease with W = 4
    processes, and the limit is used. Counted per worker, up to 4 x 200 would pass."""
    limit, lease, processes = 200, 10, 4
    with CountingBackend() as backend:
        doc = backend.throttled_document(tmp_path, limit)
        store = ("--quota-store", redis_server.url, "--quota-lease", str(lease))
        nodes: list[Instance] = []
        try:
            nodes += [Instance(str(doc), *store), Instance(str(doc), *store)]
            throttled = send_until([node.port for node in nodes] * 8, 3.5)
            for node in nodes:  # both instances counted in the store, never without it
                assert node.metric("asyncapi_gw_quota_store_leases_total") > 0
                assert node.metric("asyncapi_gw_quota_store_outages_total") == 0
        finally:
            for node in nodes:
                node.serve.stop()
    counts = backend.per_second()
    assert len(counts) >= 2, backend.arrivals
    assert throttled, "the clients never offered more than the quota"
    assert max(counts) <= limit + processes * lease, counts
    assert min(counts) >= limit * 0.8, counts  # the quota is used, not starved
