"""``asyncapi-gw serve --workers N``: real worker processes under the supervisor, real clients."""

from __future__ import annotations

import contextlib
import json
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
from serve_process import (
    CLIENTS,
    LISTENING,
    START,
    Instance,
    Serve,
    document,
    echoes,
    http_get,
    serving_pids,
)
from websockets.exceptions import ConnectionClosed, InvalidStatus

from asyncapi_gw.cli import main
from asyncapi_gw.cli.workers import Backoff, merge_expositions, worker_count

# -- pure parts ----------------------------------------------------------------------------------


def test_backoff_doubles_with_each_death_in_a_row_up_to_the_cap() -> None:
    backoff = Backoff(base=0.5, cap=4.0, stable_after=10.0)
    delays = [backoff.delay(started=t, died=t + 1.0) for t in range(6)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_backoff_starts_afresh_after_a_stable_run() -> None:
    backoff = Backoff(base=0.5, cap=30.0, stable_after=10.0)
    assert backoff.delay(started=0.0, died=1.0) == 0.5
    assert backoff.delay(started=1.5, died=2.0) == 1.0
    assert backoff.delay(started=3.0, died=13.0) == 0.5  # ran 10 s: not a crash loop


def test_merged_metrics_add_up_samples_and_keep_each_family_together() -> None:
    one = (
        "# HELP a_total A.\n# TYPE a_total counter\n"
        'a_total{code="1000"} 3\n'
        "# HELP open Open.\n# TYPE open gauge\nopen 2\n"
    )
    two = (
        "# HELP a_total A.\n# TYPE a_total counter\n"
        'a_total{code="1000"} 4\na_total{code="1001"} 1\n'
        "# HELP open Open.\n# TYPE open gauge\nopen 5\n"
    )
    assert merge_expositions([one, two]) == (
        "# HELP a_total A.\n# TYPE a_total counter\n"
        'a_total{code="1000"} 7\na_total{code="1001"} 1\n'
        "# HELP open Open.\n# TYPE open gauge\nopen 7\n"
    )


def test_auto_is_one_worker_per_usable_cpu() -> None:
    assert worker_count("auto") == len(os.sched_getaffinity(0))
    assert worker_count("3") == 3
    with pytest.raises(ValueError, match="at least 1"):
        worker_count("0")


@pytest.mark.parametrize(
    ("count", "message"), [("0", "must be at least 1"), ("many", "neither a number nor 'auto'")]
)
def test_a_bad_worker_count_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], count: str, message: str
) -> None:
    doc = document(tmp_path, "ws://127.0.0.1:9")
    with pytest.raises(SystemExit) as done:
        main(["serve", str(doc), "--ws-port", "0", "--admin-port", "0", "--workers", count])
    assert done.value.code == 2
    assert message in capsys.readouterr().err


def test_fewer_max_connections_than_workers_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = document(tmp_path, "ws://127.0.0.1:9")
    args = ["--workers", "3", "--max-connections", "2", "--ws-port", "0", "--admin-port", "0"]
    assert main(["serve", str(doc), *args]) == 2
    assert "--max-connections is per instance" in capsys.readouterr().err


# -- real processes --------------------------------------------------------------------------------


@pytest.fixture
def instance(tmp_path: Path, echo_backend: str) -> Iterator[Instance]:
    running = Instance(str(document(tmp_path, echo_backend)))
    yield running
    running.serve.stop()


def test_workers_share_the_port_and_the_admin_answers_for_the_whole_instance(
    instance: Instance,
) -> None:
    with ExitStack() as stack:
        clients = instance.clients(stack)
        assert all(echoes(ws) for ws in clients)
        held = serving_pids(instance.pids, instance.port)
        mine = {held[ws.socket.getsockname()[1]] for ws in clients}
        assert mine == set(instance.pids)  # SO_REUSEPORT spread them over both workers
        assert instance.metric("asyncapi_gw_connections_open") == CLIENTS  # both, added up
        assert instance.metric("asyncapi_gw_workers") == 2
        assert http_get(instance.admin, "/health").startswith(b"HTTP/1.1 200 ")


