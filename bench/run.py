"""Relay benchmark: the same load, side by side, against the echo backend directly, through
nginx and through ``asyncapi-gw serve`` (and, with ``floor``, a bare Python splice).

    python bench/run.py [--quick] [--targets direct,nginx,relay[,floor]] [--reps 3]
    python bench/run.py --targets nginx,relay,asgi,fastapi-echo  # the ASGI front
                        [--workers 1,2]

Builds ``backend`` and ``loadgen`` from C with the machine's gcc into bench/build/, starts the
backend and the proxies pinned to CPU 0, runs the load generator pinned to CPU 1, repeats every
measurement, prints medians with min-max and the ratios relay/nginx and relay/direct (and a
relay variant against the plain relay: relay-redis/relay, relay-jwt/relay), and writes every
raw result to bench/out/. ``--workers 1,2`` adds nginx with ``worker_processes 2`` and
``asyncapi-gw serve --workers 2`` (``nginx-w2``, ``relay-w2``) to the same run: those, the
backend and the load generator all share every CPU (``taskset -c 0,1``), as no core is left
to keep the load generator apart. See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import importlib.util
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
BUILD = BENCH / "build"
OUT = BENCH / "out"
SERVER_CPU = "0"
LOADGEN_CPU = "1"
API_KEY = "bench-key-0123456789"
# HS256 needs 32 bytes at least; a benchmark secret, used on loopback only.
JWT_SECRET = "bench-secret-0123456789-0123456789-0123456789"  # noqa: S105
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


@dataclass
class Target:
    """Something the load generator can talk to, and the process whose CPU and memory count."""

    name: str
    port: int
    path: str
    headers: list[str]
    pid: int
    note: str = ""
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    workers: list[int] = field(default_factory=list)  # the serving processes, when several
    loadgen_cpus: str = LOADGEN_CPU

    @property
    def pids(self) -> list[int]:
        """The processes whose CPU time and memory count for this target."""
        return self.workers or [self.pid]


def all_cpus(workers: int) -> str:
    """The CPUs ``workers`` processes spread over, for ``taskset -c``."""
    return f"0-{workers - 1}"


@dataclass(frozen=True)
class Plan:
    reps: int
    duration: float
    warmup: float
    idle_counts: tuple[int, ...]
    idle_hold: float


# --------------------------------------------------------------------------- processes


def build() -> None:
    """Compiles the C programs when their sources are newer than the binaries."""
    BUILD.mkdir(exist_ok=True)
    header = BENCH / "ws_common.h"
    for name in ("backend", "loadgen"):
        src, exe = BENCH / f"{name}.c", BUILD / name
        newest = max(src.stat().st_mtime, header.stat().st_mtime)
        if exe.exists() and exe.stat().st_mtime >= newest:
            continue
        cmd = ["gcc", "-O2", "-Wall", "-Wextra", "-o", str(exe), str(src)]
        subprocess.run(cmd, check=True)
        print(f"built {exe.relative_to(BENCH.parent)}")


def raise_nofile() -> int:
    """Raises this process's open-file limit to the hard limit (children inherit it)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return int(hard)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime


