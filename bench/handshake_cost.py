"""The relay's own Python per handshake, without sockets: what no I/O layer can take away.

``python bench/handshake_cost.py [--auth key|jwt] [--cycles N] [--profile]`` drives the relay's
sans-I/O core (:class:`~asyncapi_gw.relay.connection.Connection` and its
:class:`~asyncapi_gw.relay.gate.Gate`) through the cycle each connection of ``run.py``'s
handshake measure makes, with the bench's document, credentials and token: the client's upgrade
request, the gate's admission, the backend's request, its 101 checked, the client's 101, the
client's close frame relayed, the backend's answer relayed, both sockets gone. It prints the
µs per cycle (best of several rounds, to keep other work on the machine out) and how many
Python calls one cycle makes; ``--profile`` adds the functions that take the most time.

The gap between this figure and the relay's whole CPU per handshake (``run.py``'s second table)
is the asyncio shell and the kernel; the floor (``python_floor.py``) has only those.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import hashlib
import pstats
import re
import sys
import time
from collections.abc import Sequence

from run import API_KEY, JWT_SECRET, bench_token, relay_document

from asyncapi_gw import ApiKeyInfo, AuthConfig, RelayConfig, load_asyncapi
from asyncapi_gw.relay.connection import Connection, Side, Write
from asyncapi_gw.relay.gate import Gate

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_CLOSE = b"\x88\x82\x00\x00\x00\x00\x03\xe8"  # a masked close frame, 1000 (key 0: as sent)
_BACKEND_CLOSE = b"\x88\x02\x03\xe8"


def _request(auth_header: str) -> bytes:
    return (
        "GET /bench/1.0.0/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        f"Sec-WebSocket-Version: 13\r\n{auth_header}\r\n\r\n"
    ).encode()


def _answer(backend_request: bytes) -> bytes:
    found = re.search(rb"Sec-WebSocket-Key: (\S+)", backend_request)
    assert found is not None, backend_request
    accept = base64.b64encode(hashlib.sha1(found.group(1) + _GUID).digest()).decode()  # noqa: S324
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
    ).encode()


def _gate(jwt: bool) -> tuple[Gate, bytes]:
    api = load_asyncapi(relay_document(9, jwt=jwt))
    if jwt:
        auth = AuthConfig(jwt_secret=JWT_SECRET)
        header = f"Authorization: Bearer {bench_token()}"
    else:
        auth = AuthConfig(api_keys={API_KEY: ApiKeyInfo(name="bench")})
        header = f"apikey: {API_KEY}"
    config = RelayConfig(auth=auth, max_message_size=1 << 20, on_wrong_direction="close")
    return Gate([api], config), _request(header)


def _backend_bytes(actions: Sequence[object]) -> bytes:
    return b"".join(a.data for a in actions if isinstance(a, Write) and a.side is Side.BACKEND)


def cycle(gate: Gate, request: bytes) -> None:
    """One handshake as the bench's load makes it, through the core alone (and the backend's
    101 worked out for the relay's key, which :func:`_answer_cost` measures to subtract)."""
    client, backend = Side.CLIENT, Side.BACKEND
    connection = Connection(gate, peer="127.0.0.1")
    connection.start()
    connection.receive(client, request)
    connection.receive(backend, _answer(_backend_bytes(connection.backend_connected())))
    connection.receive(client, _CLOSE)
    connection.receive(backend, _BACKEND_CLOSE)
    connection.lost(backend)
    connection.lost(client)
    assert connection.close_code == 1000, (connection.close_code, connection.error)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--auth", choices=("key", "jwt"), default="jwt")
    parser.add_argument("--cycles", type=int, default=5000, help="cycles per round (5000)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds; the best is shown (7)")
    parser.add_argument("--profile", action="store_true", help="also the costliest functions")
    args = parser.parse_args()
    gate, request = _gate(args.auth == "jwt")
    for _ in range(200):  # warm: caches, the token's first reading
        cycle(gate, request)
    best = min(_round(gate, request, args.cycles) for _ in range(args.rounds))
    backend = _answer_cost(args.cycles, args.rounds)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(1000):
        cycle(gate, request)
    profiler.disable()
    stats = pstats.Stats(profiler)
    calls = stats.total_calls / 1000  # type: ignore[attr-defined]
    print(
        f"{args.auth}: {(best - backend) * 1e6:.1f} µs of the relay's Python per handshake "
        f"cycle ({best * 1e6:.1f} with the backend's part, {backend * 1e6:.1f}), "
        f"{calls:.0f} Python calls"
    )
    if args.profile:
        stats.sort_stats("tottime").print_stats(25)
    return 0


def _round(gate: Gate, request: bytes, cycles: int) -> float:
    started = time.perf_counter()
    for _ in range(cycles):
        cycle(gate, request)
    return (time.perf_counter() - started) / cycles


def _answer_cost(cycles: int, rounds: int) -> float:
    """Seconds :func:`_answer` takes per call: the backend's work inside :func:`cycle`."""
    sample = b"GET /echo HTTP/1.1\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(cycles):
            _answer(sample)
        best = min(best, (time.perf_counter() - started) / cycles)
    return best


if __name__ == "__main__":
    sys.exit(main())