def test_health_and_metrics_are_503_while_a_worker_does_not_answer(instance: Instance) -> None:
    os.kill(instance.pids[1], signal.SIGSTOP)
    try:
        health = http_get(instance.admin, "/health", whole=True)
        assert health.startswith(b"HTTP/1.1 503 "), health
        assert f"worker 2 (pid {instance.pids[1]}) did not answer".encode() in health
        metrics = http_get(instance.admin, "/metrics", whole=True)
        assert metrics.startswith(b"HTTP/1.1 503 ")  # never the sum of only some workers
    finally:
        os.kill(instance.pids[1], signal.SIGCONT)
    assert http_get(instance.admin, "/health").startswith(b"HTTP/1.1 200 ")


def test_a_killed_worker_is_started_again_and_the_others_connections_survive(
    instance: Instance,
) -> None:
    with ExitStack() as stack:
        clients = instance.clients(stack)
        held = serving_pids(instance.pids, instance.port)
        victim = instance.pids[0]
        on_victim = [ws for ws in clients if held[ws.socket.getsockname()[1]] == victim]
        others = [ws for ws in clients if ws not in on_victim]
        assert on_victim
        assert others
        os.kill(victim, signal.SIGKILL)
        found = instance.serve.wait_for(
            re.compile(
                rf"worker 1 \(pid {victim}\) killed by SIGKILL; starting it again in (\S+) s"
            )
        )
        assert float(found[1]) == 0.5
        replaced = instance.serve.wait_for(re.compile(r"worker 1 \(pid (\d+)\) ready"), START)
        assert int(replaced[1]) != victim
        assert all(echoes(ws, "still here") for ws in others)
        assert not any(echoes(ws) for ws in on_victim)
        assert http_get(instance.admin, "/health").startswith(b"HTTP/1.1 200 ")
        assert instance.metric("asyncapi_gw_worker_restarts_total") == 1
        assert instance.metric("asyncapi_gw_connections_open") == len(others)


def test_sighup_reloads_every_worker(tmp_path: Path, echo_backend: str) -> None:
    running = Instance(str(document(tmp_path, echo_backend)))
    try:
        document(tmp_path, echo_backend, title="Renamed")
        running.serve.proc.send_signal(signal.SIGHUP)
        running.serve.wait_for(re.compile("SIGHUP: passed on to 2 worker"))
        for _ in range(2):  # each worker says when its reload is done
            running.serve.wait_for(re.compile("^reloaded "))
        with ExitStack() as stack:  # over both workers: both serve the new context
            clients = running.clients(stack, "/renamed/1.0/room")
            assert len(set(serving_pids(running.pids, running.port).values())) == 2
            assert all(echoes(ws) for ws in clients)
    finally:
        assert running.serve.stop() == 0


def test_sigterm_drains_every_worker_clients_get_1001(tmp_path: Path, echo_backend: str) -> None:
    running = Instance(str(document(tmp_path, echo_backend)))
    with ExitStack() as stack:
        clients = running.clients(stack)
        assert len(set(serving_pids(running.pids, running.port).values())) == 2
        assert running.serve.stop(signal.SIGTERM) == 0
        for ws in clients:
            with pytest.raises(ConnectionClosed):
                ws.recv(10)
            assert ws.close_code == 1001
    for pid in running.pids:
        assert not os.path.exists(f"/proc/{pid}")


def _refused(instance: Instance, stack: ExitStack) -> int | None:
    """The status of a refused upgrade, or ``None`` when the client got in."""
    try:
        instance.clients(stack, count=1)
    except InvalidStatus as exc:
        return exc.response.status_code
    return None


def test_max_connections_counts_for_the_instance(tmp_path: Path, echo_backend: str) -> None:
    running = Instance(str(document(tmp_path, echo_backend)), "--max-connections", "4")
    try:
        with ExitStack() as stack:
            answers = [_refused(running, stack) for _ in range(CLIENTS)]
            assert 2 <= answers.count(None) <= 4  # 2 per worker; the kernel picks the worker
            assert set(answers) == {None, 503}
    finally:
        running.serve.stop()