def machine_busy_ticks() -> tuple[int, int]:
    cpu = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in cpu]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def start_backend() -> tuple[subprocess.Popen[bytes], int]:
    proc = subprocess.Popen(
        [
            "taskset",
            "-c",
            SERVER_CPU,
            str(BUILD / "backend"),
            "--port",
            "0",
            "--max-seconds",
            "900",
        ],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if not line.startswith("listening on "):
        stop(proc)
        raise RuntimeError(f"backend did not start: {line!r}")
    return proc, int(line.rsplit(":", 1)[1])


# worker_connections is above the open-file limit on purpose: when fewer than 1/16 of its
# connections are free, nginx closes connections that have not sent their request yet ("worker
# connections are not enough, reusing connections"), which would cap 20,000 at 9,375 relayed
# WebSockets. With 21,504 the open-file limit (20,000, two descriptors per relayed connection)
# is the limit, as for the other targets.
NGINX_CONF = """\
daemon off;
master_process on;
worker_processes {workers};
worker_rlimit_nofile 20000;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 21504; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=4096{reuseport};
        location / {{
            proxy_pass http://127.0.0.1:{backend};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header Host $host;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
        }}
    }}
}}
"""


def start_nginx(workdir: Path, backend_port: int, workers: int = 1) -> Target | str:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        return "nginx is not installed (apt-get install nginx-light)"
    port = free_port()
    workdir = workdir / f"nginx-w{workers}"
    workdir.mkdir()
    conf = workdir / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            dir=workdir,
            port=port,
            backend=backend_port,
            workers=workers,
            # a listening socket per worker, spread by the kernel as the relay's workers are:
            # with one shared socket, one nginx worker often takes every connection of a burst
            reuseport=" reuseport" if workers > 1 else "",
        )
    )
    cpus = SERVER_CPU if workers == 1 else all_cpus(workers)
    proc = subprocess.Popen(
        ["taskset", "-c", cpus, nginx, "-p", str(workdir), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    if not wait_port(port, proc, 10):
        stop(proc)
        log = (workdir / "error.log").read_text() if (workdir / "error.log").exists() else ""
        return f"nginx did not start: {log[-500:]}"
    started: list[int] = []
    for _ in range(100):
        started = children(proc.pid)
        if len(started) == workers:
            break
        time.sleep(0.05)
    if len(started) != workers:
        stop(proc)
        return f"nginx started {len(started)} of {workers} workers"
    version = subprocess.run(
        [nginx, "-v"], capture_output=True, text=True, check=False
    ).stderr.strip()
    if workers == 1:
        return Target("nginx", port, "/echo", [], started[0], note=version, procs=[proc])
    return Target(
        f"nginx-w{workers}",
        port,
        "/echo",
        [],
        proc.pid,
        note=f"{version}, worker_processes {workers}; every process on CPUs {cpus}",
        procs=[proc],
        workers=started,
        loadgen_cpus=cpus,
    )


def relay_document(backend_port: int, *, jwt: bool = False) -> dict[str, Any]:
    """A realistic API: API key auth (``jwt``: bearer JWTs instead), one topic both ways, a URL
    mapping and an event quota.

    The quota is far above what the load reaches: it is checked on every message, never hit.
    """
    scheme = "bearer" if jwt else "apikey"
    message = {
        "name": "Echo",
        "contentType": "text/plain",
        "payload": {"type": "string", "maxLength": 1048576},
    }
    return {
        "asyncapi": "2.6.0",
        "info": {"title": "Bench Echo", "version": "1.0.0"},
        "x-asyncapi-gw-context": "/bench",
        "x-asyncapi-gw-throttling": {"events": 1_000_000_000, "per": "second"},
        "servers": {
            "production": {
                "url": f"127.0.0.1:{backend_port}",
                "protocol": "ws",
                "security": [{scheme: []}],
            }
        },
        "channels": {
            "/echo": {
                "publish": {
                    "operationId": "sendEcho",
                    "x-uri-mapping": "/echo",
                    "message": message,
                },
                "subscribe": {
                    "operationId": "receiveEcho",
                    "x-uri-mapping": "/echo",
                    "message": message,
                },
            }
        },
        "components": {
            "securitySchemes": {
                "apikey": {"type": "httpApiKey", "name": "apikey", "in": "header"},
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            }
        },
    }


def bench_token(lifetime: float = 3600.0) -> str:
    """An HS256 JWT for JWT_SECRET, minted here (the relay verifies it on every handshake)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"sub": "bench", "scope": "echo", "exp": int(time.time() + lifetime)}
    body = b64(json.dumps(claims).encode())
    signed = f"{head}.{body}".encode()
    signature = hmac.new(JWT_SECRET.encode(), signed, hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


def relay_command() -> list[str] | None:
    """This checkout's relay when the bench runs from one (the relay starts in its directory),
    else the installed one."""
    if (BENCH.parent / "asyncapi_gw" / "__main__.py").exists():
        return [sys.executable, "-m", "asyncapi_gw"]
    exe = Path(sys.executable).with_name("asyncapi-gw")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("asyncapi-gw")
    if found:
        return [found]
    if importlib.util.find_spec("asyncapi_gw") is not None:
        return [sys.executable, "-m", "asyncapi_gw"]
    return None


def checkout_env(checkout: Path) -> dict[str, str]:
    """The environment that makes ``asyncapi-gw`` import the package of ``checkout`` (a source
    tree), whatever the interpreter has installed."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(checkout), env.get("PYTHONPATH")]))
    return env


def relay_loop_variants(cmd: list[str], env: dict[str, str]) -> list[tuple[str, list[str]]] | str:
    """The relay runs to measure: with and without uvloop when serve offers the choice."""
    try:
        helped = subprocess.run(
            [*cmd, "serve", "--help"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env=env,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`asyncapi-gw serve --help` failed: {exc}"
    if helped.returncode != 0:
        return (
            "`asyncapi-gw serve` is not available yet: "
            + (helped.stderr.strip().splitlines() or ["no output"])[-1]
        )
    has_uvloop = importlib.util.find_spec("uvloop") is not None
    text = helped.stdout
    # ``relay`` is serve as deployed (uvloop when installed); ``relay-asyncio`` forces asyncio.
    if "--loop" in text:
        if has_uvloop:
            return [("relay", ["--loop", "uvloop"]), ("relay-asyncio", ["--loop", "asyncio"])]
        return [("relay", ["--loop", "asyncio"])]
    if "--no-uvloop" in text and has_uvloop:
        return [("relay", []), ("relay-asyncio", ["--no-uvloop"])]
    return [("relay", [])]


def relay_files(workdir: Path, backend_port: int, *, jwt: bool = False) -> tuple[Path, Path]:
    """The bench document and its credentials file (API keys, or ``jwt``: the JWT secret),
    written into ``workdir``."""
    doc = workdir / f"bench-api{'-jwt' if jwt else ''}.json"
    doc.write_text(json.dumps(relay_document(backend_port, jwt=jwt), indent=2))
    if jwt:
        secret = workdir / "jwt-secret"
        secret.write_text(JWT_SECRET)
        return doc, secret
    keys = workdir / "api-keys.yaml"
    # JSON is YAML: the file reads the same whichever parser the relay uses.
    keys.write_text(json.dumps({API_KEY: {"scopes": [], "environment": "production"}}) + "\n")
    return doc, keys


def start_listening(
    argv: list[str], log_path: Path, *, checkout: Path = BENCH.parent
) -> tuple[subprocess.Popen[bytes], str] | str:
    """Start ``argv`` in ``checkout``, importing its package, with its output in ``log_path``,
    and wait (30 s at most) for its ``listening on ws://`` line: the process and that line, or
    what it printed instead."""
    log = log_path.open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=log, cwd=checkout, env=checkout_env(checkout))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        if b"listening on ws://" in log_path.read_bytes():
            break
        time.sleep(0.1)
    text = log_path.read_text(errors="replace")
    if proc.poll() is not None or "listening on ws://" not in text:
        stop(proc)
        log.close()
        return text.strip()[-600:] or "no output"
    return proc, text[text.index("listening on ws://") :].splitlines()[0]


def start_relay(
    workdir: Path,
    backend_port: int,
    name: str,
    cmd: list[str],
    extra: list[str],
    *,
    checkout: Path = BENCH.parent,
    jwt: bool = False,
    workers: int = 1,
) -> Target | str:
    """``asyncapi-gw serve`` of ``checkout`` with API keys, or (``jwt``) with bearer JWTs: every
    handshake sends the same HS256 token, which the relay verifies each time."""
    doc, credentials = relay_files(workdir, backend_port, jwt=jwt)
    if jwt:
        auth = ["--jwt-secret-file", str(credentials)]
        headers = [f"Authorization: Bearer {bench_token()}"]
    else:
        auth = ["--api-keys", str(credentials)]
        headers = [f"apikey: {API_KEY}"]
    port = free_port()
    cpus = SERVER_CPU if workers == 1 else all_cpus(workers)
    if workers > 1:
        extra = [*extra, "--workers", str(workers)]
    argv = [
        "taskset",
        "-c",
        cpus,
        *cmd,
        "serve",
        str(doc),
        "--host",
        "127.0.0.1",
        "--ws-port",
        str(port),
        "--no-wss",
        "--no-admin",  # the load talks to the ws listener only; no fixed port to collide on
        *auth,
        "--max-message-size",
        str(1 << 20),
        "--on-wrong-direction",
        "close",
        *extra,
    ]
    started = start_listening(argv, workdir / f"{name}.log", checkout=checkout)
    if isinstance(started, str):
        return f"`asyncapi-gw serve` did not start: {started}"
    proc, _ = started
    note = " ".join(extra) or "default loop"
    if workers == 1:
        return Target(
            name,
            port,
            "/bench/1.0.0/echo",
            headers,
            proc.pid,
            note=note,
            procs=[proc],
        )
    # the supervisor's children that serve (not multiprocessing's resource tracker)
    serving = [
        pid
        for pid in children(proc.pid)
        if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    return Target(
        name,
        port,
        "/bench/1.0.0/echo",
        headers,
        proc.pid,
        note=f"{note}; every process on CPUs {cpus}",
        procs=[proc],
        workers=serving,
        loadgen_cpus=cpus,
    )


def start_asgi(workdir: Path, backend_port: int, name: str, ws: str) -> Target | str:
    """``bench/asgi_front.py`` under uvicorn: ``asgi`` (the relay's ASGI front over the relay's
    document and keys) or ``fastapi-echo`` (a plain FastAPI endpoint relaying to the backend)."""
    if importlib.util.find_spec("uvicorn") is None or importlib.util.find_spec("fastapi") is None:
        return "uvicorn and fastapi are not installed (pip install -e '.[test]')"
    port = free_port()
    if name == "asgi":
        doc, keys = relay_files(workdir, backend_port)
        args = ["relay", str(doc), str(keys)]
        path, headers = "/bench/1.0.0/echo", [f"apikey: {API_KEY}"]
    else:
        args = ["fastapi-echo", f"ws://127.0.0.1:{backend_port}/echo"]
        path, headers = "/echo", []
    script = [sys.executable, str(BENCH / "asgi_front.py"), *args, str(port), "--ws", ws]
    started = start_listening(["taskset", "-c", SERVER_CPU, *script], workdir / f"{name}.log")
    if isinstance(started, str):
        return f"{name} did not start: {started}"
    proc, line = started
    return Target(name, port, path, headers, proc.pid, note=f"uvicorn {line}", procs=[proc])


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], int] | str:
    """A ``redis-server`` for ``relay-redis``'s quota, without persistence, on the loadgen's
    CPU: in a deployment Redis runs elsewhere, not on the relay's core."""
    redis = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(redis).exists():
        return "redis-server is not installed (apt-get install redis-server)"
    port = free_port()
    argv = ["taskset", "-c", LOADGEN_CPU, redis, "--port", str(port), "--bind", "127.0.0.1"]
    argv += ["--save", "", "--appendonly", "no", "--dir", str(workdir)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_port(port, proc, 10):
        stop(proc)
        return "redis-server did not start"
    return proc, port


def start_floor(backend_port: int) -> Target | str:
    """``python_floor.py``: the bare Python splice that bounds what any Python relay can do."""
    port = free_port()
    argv = ["taskset", "-c", SERVER_CPU, sys.executable, str(BENCH / "python_floor.py")]
    proc = subprocess.Popen([*argv, str(port), str(backend_port)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if not line.startswith("listening on "):
        stop(proc)
        return f"python_floor.py did not start: {line!r}"
    loop = "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
    return Target(
        "floor", port, "/echo", [], proc.pid, note=f"bare Python splice, {loop}", procs=[proc]
    )


# --------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Measure:
    key: str
    label: str
    args: tuple[str, ...]
    value: Callable[[dict[str, Any]], float]
    unit: str
    higher_is_better: bool = True


def _lat(p: str) -> Callable[[dict[str, Any]], float]:
    return lambda r: float(r["lat_us"][p])


def traffic_measures() -> list[Measure]:
    pp = ("--mode", "pingpong", "--conns", "64")
    return [
        Measure(
            "pp32",
            "ping-pong 32 B, 64 conns",
            (*pp, "--size", "32"),
            lambda r: float(r["msg_per_s"]),
            "msg/s",
        ),
        Measure(
            "pp1k",
            "ping-pong 1 KiB, 64 conns",
            (*pp, "--size", "1024"),
            lambda r: float(r["msg_per_s"]),
            "msg/s",
        ),
        Measure(
            "pp64k",
            "ping-pong 64 KiB, 64 conns",
            (*pp, "--size", "65536"),
            lambda r: float(r["msg_per_s"]),
            "msg/s",
        ),
        Measure(
            "stream1k",
            "stream 1 KiB, 64 conns x 16 in flight",
            ("--mode", "stream", "--conns", "64", "--window", "16", "--size", "1024"),
            lambda r: float(r["msg_per_s"]),
            "msg/s",
        ),
        Measure(
            "lat1",
            "1 KiB round trip, 1 conn",
            ("--mode", "pingpong", "--conns", "1", "--size", "1024"),
            _lat("p50"),
            "µs p50",
            higher_is_better=False,
        ),
        Measure(
            "handshake",
            "handshakes, 32 concurrent",
            ("--mode", "handshake", "--conns", "32"),
            lambda r: float(r["handshakes_per_s"]),
            "/s",
        ),
    ]


def run_loadgen(
    target: Target, args: tuple[str, ...], plan: Plan, server_pids: list[int]
) -> dict[str, Any]:
    argv = [
        "taskset",
        "-c",
        target.loadgen_cpus,
        str(BUILD / "loadgen"),
        "--port",
        str(target.port),
        "--path",
        target.path,
        "--duration",
        str(plan.duration),
        "--warmup",
        str(plan.warmup),
    ]
    for header in target.headers:
        argv += ["--header", header]
    argv += list(args)
    before = {pid: cpu_ticks(pid) for pid in server_pids}
    busy0, total0 = machine_busy_ticks()
    child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=plan.duration + plan.warmup + 60, check=False
    )
    wall = time.monotonic() - t0
    child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy1, total1 = machine_busy_ticks()
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"loadgen failed ({done.returncode}): {done.stderr.strip()}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    cores = os.cpu_count() or 1
    result["wall_s"] = round(wall, 3)
    result["server_cpu_pct"] = {
        str(pid): round(100 * (cpu_ticks(pid) - before[pid]) / CLOCK_TICKS / wall, 1)
        for pid in server_pids
    }
    loadgen_cpu = (child1.ru_utime - child0.ru_utime) + (child1.ru_stime - child0.ru_stime)
    machine = 100 * cores * (busy1 - busy0) / max(1, total1 - total0)
    ours = sum(result["server_cpu_pct"].values()) + 100 * loadgen_cpu / wall
    result["machine_busy_pct"] = round(machine, 1)
    result["unattributed_cpu_pct"] = round(max(0.0, machine - ours), 1)
    return result


def measure_idle(target: Target, count: int, plan: Plan) -> dict[str, Any]:
    """Opens COUNT idle connections through the target; KiB of RSS each, on the target's pid."""
    argv = [
        "taskset",
        "-c",
        target.loadgen_cpus,
        str(BUILD / "loadgen"),
        "--port",
        str(target.port),
        "--path",
        target.path,
        "--mode",
        "idle",
        "--conns",
        str(count),
        "--hold",
        str(plan.idle_hold),
        "--duration",
        "1",
    ]
    for header in target.headers:
        argv += ["--header", header]
    time.sleep(0.3)
    before = sum(rss_kib(pid) for pid in target.pids)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    assert proc.stdout is not None
    ready = proc.stderr.readline().split()
    after = before
    if ready[:1] == ["ready"]:
        time.sleep(min(0.5, plan.idle_hold / 2))
        after = sum(rss_kib(pid) for pid in target.pids)
    out, err = proc.communicate(timeout=plan.idle_hold + 120)
    if proc.returncode != 0 or not out.strip():
        raise RuntimeError(f"loadgen idle failed ({proc.returncode}): {err.strip()}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    opened = int(result["connected"])
    result["rss_before_kib"] = before
    result["rss_after_kib"] = after
    result["kib_per_conn"] = round((after - before) / opened, 2) if opened else None
    return result


# --------------------------------------------------------------------------- report


def cpu_per_op(result: dict[str, Any], target: Target, measure: Measure) -> float:
    """µs of CPU the target's own processes spent per message or handshake in ``result``."""
    cpu = sum(result["server_cpu_pct"].get(str(pid), 0.0) for pid in target.pids) / 100
    return 1e6 * cpu / max(measure.value(result), 1e-9)


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def fmt(value: float) -> str:
    if value >= 100_000:
        return f"{value / 1000:.0f}k"
    if value >= 10_000:
        return f"{value / 1000:.1f}k"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}"


def cell(s: dict[str, float] | None) -> str:
    if s is None:
        return "-"
    if s["min"] == s["max"]:
        return fmt(s["median"])
    return f"{fmt(s['median'])} ({fmt(s['min'])}-{fmt(s['max'])})"


def print_table(names: list[str], rows: list[tuple[str, str, dict[str, dict[str, float]]]]) -> None:
    relays = [n for n in names if n.startswith("relay")]
    ratio_cols: list[tuple[str, str, str]] = []
    for relay in relays:
        workers = relay[relay.index("-w") :] if "-w" in relay else ""  # -w2: with nginx-w2
        for base in ("nginx", "direct", "floor"):
            peer = f"{base}{workers}" if base == "nginx" else base
            if peer in names:
                ratio_cols.append((f"{relay}/{peer}", relay, peer))
    for relay in relays:  # a feature's cost: relay-redis, relay-jwt against the plain relay
        if relay != "relay" and "relay" in names and "-w" not in relay and "@" not in relay:
            ratio_cols.append((f"{relay}/relay", relay, "relay"))
    for relay in relays:
        if relay + "@base" in names:  # after/before
            ratio_cols.append((f"{relay}/{relay}@base", relay, relay + "@base"))
    if "floor" in names and "nginx" in names:
        ratio_cols.append(("floor/nginx", "floor", "nginx"))
    if "asgi" in names:  # the ASGI front beside the listener and a hand-written FastAPI relay
        for base in ("relay", "fastapi-echo", "nginx"):
            if base in names:
                ratio_cols.append((f"asgi/{base}", "asgi", base))
    if not relays and "nginx" in names and "direct" in names:
        ratio_cols.append(("nginx/direct", "nginx", "direct"))
    header = ["measure", "unit", *names, *(c[0] for c in ratio_cols)]
    table = [header]
    for label, unit, by_target in rows:
        line = [label, unit, *(cell(by_target.get(n)) for n in names)]
        for _title, a, b in ratio_cols:
            sa, sb = by_target.get(a), by_target.get(b)
            line.append(f"{sa['median'] / sb['median']:.2f}" if sa and sb and sb["median"] else "-")
        table.append(line)
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for i, r in enumerate(table):
        print(
            "  ".join(c.ljust(widths[j]) if j < 2 else c.rjust(widths[j]) for j, c in enumerate(r))
        )
        if i == 0:
            print("  ".join("-" * w for w in widths))


# --------------------------------------------------------------------------- main


def environment() -> dict[str, Any]:
    gcc = subprocess.run(["gcc", "--version"], capture_output=True, text=True, check=False).stdout
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "kernel": platform.release(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "gcc": gcc.splitlines()[0] if gcc else "",
        "python": platform.python_version(),
        "uvloop": importlib.util.find_spec("uvloop") is not None,
        "pinning": {"backend_and_proxy": SERVER_CPU, "loadgen": LOADGEN_CPU},
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
        "scheduler": "SCHED_RR" if os.sched_getscheduler(0) == os.SCHED_RR else "normal",
    }


@contextlib.contextmanager
def targets_running(
    wanted: list[str],
    workdir: Path,
    backend: subprocess.Popen[bytes],
    backend_port: int,
    *,
    asgi_ws: str = "websockets",
    workers: tuple[int, ...] = (1,),
    base: Path | None = None,
) -> Iterator[tuple[list[Target], dict[str, str]]]:
    targets: list[Target] = []
    skipped: dict[str, str] = {}
    try:
        if "direct" in wanted:
            targets.append(
                Target("direct", backend_port, "/echo", [], backend.pid, note="C echo backend")
            )
        if "nginx" in wanted:
            started = start_nginx(workdir, backend_port)
            if isinstance(started, str):
                skipped["nginx"] = started
            else:
                targets.append(started)
        cmd = relay_command()
        checkouts = [("", BENCH.parent)] + ([] if base is None else [("@base", base)])
        for suffix, checkout in checkouts:
            env = checkout_env(checkout)
            if "relay" in wanted:
                variants = relay_loop_variants(cmd, env) if cmd else "asyncapi-gw is not installed"
                if isinstance(variants, str):
                    skipped["relay" + suffix] = variants
                    variants = []
                for name, extra in variants:
                    assert cmd is not None
                    started = start_relay(
                        workdir, backend_port, name + suffix, cmd, extra, checkout=checkout
                    )
                    if isinstance(started, str):
                        skipped[name + suffix] = started
                    else:
                        targets.append(started)
            if "relay-jwt" in wanted:
                started = (
                    start_relay(
                        workdir,
                        backend_port,
                        "relay-jwt" + suffix,
                        cmd,
                        [],
                        checkout=checkout,
                        jwt=True,
                    )
                    if cmd
                    else "asyncapi-gw is not installed"
                )
                if isinstance(started, str):
                    skipped["relay-jwt" + suffix] = started
                else:
                    started.note = "HS256 bearer JWT verified on every handshake"
                    targets.append(started)
        if "relay-redis" in wanted:  # relay's API quota counted in Redis (--quota-store)
            redis = start_redis(workdir) if cmd else "asyncapi-gw is not installed"
            if isinstance(redis, str):
                skipped["relay-redis"] = redis
            else:
                assert cmd is not None
                redis_proc, redis_port = redis
                store = ["--quota-store", f"redis://127.0.0.1:{redis_port}/0"]
                started = start_relay(workdir, backend_port, "relay-redis", cmd, store)
                if isinstance(started, str):
                    stop(redis_proc)
                    skipped["relay-redis"] = started
                else:
                    started.procs.append(redis_proc)
                    started.note += " (redis-server on the loadgen's CPU)"
                    targets.append(started)
        for name in ("asgi", "fastapi-echo"):
            if name in wanted:
                started = start_asgi(workdir, backend_port, name, asgi_ws)
                if isinstance(started, str):
                    skipped[name] = started
                else:
                    targets.append(started)
        if "floor" in wanted:
            started = start_floor(backend_port)
            if isinstance(started, str):
                skipped["floor"] = started
            else:
                targets.append(started)
        for count in (n for n in workers if n > 1):  # the relay as deployed, and nginx
            if "nginx" in wanted:
                started = start_nginx(workdir, backend_port, count)
                if isinstance(started, str):
                    skipped[f"nginx-w{count}"] = started
                else:
                    targets.append(started)
            cmd = relay_command()
            if "relay" in wanted and cmd:
                name = f"relay-w{count}"
                started = start_relay(workdir, backend_port, name, cmd, [], workers=count)
                if isinstance(started, str):
                    skipped[name] = started
                else:
                    targets.append(started)
        yield targets, skipped
    finally:
        for target in targets:
            for proc in target.procs:
                stop(proc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one repetition, short runs")
    parser.add_argument(
        "--targets",
        default="direct,nginx,relay",
        help="any of direct,nginx,relay,relay-jwt,relay-redis,floor,asgi,fastapi-echo "
        "(relay-redis: the relay with its quota in a redis-server; asgi: the relay's "
        "ASGI front under uvicorn; fastapi-echo: a plain FastAPI endpoint relaying to the backend)",
    )
    parser.add_argument(
        "--asgi-ws",
        default="websockets",
        help="uvicorn's WebSocket implementation for the asgi targets (websockets, "
        "websockets-sansio, wsproto)",
    )
    parser.add_argument(
        "--measures",
        default=None,
        help="a subset of pp32,pp1k,pp64k,stream1k,lat1,handshake (default: all)",
    )
    parser.add_argument(
        "--base",
        type=Path,
        default=None,
        metavar="CHECKOUT",
        help="also measure the relay of this source tree (another checkout, e.g. main's), "
        "as targets named relay@base and so on: before and after in one run",
    )
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 3; quick 1)")
    parser.add_argument("--duration", type=float, default=None, help="seconds per measurement")
    parser.add_argument(
        "--idle", default=None, help="idle connection counts, e.g. 1000,5000,9900 (0: none)"
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=None,
        help="scheduling priority for the whole run (e.g. -10 on a busy machine; "
        "negative values need root)",
    )
    parser.add_argument(
        "--rt",
        action="store_true",
        help="run everything under SCHED_RR (real time, needs root): figures "
        "close to an idle machine's on a busy one, at the expense of every "
        "other process on the machine for the length of the run",
    )
    parser.add_argument(
        "--validation",
        action="store_true",
        help="also run bench/validation.py (import and validation timings)",
    )
    parser.add_argument(
        "--workers",
        default="1",
        help="worker counts to compare, e.g. 1,2: nginx worker_processes N and the relay's "
        "serve --workers N beside the single-process targets",
    )
    args = parser.parse_args(argv)
    workers = tuple(sorted({int(n) for n in args.workers.split(",")}))

    plan = Plan(
        reps=args.reps or (1 if args.quick else 3),
        duration=args.duration or (1.0 if args.quick else 1.5),
        warmup=0.2 if args.quick else 0.3,
        idle_counts=tuple(
            int(n)
            for n in (args.idle or ("1000" if args.quick else "1000,5000,9900")).split(",")
            if int(n) > 0
        ),
        idle_hold=2.0,
    )
    wanted = [t.strip() for t in args.targets.split(",") if t.strip()]
    if args.nice is not None:
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)  # inherited by every child
    if args.rt:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(10))
    hard = raise_nofile()
    if max(plan.idle_counts, default=0) * 2 + 64 > hard:
        print(
            f"open-file hard limit {hard} is too low for {max(plan.idle_counts)} relayed "
            "connections",
            file=sys.stderr,
        )
        return 2
    for tool in ("gcc", "taskset"):
        if not shutil.which(tool):
            print(f"{tool} is required", file=sys.stderr)
            return 2
    build()
    started_at = time.strftime("%Y%m%d-%H%M%S")
    t_start = time.monotonic()
    results: dict[str, Any] = {
        "started": started_at,
        "environment": environment(),
        "plan": plan.__dict__,
        "targets": {},
        "skipped": {},
    }
    backend, backend_port = start_backend()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="asyncapi-gw-bench-") as tmp,
            targets_running(
                wanted,
                Path(tmp),
                backend,
                backend_port,
                asgi_ws=args.asgi_ws,
                workers=workers,
                base=args.base,
            ) as (
                targets,
                skipped,
            ),
        ):
            results["skipped"] = skipped
            for name, why in skipped.items():
                print(f"skipping {name}: {why}")
            print(
                f"targets: {', '.join(t.name for t in targets)}; {plan.reps} repetition(s) of "
                f"{plan.duration:g} s per measurement; backend and proxies on CPU {SERVER_CPU}, "
                f"loadgen on CPU {LOADGEN_CPU}"
            )
            for t in targets:
                if t.workers:
                    print(
                        f"  {t.name}: {len(t.workers)} workers and its load generator share "
                        f"CPUs {t.loadgen_cpus} (the backend stays on CPU {SERVER_CPU})"
                    )
            raw: dict[str, dict[str, list[dict[str, Any]]]] = {t.name: {} for t in targets}
            measures = traffic_measures()
            if args.measures:
                keys = args.measures.split(",")
                measures = [m for m in measures if m.key in keys]
            for rep in range(plan.reps):
                for measure in measures:
                    for target in targets:  # interleaved, so drift hits every target alike
                        pids = sorted({*target.pids, backend.pid})
                        result = run_loadgen(target, measure.args, plan, pids)
                        raw[target.name].setdefault(measure.key, []).append(result)
                        bad = int(result["failed"]) + int(result["dropped"])
                        flag = (
                            f"  FAILED/DROPPED {bad}: {result['errors']} {result['http_status']}"
                            if bad
                            else ""
                        )
                        print(
                            f"  rep {rep + 1} {measure.key:9} {target.name:18} "
                            f"{fmt(measure.value(result)):>7} {measure.unit:7} "
                            f"(unattributed CPU {result['unattributed_cpu_pct']:.0f}%){flag}",
                            flush=True,
                        )
            for count in plan.idle_counts:
                for target in targets:
                    result = measure_idle(target, count, plan)
                    raw[target.name].setdefault(f"idle{count}", []).append(result)
                    print(
                        f"  idle {count:5} {target.name:18} {result['kib_per_conn']} KiB/conn "
                        f"({result['connected']} open, {result['failed']} failed)",
                        flush=True,
                    )
            rows: list[tuple[str, str, dict[str, dict[str, float]]]] = []
            for measure in measures:
                by_target = {
                    t.name: summary([measure.value(r) for r in raw[t.name][measure.key]])
                    for t in targets
                }
                rows.append((measure.label, measure.unit, by_target))
                if measure.key in ("pp1k", "lat1"):
                    p = "p99"
                    rows.append(
                        (
                            f"  {measure.label}",
                            "µs " + p,
                            {
                                t.name: summary([_lat(p)(r) for r in raw[t.name][measure.key]])
                                for t in targets
                            },
                        )
                    )
            for count in plan.idle_counts:
                rows.append(
                    (
                        f"memory, {count} idle conns",
                        "KiB/conn",
                        {
                            t.name: summary(
                                [
                                    float(r["kib_per_conn"])
                                    for r in raw[t.name][f"idle{count}"]
                                    if r["kib_per_conn"] is not None
                                ]
                                or [0.0]
                            )
                            for t in targets
                        },
                    )
                )
            names = [t.name for t in targets]
            print()
            print_table(names, rows)
            print(
                "\nCPU of each target's own processes per operation, µs (lower is better; "
                "the backend and load generator excluded): what a core buys, whatever shares it"
            )
            print_table(
                names,
                [
                    (
                        measure.label,
                        "µs/op",
                        {
                            t.name: summary(
                                [cpu_per_op(r, t, measure) for r in raw[t.name][measure.key]]
                            )
                            for t in targets
                            if t.name != "direct"
                        },
                    )
                    for measure in measures
                    if measure.unit.endswith("/s")
                ],
            )
            if "direct" in raw and "lat1" in raw["direct"]:
                base = statistics.median(r["lat_us"]["p50"] for r in raw["direct"]["lat1"])
                for t in targets:
                    if t.name != "direct":
                        added = statistics.median(r["lat_us"]["p50"] for r in raw[t.name]["lat1"])
                        print(f"added p50 latency at 1 conn, {t.name}: {added - base:+.0f} µs")
            if "direct" in raw and "pp1k" in raw["direct"]:
                pp1k = statistics.median(r["msg_per_s"] for r in raw["direct"]["pp1k"])
                if pp1k < 70_000:
                    print(
                        "warning: direct ping-pong 1 KiB is below 70k msg/s: the machine is "
                        "busy (try --rt) or the generator/backend is the bottleneck"
                    )
            for t in targets:
                print(f"{t.name}: {t.note}" if t.note else t.name)
            results["targets"] = {
                t.name: {"note": t.note, "path": t.path, "results": raw[t.name]} for t in targets
            }
            results["summary"] = [
                {"measure": label, "unit": unit, "by_target": bt} for label, unit, bt in rows
            ]
    finally:
        stop(backend)
    if args.validation:
        if args.rt:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        subprocess.run(
            [sys.executable, str(BENCH / "validation.py"), *(["--quick"] if args.quick else [])],
            check=False,
        )
    OUT.mkdir(exist_ok=True)
    out = OUT / f"run-{started_at}.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"results: {out.relative_to(BENCH.parent)} ({time.monotonic() - t_start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
