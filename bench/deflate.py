"""What holding the size limit on inflated sizes costs the relay, per compressed message.

    python bench/deflate.py [--messages 2000] [--reps 7]

With permessage-deflate negotiated the relay inflates each compressed message only to count
its size (asyncapi_gw.relay.deflate). This drives one direction's Pump, as the relay's shell
does (``forward_whole``, else ``receive``), over streams of messages compressed by websockets'
own permessage-deflate (context takeover, 12-bit windows: what a websockets backend
negotiates), once with a limit (counting) and once without (header scan only, the relay's
cost before counting), and prints the best µs per message of each (the least of the
repetitions, as ``timeit`` advises: on a shared machine the others measure the neighbours),
their difference and
ratio, the µs of zlib alone inflating the same messages (what any receiver, the backend
included, spends on them), and the memory the counting inflater holds between messages.
Single process, bounded loops, no sockets: it measures the relay's own work per message, not
a network.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path

from websockets.extensions.permessage_deflate import PerMessageDeflate  # noqa: TID251
from websockets.frames import Frame, Opcode  # noqa: TID251

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asyncapi_gw.relay.deflate import Compression
from asyncapi_gw.relay.stream import Pump, StreamPolicy

WINDOW_BITS = 12
LIMIT = 1 << 20  # the relay's default max_message_size


def _json_message(n: int, size: int) -> bytes:
    """A JSON chat event of about ``size`` bytes, varying with ``n`` like real traffic."""
    body = {"type": "message", "room": f"room-{n % 17}", "seq": n, "user": f"user{n % 101}"}
    text = json.dumps(body)
    filler = " ".join(f"word{(n * 7 + i) % 500}" for i in range(size // 8))
    return json.dumps({**body, "text": filler[: max(0, size - len(text) - 12)]}).encode()


def _stream(messages: list[bytes], *, masked: bool) -> list[bytes]:
    """Each message as the bytes of one compressed frame (context takeover)."""
    extension = PerMessageDeflate(
        remote_no_context_takeover=False,
        local_no_context_takeover=False,
        remote_max_window_bits=WINDOW_BITS,
        local_max_window_bits=WINDOW_BITS,
    )
    return [Frame(Opcode.TEXT, m).serialize(mask=masked, extensions=[extension]) for m in messages]


def _drive(frames: list[bytes], *, masked: bool, limit: int | None) -> float:
    """Seconds to pass ``frames`` through a fresh Pump, one chunk per frame."""
    pump = Pump(
        StreamPolicy(
            from_client=masked,
            allowed=True,
            max_message_size=limit,
            deflate=Compression(WINDOW_BITS, context_takeover=True),
        )
    )
    whole, receive = pump.forward_whole, pump.receive
    started = time.perf_counter()
    for chunk in frames:
        if not whole(chunk):
            receive(chunk)
    return time.perf_counter() - started


def _zlib_only(frames: list[bytes]) -> float:
    """Seconds zlib alone takes to inflate the frames' payloads, as any receiver does."""
    payloads = [_unmasked(f) if f[1] & 0x80 else _payload(f) for f in frames]
    inflater = zlib.decompressobj(-WINDOW_BITS)
    started = time.perf_counter()
    for payload in payloads:
        inflater.decompress(payload + b"\x00\x00\xff\xff")
    return time.perf_counter() - started


def _payload(frame: bytes) -> bytes:
    length = frame[1] & 0x7F
    start = 2 + {126: 2, 127: 8}.get(length, 0) + (4 if frame[1] & 0x80 else 0)
    return frame[start:]


def _unmasked(frame: bytes) -> bytes:
    payload = _payload(frame)
    key_at = len(frame) - len(payload) - 4
    key = frame[key_at : key_at + 4]
    return bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def _held_memory(frames: list[bytes], *, masked: bool) -> int:
    """Bytes the counting Pump holds after its messages (the inflater's window and state)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        pump = Pump(
            StreamPolicy(
                from_client=masked,
                allowed=True,
                max_message_size=LIMIT,
                deflate=Compression(WINDOW_BITS, context_takeover=True),
            )
        )
        for chunk in frames:
            if not pump.forward_whole(chunk):
                pump.receive(chunk)
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def _best(reps: int, run: Callable[[], float]) -> float:
    return min(run() for _ in range(reps))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000, help="messages per stream")
    parser.add_argument("--reps", type=int, default=7, help="repetitions (the best reported)")
    args = parser.parse_args(argv)
    print(
        f"{'messages':<26}{'wire B':>8}{'scan µs':>9}{'count µs':>10}"
        f"{'+µs':>8}{'ratio':>7}{'zlib µs':>9}{'held KiB':>10}"
    )
    for label, size in [("JSON 200 B", 200), ("JSON 4 KiB", 4096), ("JSON 64 KiB", 65536)]:
        count = max(50, args.messages * 200 // max(size, 200))
        messages = [_json_message(n, size) for n in range(count)]
        for masked, side in ((True, "from client"), (False, "from backend")):
            frames = _stream(messages, masked=masked)
            wire = sum(map(len, frames)) / count
            scan = _best(args.reps, lambda f=frames, m=masked: _drive(f, masked=m, limit=None))
            counted = _best(args.reps, lambda f=frames, m=masked: _drive(f, masked=m, limit=LIMIT))
            alone = _best(args.reps, lambda f=frames: _zlib_only(f))
            held = _held_memory(frames[:50], masked=masked)
            scan_us, count_us = scan / count * 1e6, counted / count * 1e6
            print(
                f"{label + ', ' + side:<26}{wire:>8.0f}{scan_us:>9.2f}{count_us:>10.2f}"
                f"{count_us - scan_us:>8.2f}{count_us / scan_us:>7.1f}"
                f"{alone / count * 1e6:>9.2f}{held / 1024:>10.1f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