def test_a_port_in_use_stops_the_instance_with_exit_2(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        serve = Serve(
            str(document(tmp_path, "ws://127.0.0.1:9")), "--ws-port", str(port), "--workers", "2"
        )
        serve.wait_for(re.compile(r"error: cannot listen: Address already in use"))
        code = serve.proc.wait(30)
        serve.stop()
    assert code == 2
    assert not any("Traceback" in line or "worker" in line for line in serve.lines)


def test_sigterm_ends_the_instance_even_when_its_stderr_is_gone(
    tmp_path: Path, echo_backend: str
) -> None:
    running = Instance(str(document(tmp_path, echo_backend)))
    assert running.serve.proc.stderr is not None
    running.serve.proc.stderr.close()  # whoever read it went away: writes fail with EPIPE
    running.serve.proc.send_signal(signal.SIGTERM)
    assert running.serve.proc.wait(30) == 0
    for pid in running.pids:
        assert not os.path.exists(f"/proc/{pid}")


WSCAT = Path(__file__).parents[1] / "realclients" / "node_modules" / ".bin" / "wscat"


@pytest.mark.realclients
def test_wscat_clients_are_served_by_the_workers(instance: Instance) -> None:
    """npm's wscat, 8 at once: every message comes back, and the instance counts them all."""
    wscat = str(WSCAT) if WSCAT.exists() else shutil.which("wscat")
    if wscat is None:
        pytest.skip("wscat is not installed (tests/realclients/install.sh)")
    url = f"ws://127.0.0.1:{instance.port}/echo/1.0/room"
    stdin, held_open = os.pipe()  # wscat quits before sending when its stdin closes
    try:
        runs = [
            subprocess.Popen(
                [wscat, "--no-color", "-c", url, "-x", f"hello {n}", "-w", "1"],
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for n in range(8)
        ]
        outputs = [run.communicate(timeout=60)[0].decode() for run in runs]
    finally:
        os.close(stdin)
        os.close(held_open)
    assert outputs == [f"hello {n}\n" for n in range(8)]
    assert instance.metric('asyncapi_gw_connections_total{api="Echo"}') == 8


def test_workers_without_a_quota_store_warn_that_quotas_count_per_worker(
    tmp_path: Path, echo_backend: str
) -> None:
    """Each worker counts an API's quota on its own: W workers pass W times the limit. The
    instance says so once at start-up, and where the cure is."""
    throttled = json.loads(document(tmp_path, echo_backend).read_text())
    throttled["x-asyncapi-gw-throttling"] = {"events": 10, "per": "second"}
    doc = tmp_path / "throttled.json"
    doc.write_text(json.dumps(throttled))
    running = Instance(str(doc))
    try:
        warning = running.serve.wait_for(re.compile("warning: .*per worker.*"))[0]
        assert "--quota-store" in warning
        assert "2 x" in warning
    finally:
        running.serve.stop()
    assert not [line for line in running.serve.lines if "per worker" in line]  # once
    quiet = Instance(str(document(tmp_path, echo_backend)))  # no quota: nothing to say
    quiet.serve.stop()
    assert not [line for line in quiet.serve.lines if "per worker" in line]


def _spawned_workers(pid: int) -> list[int]:
    """The worker processes ``pid`` has started so far (not multiprocessing's helpers)."""
    found = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        with contextlib.suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(int(child))
    return found


def test_sigterm_while_the_workers_start_is_a_stop_not_a_failure(tmp_path: Path) -> None:
    """systemd stopping the unit while its workers still import: exit 0, no worker blamed."""
    serve = Serve(str(document(tmp_path, "ws://127.0.0.1:9")), "--ws-port", "0", "--workers", "2")
    deadline = time.monotonic() + START
    while len(_spawned_workers(serve.proc.pid)) < 2:  # the supervisor handles signals by then
        assert time.monotonic() < deadline, "no workers started"
        time.sleep(0.01)  # polling a process we do not own the clock of
    serve.proc.send_signal(signal.SIGTERM)
    code = serve.proc.wait(30)
    assert serve.proc.stderr is not None
    said = serve.proc.stderr.read().decode()
    serve.stop()
    assert code == 0, said
    assert "while starting" not in said
    assert "Traceback" not in said


def test_a_worker_that_cannot_start_says_why_and_comes_back_once_the_document_is_fixed(
    tmp_path: Path, echo_backend: str
) -> None:
    """A broken document on disk (the reload kept the old APIs) and a worker that dies: its
    restarts fail, each said on standard error with the reason; /health names the worker
    and its last death, not a pid that no longer runs; the other worker keeps its clients;
    once the document is fixed, the next restart serves."""
    doc = document(tmp_path, echo_backend)
    good = doc.read_text()
    running = Instance(str(doc))
    try:
        with ExitStack() as stack:
            direct = running.clients(stack)
            held = serving_pids(running.pids, running.port)
            kept = [ws for ws in direct if held[ws.socket.getsockname()[1]] == running.pids[1]]
            doc.write_text('{"asyncapi": "2.6.0", "info": {}}')
            os.kill(running.pids[0], signal.SIGKILL)
            running.serve.wait_for(re.compile(r"error: .*echo.json is not a valid AsyncAPI"))
            running.serve.wait_for(re.compile(r"worker 1 \(pid \d+\) exited with code 2; "))
            deadline = time.monotonic() + START
            while True:  # between restarts (1 s, 2 s, ... of backoff), not during one
                health = http_get(running.admin, "/health", whole=True).decode()
                assert health.startswith("HTTP/1.1 503 "), health
                assert "None" not in health
                if "worker 1 is not serving: exited with code 2" in health:
                    break
                assert time.monotonic() < deadline, health
                time.sleep(0.05)  # polling a process we do not own the clock of
            assert all(echoes(ws) for ws in kept)
            doc.write_text(good)
            running.serve.wait_for(re.compile(r"worker 1 \(pid \d+\) ready"), START)
            assert http_get(running.admin, "/health").startswith(b"HTTP/1.1 200 ")
            assert running.metric("asyncapi_gw_worker_restarts_total") >= 2
    finally:
        running.serve.stop()


def test_sighup_while_the_instance_drains_is_ignored(tmp_path: Path, echo_backend: str) -> None:
    """A reload (logrotate, a deploy script) that comes while the instance drains a client
    that never answers the close: the drain goes on to its end and the instance exits 0."""
    running = Instance(str(document(tmp_path, echo_backend)))
    with socket.create_connection(("127.0.0.1", running.port), 5) as silent:
        silent.sendall(
            b"GET /echo/1.0/room HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        assert silent.recv(4096).startswith(b"HTTP/1.1 101 ")
        running.serve.proc.send_signal(signal.SIGTERM)
        running.serve.wait_for(re.compile("shutting down: draining every worker"))
        for _ in range(3):
            running.serve.proc.send_signal(signal.SIGHUP)
        assert running.serve.proc.wait(30) == 0
    assert not [line for line in running.serve.lines if "SIGHUP" in line]


def _sighup(pid: int, field: str) -> bool:
    """Whether ``pid``'s ``/proc`` status has SIGHUP in ``field`` (``SigIgn``, ``SigCgt``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGHUP - 1)))
    return False


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sighup_while_serve_starts_is_not_its_end(tmp_path: Path, workers: str) -> None:
    """``systemctl reload`` right after ``start`` (a Type=exec unit counts as started once
    exec'd): from the moment serve runs, a SIGHUP before its reload handler is ignored (the
    files are read now anyway) instead of killing it with the default action."""
    serve = Serve(
        str(document(tmp_path, "ws://127.0.0.1:9")), "--ws-port", "0", "--workers", workers
    )
    try:
        deadline = time.monotonic() + START
        while not _sighup(serve.proc.pid, "SigIgn"):
            assert not _sighup(serve.proc.pid, "SigCgt"), "a handler, never ignored before"
            assert time.monotonic() < deadline
        for _ in range(5):
            serve.proc.send_signal(signal.SIGHUP)
        serve.wait_for(LISTENING, START)
        assert serve.proc.poll() is None
    finally:
        assert serve.stop() == 0
