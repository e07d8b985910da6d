"""The per-direction pump: forwarding, dropping, limits, quotas and validation over raw bytes."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from raw_frames import raw_frame

from asyncapi_gw.errors import RelayError
from asyncapi_gw.relay.closecode import CloseCode
from asyncapi_gw.relay.config import OnInvalid, OnThrottle, OnWrongDirection, RelayConfig
from asyncapi_gw.relay.deflate import Compression
from asyncapi_gw.relay.frames import (
    MAX_HEADER,
    FrameScanner,
    Opcode,
    ProtocolViolation,
    close_frame,
    text_frame,
)
from asyncapi_gw.relay.quota import ConnectionQuota, Quota
from asyncapi_gw.relay.stream import (
    Action,
    Close,
    CloseSeen,
    Forward,
    Pump,
    Reply,
    StreamPolicy,
)

THROTTLED = text_frame("Error code: 4003 reason: Websocket frame throttled out", mask=False)


@attrs.frozen
class Frame:
    data: bytes
    message: int | None  # index of its data message; None for control frames
    fin: bool


@attrs.frozen
class Stream:
    masked: bool
    frames: list[Frame]
    payloads: list[bytes]  # each message's payload
    opcodes: list[int]

    @property
    def data(self) -> bytes:
        return b"".join(f.data for f in self.frames)

    def without(self, dropped: set[int]) -> bytes:
        return b"".join(f.data for f in self.frames if f.message not in dropped)


@st.composite
def streams(draw: st.DrawFn, *, masked: bool | None = None) -> Stream:
    """Messages (some fragmented) with pings and pongs between and inside them, and runs of
    messages of one length and type (frames with equal headers)."""
    if masked is None:
        masked = draw(st.booleans())
    rng = random.Random(draw(st.integers(0, 2**32)))
    lengths = st.one_of(st.integers(0, 200), st.sampled_from([125, 126, 65535, 65536]))
    frames: list[Frame] = []
    payloads: list[bytes] = []
    opcodes: list[int] = []
    shape: tuple[int, list[int]] = (Opcode.TEXT, [0])
    for index in range(draw(st.integers(0, 12))):
        if not index or not draw(st.integers(0, 2)):  # else the previous message's shape
            opcode = draw(st.sampled_from([Opcode.TEXT, Opcode.BINARY]))
            shape = (opcode, [draw(lengths) for _ in range(draw(st.integers(1, 3)))])
        opcode = shape[0]
        parts = [rng.randbytes(length) for length in shape[1]]
        for number, part in enumerate(parts):
            fin = number == len(parts) - 1
            code = Opcode.CONT if number else opcode
            frames.append(Frame(raw_frame(code, part, fin=fin, mask=masked), index, fin))
            if draw(st.integers(0, 3)) == 0:
                ping = draw(st.sampled_from([Opcode.PING, Opcode.PONG]))
                frames.append(Frame(raw_frame(ping, rng.randbytes(3), mask=masked), None, True))
        payloads.append(b"".join(parts))
        opcodes.append(opcode)
    return Stream(masked, frames, payloads, opcodes)


CUTS = st.lists(st.integers(0, 2**20), max_size=10)


def cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def run(pump: Pump, chunks: list[bytes]) -> list[Action]:
    actions: list[Action] = []
    for chunk in chunks:
        actions += pump.receive(chunk)
    return actions


def forwarded(actions: list[Action]) -> bytes:
    return b"".join(a.data for a in actions if isinstance(a, Forward))


def policy(stream: Stream, **options: object) -> StreamPolicy:
    return StreamPolicy(from_client=stream.masked, **options)  # type: ignore[arg-type]


class ListQuota:
    """Refuses the messages whose index (in order of take calls) is in ``refused``."""

    def __init__(self, refused: set[int]) -> None:
        self.refused = refused
        self.calls: list[float] = []

    def take(self, now: float) -> bool:
        self.calls.append(now)
        return len(self.calls) - 1 not in self.refused

    def take_many(self, now: float, count: int) -> int:
        granted = 0
        while granted < count and self.take(now):
            granted += 1
        return granted


# --- forwarding ---------------------------------------------------------------------------


@settings(max_examples=120, deadline=None)
@given(streams(), CUTS)
def test_allowed_stream_is_forwarded_exactly(stream: Stream, cuts: list[int]) -> None:
    pump = Pump(policy(stream, allowed=True))
    chunks = cut(stream.data, cuts)
    starts, heads = set(), set()  # offsets where frames start; offsets inside their headers
    offset = 0
    for frame in stream.frames:
        starts.add(offset)
        heads.update(range(offset + 1, offset + len(frame.data) - _payload_size(frame.data)))
        offset += len(frame.data)
    sent, received = b"", 0
    for chunk in chunks:
        actions = pump.receive(chunk)
        received += len(chunk)
        if len(sent) + len(chunk) == received and received not in heads:
            assert actions == [Forward(chunk)]  # the usual chunk passes as it came
        sent += forwarded(actions)
        # what went out never ends inside a header; a close frame could follow it
        assert stream.data.startswith(sent)
        assert len(sent) not in heads
        assert pump.at_frame_boundary() == (len(sent) in starts or len(sent) == len(stream.data))
    assert sent == stream.data
    stats = pump.stats
    assert (stats.messages, stats.frames) == (len(stream.payloads), len(stream.frames))
    assert (stats.bytes, stats.dropped) == (len(stream.data), 0)
    assert pump.at_message_boundary()


@settings(max_examples=120, deadline=None)
@given(streams(), st.sampled_from([b"\x03\xed", b"\x03\xe8\xff", b"\x03", b"x" * 126]), CUTS)
def test_a_bad_frame_after_a_stream_is_never_partly_forwarded(
    stream: Stream, bad_close: bytes, cuts: list[int]
) -> None:
    """Close 1005, a reason not UTF-8, a 1-byte close payload, an oversized control frame: cut
    anywhere, none of its bytes goes out, so the relay's own close frame can follow."""
    data = stream.data + raw_frame(Opcode.CLOSE, bad_close, mask=stream.masked)
    pump = Pump(policy(stream, allowed=True))
    actions = run(pump, cut(data, cuts))
    assert isinstance(actions[-1], Close)
    assert forwarded(actions) == stream.data
    assert pump.at_frame_boundary()


def _payload_size(frame: bytes) -> int:
    size = frame[1] & 0x7F
    if size == 126:
        return int.from_bytes(frame[2:4], "big")
    if size == 127:
        return int.from_bytes(frame[2:10], "big")
    return size


def test_fast_path_returns_the_same_bytes_object() -> None:
    chunk = text_frame("hello", mask=True) * 100
    [action] = Pump(StreamPolicy(from_client=True, allowed=True)).receive(chunk)
    assert isinstance(action, Forward)
    assert action.data is chunk


def drive_as_the_shell(pump: Pump, chunks: list[bytes]) -> list[Action]:
    """What the relay's shell does with each chunk: ``forward_whole``, else ``receive``."""
    actions: list[Action] = []
    for chunk in chunks:
        actions += [Forward(chunk)] if pump.forward_whole(chunk) else pump.receive(chunk)
    return actions


@settings(max_examples=300, deadline=None)
@given(
    streams(),
    st.booleans(),
    st.lists(st.booleans(), max_size=12),
    st.binary(max_size=20),
    st.sampled_from(["plain", "quota", "drop", "close", "validator", "limit", "deflate"]),
)
def test_forward_whole_changes_nothing_but_the_cost(
    stream: Stream, closed: bool, splits: list[bool], garbage: bytes, kind: str
) -> None:
    """Driven as the shell drives it, a pump gives the actions, counts and state that
    ``receive`` alone gives, for any policy, whole frames or cut ones, a close, garbage."""
    frames = [f.data for f in stream.frames]
    if closed:
        frames.append(close_frame(1000, "bye", mask=stream.masked))
    frames.append(garbage)
    chunks: list[bytes] = []  # whole frames, some split in two, some merged with the next
    for index, frame in enumerate(frames):
        split = splits[index % len(splits)] if splits else False
        if split and len(frame) > 1:
            chunks += [frame[: len(frame) // 2], frame[len(frame) // 2 :]]
        elif split and chunks:
            chunks[-1] += frame
        else:
            chunks.append(frame)

    def make() -> Pump:
        options: dict[str, object] = {"allowed": kind not in ("drop", "close")}
        if kind in ("drop", "close"):
            options["on_wrong_direction"] = kind
        if kind == "quota":  # a real quota: a refusal counts nothing, so asking twice is safe
            options["quota"] = ConnectionQuota(Quota(2, 60.0), Quota(3, 60.0))
        if kind == "validator":
            options["validator"] = lambda _o, p: len(p) % 2 == 0
            options["on_invalid"] = "drop"
        if kind == "limit":
            options["max_message_size"] = 100
        if kind == "deflate":
            options["deflate"] = Compression()
        return Pump(policy(stream, **options), clock=lambda: 5.0)

    reference, shell = make(), make()
    assert drive_as_the_shell(shell, chunks) == run(reference, chunks)
    assert shell.stats == reference.stats
    assert shell.at_message_boundary() == reference.at_message_boundary()
    later = text_frame("after", mask=stream.masked)
    assert drive_as_the_shell(shell, [later]) == reference.receive(later)


@settings(max_examples=400, deadline=None)
@given(
    stream=streams(),
    cuts=CUTS,
    closed=st.booleans(),
    garbage=st.binary(max_size=20),
    kind=st.sampled_from(["plain", "quota", "drop", "limit", "deflate", "fragments"]),
    refused=st.sets(st.integers(0, 8)),
)
def test_forward_whole_is_receive_for_any_cut(
    *,
    stream: Stream,
    cuts: list[int],
    closed: bool,
    garbage: bytes,
    kind: str,
    refused: set[int],
) -> None:
    """The fast path (``forward_whole``, then ``receive`` for what it declines) and the plain
    one (``receive`` alone) give the same actions, counts, quota calls and state, for chunks
    cut anywhere: inside headers and payloads, across many frames, with pings, fragmented
    messages, a close, garbage, and a quota that refuses any messages."""
    data = stream.data
    if kind == "fragments":  # every message in two frames at least
        data = b"".join(
            raw_frame(opcode, payload[:1], fin=False, mask=stream.masked)
            + raw_frame(Opcode.CONT, payload[1:], mask=stream.masked)
            for opcode, payload in zip(stream.opcodes, stream.payloads, strict=True)
        )
    if closed:
        data += close_frame(1000, "bye", mask=stream.masked)
    data += garbage
    chunks = cut(data, cuts)

    def make() -> tuple[Pump, ListQuota]:
        quota = ListQuota(refused)
        options: dict[str, object] = {"allowed": kind != "drop", "on_wrong_direction": "drop"}
        if kind in ("quota", "fragments"):
            options["quota"] = quota
        if kind == "limit":
            options["max_message_size"] = 100
        if kind == "deflate":
            options["deflate"] = Compression()
        return Pump(policy(stream, **options), clock=lambda: 5.0), quota

    (fast, fast_quota), (plain, plain_quota) = make(), make()
    assert drive_as_the_shell(fast, chunks) == run(plain, chunks)
    assert fast_quota.calls == plain_quota.calls
    assert fast.stats == plain.stats
    assert fast.at_message_boundary() == plain.at_message_boundary()
    assert fast.at_frame_boundary() == plain.at_frame_boundary()
    later = text_frame("after", mask=stream.masked)
    assert drive_as_the_shell(fast, [later]) == plain.receive(later)


@settings(max_examples=300, deadline=None)
@given(streams(), CUTS, st.integers(1, 2**17))
def test_skim_counts_as_feed_counts(stream: Stream, cuts: list[int], limit: int) -> None:
    """Where :meth:`FrameScanner.skim` takes a chunk, the scanner is left as :meth:`feed`
    leaves it; where it declines, nothing is counted."""
    skimmer = FrameScanner(masked=stream.masked, max_message_size=limit)
    feeder = FrameScanner(masked=stream.masked, max_message_size=limit)
    for chunk in cut(stream.data, cuts):
        before = _counters(skimmer)
        starts = skimmer.skim(chunk)
        if starts < 0:
            assert _counters(skimmer) == before
            try:
                skimmer.feed(chunk, [])
            except ProtocolViolation:
                return
        else:
            assert starts == skimmer.messages - before[1]
        feeder.feed(chunk, [])
        assert _counters(skimmer) == _counters(feeder)


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize(
    ("size", "opcode", "other_size"),
    [
        (10, Opcode.PING, 10),  # header byte 0 differs: not a message
        (10, Opcode.TEXT, 11),  # byte 1: the 7-bit length
        (300, Opcode.TEXT, 556),  # byte 2: the 16-bit length's high byte
        (300, Opcode.TEXT, 301),  # byte 3: its low byte
    ],
)
def test_a_run_of_equal_frames_ends_at_the_first_other_header(
    masked: bool, size: int, opcode: Opcode, other_size: int
) -> None:
    """A frame that differs from a run's in one header byte is not counted as one of the run,
    even where the chunk's length fits the run."""
    one = raw_frame(Opcode.TEXT, b"y" * size, mask=masked)
    other = raw_frame(opcode, b"z" * other_size, mask=masked)
    chunk = (one * 3 + other)[: len(one) * 4]  # where a run of four would end
    skimmer = FrameScanner(masked=masked)
    feeder = FrameScanner(masked=masked)
    assert skimmer.skim(chunk) == (3 if opcode == Opcode.PING else 4)
    feeder.feed(chunk, [])
    assert _counters(skimmer) == _counters(feeder)


def _counters(scanner: FrameScanner) -> tuple[object, ...]:
    return (
        scanner.frames,
        scanner.messages,
        scanner.offset,
        scanner.payload_left,
        scanner.in_message,
        scanner.at_frame_boundary,
        scanner.unfinished_start,
        scanner.message_size if scanner.in_message else None,
    )


class _ScannerWithoutShortcut(FrameScanner):
    __slots__ = ()

    def take_close(self, data: bytes) -> bytes | None:
        return None


@settings(max_examples=300, deadline=None)
@given(
    st.booleans(),
    st.binary(max_size=125),
    st.sampled_from(["plain", "quota", "drop", "validator", "deflate"]),
    st.booleans(),
    st.booleans(),
)
def test_a_close_frame_alone_is_taken_as_the_full_scan_takes_it(
    masked: bool, payload: bytes, kind: str, after_a_message: bool, wrong_mask: bool
) -> None:
    """A chunk holding just a close frame (valid payload or not) is taken in one step, with
    the actions, counts and state of the full scan."""
    frame = raw_frame(Opcode.CLOSE, payload, mask=masked != wrong_mask)
    if payload[:1] == b"\x03":  # often a valid code and reason
        frame = close_frame(int.from_bytes(payload[:2], "big") % 2000 + 1000, "x", mask=masked)
    chunks = [text_frame("m", mask=masked), frame] if after_a_message else [frame]

    def make() -> Pump:
        options: dict[str, object] = {"allowed": kind != "drop", "on_wrong_direction": "drop"}
        if kind == "quota":
            options["quota"] = ConnectionQuota(Quota(5, 60.0), Quota(5, 60.0))
        if kind == "validator":
            options["validator"] = lambda _o, p: True
        if kind == "deflate":
            options["deflate"] = Compression()
        policy = StreamPolicy(from_client=masked, **options)  # type: ignore[arg-type]
        return Pump(policy, clock=lambda: 1.0)

    shortcut, full = make(), make()
    full._scanner.__class__ = _ScannerWithoutShortcut
    assert run(shortcut, chunks) == run(full, chunks)
    assert shortcut.stats == full.stats
    assert shortcut.at_message_boundary() == full.at_message_boundary()
    later = text_frame("after", mask=masked)
    assert shortcut.receive(later) == full.receive(later)


def test_forward_whole_takes_runs_of_whole_messages_and_cut_payloads() -> None:
    pump = Pump(StreamPolicy(from_client=True, allowed=True))
    one = text_frame("x" * 300, mask=True)
    ping = raw_frame(Opcode.PING, b"hi", mask=True)
    assert pump.forward_whole(one)
    assert pump.forward_whole(one + ping + one + one[:100])  # ends in a payload
    assert pump.forward_whole(one[100:150])  # the middle of that payload
    assert pump.forward_whole(one[150:] + one)
    assert not pump.forward_whole(one + one[:3])  # ends inside a header: withheld
    assert pump.receive(one + one[:3]) == [Forward(one)]
    assert forwarded(pump.receive(one[3:])) == one
    assert not pump.forward_whole(text_frame("x", mask=False))  # unmasked from the client
    assert not pump.forward_whole(one + raw_frame(Opcode.TEXT, b"x", fin=False, mask=True))
    assert not pump.forward_whole(one + close_frame(1000, mask=True))
    assert (pump.stats.messages, pump.stats.frames) == (7, 8)


@settings(max_examples=80, deadline=None)
@given(streams(), CUTS, st.integers(1, 2**16), st.booleans())
def test_size_limit(stream: Stream, cuts: list[int], limit: int, quota: bool) -> None:
    options: dict[str, object] = {"allowed": True, "max_message_size": limit}
    if quota:  # the policy path must agree with the fast path
        options["quota"] = ListQuota(set())
    actions = run(Pump(policy(stream, **options)), cut(stream.data, cuts))
    too_big = [i for i, p in enumerate(stream.payloads) if len(p) > limit]
    if not too_big:
        assert forwarded(actions) == stream.data
        assert not any(isinstance(a, Close) for a in actions)
        return
    assert isinstance(actions[-1], Close)
    assert actions[-1].code == 1009
    # Everything before the first frame whose header shows the message too big is forwarded;
    # without a policy path the start of that header may have gone out with an earlier chunk.
    prefix = b""
    for frame in stream.frames:
        if frame.message == too_big[0] and sum_payload(stream, frame) > limit:
            break
        prefix += frame.data
    out = forwarded(actions)
    if quota:
        assert out == prefix
    else:
        assert stream.data.startswith(out)
        assert out.startswith(prefix)
        assert len(out) < len(prefix) + 14


def sum_payload(stream: Stream, upto: Frame) -> int:
    """Payload bytes of ``upto``'s message up to and including the frame ``upto``."""
    total = 0
    for frame in stream.frames:
        if frame.message == upto.message:
            total += payload_length(frame.data)
        if frame is upto:
            return total
    raise AssertionError


def payload_length(frame: bytes) -> int:
    length = frame[1] & 0x7F
    if length == 126:
        return int.from_bytes(frame[2:4], "big")
    if length == 127:
        return int.from_bytes(frame[2:10], "big")
    return length


# --- dropping -----------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(streams(), CUTS)
def test_wrong_direction_drop_keeps_only_control_frames(stream: Stream, cuts: list[int]) -> None:
    pump = Pump(policy(stream, allowed=False, on_wrong_direction="drop"))
    actions = run(pump, cut(stream.data, cuts))
    assert all(isinstance(a, Forward) for a in actions)
    assert forwarded(actions) == stream.without(set(range(len(stream.payloads))))
    assert pump.stats.dropped == len(stream.payloads)


@settings(max_examples=100, deadline=None)
@given(streams(), CUTS, st.sets(st.integers(0, 5)))
def test_throttled_messages_are_dropped_with_a_reply(
    stream: Stream, cuts: list[int], refused: set[int]
) -> None:
    ticks = iter(range(1000))
    quota = ListQuota(refused)
    pump = Pump(policy(stream, allowed=True, quota=quota), clock=lambda: float(next(ticks)))
    actions = run(pump, cut(stream.data, cuts))
    dropped = refused & set(range(len(stream.payloads)))
    assert forwarded(actions) == stream.without(dropped)
    replies = [a for a in actions if not isinstance(a, Forward)]
    if stream.masked:
        assert replies == [Reply(THROTTLED)] * len(dropped)
    else:  # nobody to tell: the backend's excess is dropped silently
        assert replies == []
    assert len(quota.calls) == len(stream.payloads)  # each message asks once
    assert quota.calls == sorted(quota.calls)
    assert pump.stats.dropped == len(dropped)


def test_messages_before_a_close_frame_take_the_quota_once() -> None:
    pump = Pump(
        StreamPolicy(
            from_client=True, allowed=True, quota=ConnectionQuota(Quota(2, 60.0), Quota(2, 60.0))
        ),
        clock=lambda: 1.0,
    )
    two = text_frame("a", mask=True) + text_frame("b", mask=True)
    bye = close_frame(1000, mask=True)
    actions = pump.receive(two + bye)
    assert forwarded(actions) == two + bye
    assert actions[-1] == CloseSeen(1000, "")
    assert not any(isinstance(a, Reply) for a in actions)
    assert pump.stats.dropped == 0


def test_throttle_close() -> None:
    quota = ListQuota({1})
    pump = Pump(StreamPolicy(from_client=True, allowed=True, quota=quota, on_throttle="close"))
    first, second = text_frame("a", mask=True), text_frame("b", mask=True)
    assert pump.receive(first + second) == [
        Forward(first),
        Close(CloseCode.THROTTLED, "Websocket frame throttled out"),
    ]
    assert pump.receive(first) == []


@pytest.mark.parametrize(("from_client", "operation"), [(True, "publish"), (False, "subscribe")])
def test_wrong_direction_close(from_client: bool, operation: str) -> None:
    ping = raw_frame(Opcode.PING, b"hi", mask=from_client)
    message = raw_frame(Opcode.TEXT, b"no", mask=from_client)
    pump = Pump(StreamPolicy(from_client=from_client, allowed=False))
    assert pump.receive(ping) == [Forward(ping)]
    assert pump.receive(message[:1]) == []
    assert pump.receive(message[1:] + ping) == [Close(1008, f"topic does not allow {operation}")]
    assert pump.receive(ping) == []


# --- validation ---------------------------------------------------------------------------


def expected_under(
    stream: Stream, governing: Callable[[int], str], valid: Callable[[int], bool]
) -> bytes:
    """Control frames pass at once; a message passes per the kind of policy that governs it:
    ``plain`` at once, ``drop`` never, ``validator`` at its end when ``valid``."""
    out = b""
    held = b""
    for frame in stream.frames:
        if frame.message is None:
            out += frame.data
            continue
        kind = governing(frame.message)
        if kind == "plain":
            out += frame.data
        elif kind == "validator":
            held += frame.data
            if frame.fin:
                if valid(frame.message):
                    out += held
                held = b""
    return out


def even(stream: Stream) -> Callable[[int], bool]:
    """Whether a message's payload has an even length (``update_policy``'s validator)."""
    return lambda message: len(stream.payloads[message]) % 2 == 0


def expected_with_validation(stream: Stream, valid: Callable[[int], bool]) -> bytes:
    """Control frames pass at once; a message's frames pass at its end when valid."""
    return expected_under(stream, lambda _m: "validator", valid)


@settings(max_examples=100, deadline=None)
@given(streams(), CUTS, st.sets(st.integers(0, 5)))
def test_validator_sees_unmasked_messages_and_drops_invalid_ones(
    stream: Stream, cuts: list[int], invalid: set[int]
) -> None:
    seen: list[tuple[int, bytes]] = []

    def validator(opcode: int, payload: bytes) -> bool:
        seen.append((opcode, payload))
        return len(seen) - 1 not in invalid

    pump = Pump(policy(stream, allowed=True, validator=validator, on_invalid="drop"))
    actions = run(pump, cut(stream.data, cuts))
    assert seen == list(zip(stream.opcodes, stream.payloads, strict=True))
    assert forwarded(actions) == expected_with_validation(stream, lambda i: i not in invalid)
    assert pump.stats.dropped == len(invalid & set(range(len(stream.payloads))))


def test_invalid_message_closes_1007() -> None:
    good = text_frame("good", mask=True)
    parts = raw_frame(Opcode.TEXT, b"ba", fin=False, mask=True) + raw_frame(
        Opcode.CONT, b"d", mask=True
    )
    pump = Pump(StreamPolicy(from_client=True, allowed=True, validator=lambda _op, p: p != b"bad"))
    assert pump.receive(good + parts[:5]) == [Forward(good)]
    assert pump.receive(parts[5:] + good) == [Close(1007, "message failed validation")]


def test_close_inside_a_held_message_drops_the_fragments() -> None:
    first = raw_frame(Opcode.TEXT, b"part", fin=False, mask=True)
    close = close_frame(1000, "", mask=True)
    pump = Pump(StreamPolicy(from_client=True, allowed=True, validator=lambda _op, _p: True))
    assert pump.receive(first) == []
    assert pump.receive(close) == [Forward(close), CloseSeen(1000, "")]
    assert pump.stats.dropped == 1


def test_validator_refuses_compression() -> None:
    with pytest.raises(RelayError):
        StreamPolicy(
            from_client=True, allowed=True, validator=lambda _o, _p: True, deflate=Compression()
        )


@pytest.mark.parametrize("field", ["on_wrong_direction", "on_throttle", "on_invalid"])
def test_unknown_modes_are_refused(field: str) -> None:
    with pytest.raises(ValueError, match="ignore"):
        StreamPolicy(from_client=True, allowed=True, **{field: "ignore"})


def test_modes_are_enums_and_take_the_cli_words() -> None:
    policy = StreamPolicy(
        from_client=True, allowed=True, on_wrong_direction="drop", on_invalid="drop"
    )
    assert policy.on_wrong_direction is OnWrongDirection.DROP
    assert policy.on_throttle is OnThrottle.REPLY
    assert policy.on_invalid is OnInvalid.DROP
    config = RelayConfig(on_throttle="close")
    assert config.on_throttle is OnThrottle.CLOSE
    assert config.on_wrong_direction is OnWrongDirection.CLOSE
    with pytest.raises(ValueError, match="ignore"):
        RelayConfig(on_invalid="ignore")


# --- closing ------------------------------------------------------------------------------


@pytest.mark.parametrize("report", [False, True])
@pytest.mark.parametrize("step", [1, 2, 5, 1000])
def test_close_frame_is_forwarded_then_the_rest_ignored(report: bool, step: int) -> None:
    message = text_frame("last words", mask=False)
    close = close_frame(4000, "done", mask=False)
    data = message + close + text_frame("after", mask=False)
    pump = Pump(
        StreamPolicy(from_client=False, allowed=True, quota=ListQuota(set()) if report else None)
    )
    actions = run(pump, [data[i : i + step] for i in range(0, len(data), step)])
    assert actions[-1] == CloseSeen(4000, "done")
    assert forwarded(actions) == message + close
    assert pump.receive(message) == []


@pytest.mark.parametrize("report", [False, True])
@pytest.mark.parametrize(
    ("payload", "code"),
    [(b"\x03", 1002), ((1005).to_bytes(2, "big"), 1002), (b"\x03\xe8\xc3", 1007)],
)
def test_bad_close_payload_closes_without_forwarding_it(
    report: bool, payload: bytes, code: int
) -> None:
    message = text_frame("m", mask=True)
    pump = Pump(
        StreamPolicy(from_client=True, allowed=True, quota=ListQuota(set()) if report else None)
    )
    actions = pump.receive(message + raw_frame(Opcode.CLOSE, payload, mask=True))
    assert actions[0] == Forward(message)
    assert isinstance(actions[1], Close)
    assert actions[1].code == code
    assert len(actions) == 2


@pytest.mark.parametrize("report", [False, True])
def test_protocol_violation_becomes_close_after_the_good_frames(report: bool) -> None:
    good = text_frame("fine", mask=True)
    pump = Pump(
        StreamPolicy(from_client=True, allowed=True, quota=ListQuota(set()) if report else None)
    )
    assert pump.receive(good + good + text_frame("bare", mask=False)) == [
        Forward(good + good),
        Close(1002, "unmasked frame from the client"),
    ]
    assert pump.receive(good) == []


# --- garbage ------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=400),
    CUTS,
    st.booleans(),
    st.booleans(),
    st.sampled_from(["plain", "drop", "quota", "validator", "limit"]),
)
def test_garbage_only_yields_actions(
    data: bytes, cuts: list[int], from_client: bool, extensions: bool, kind: str
) -> None:
    options: dict[str, object] = {"allowed": kind != "drop", "on_wrong_direction": "drop"}
    if kind == "quota":
        options["quota"] = ListQuota({0, 2})
    if kind == "validator":
        options["validator"] = lambda _o, p: len(p) % 2 == 0
        options["on_invalid"] = "drop"
    else:
        options["deflate"] = Compression() if extensions else None
    if kind == "limit":
        options["max_message_size"] = 50
    pump = Pump(StreamPolicy(from_client=from_client, **options))  # type: ignore[arg-type]
    actions = run(pump, cut(data, cuts))
    ends = [i for i, a in enumerate(actions) if isinstance(a, Close | CloseSeen)]
    assert ends in ([], [len(actions) - 1])
    assert len(forwarded(actions)) <= len(data)
    if ends and isinstance(actions[-1], Close):
        assert pump.at_frame_boundary()  # a close frame may follow what was forwarded
    if kind == "plain" and not ends:  # all of it but an incomplete header or close frame
        assert data.startswith(forwarded(actions))
        assert len(data) - len(forwarded(actions)) <= MAX_HEADER + 125


# --- a policy updated in the middle of the stream (reload) ---------------------------------

UPDATE_KINDS = ["plain", "drop", "validator"]


def update_policy(stream: Stream, kind: str) -> StreamPolicy:
    if kind == "drop":
        return policy(stream, allowed=False, on_wrong_direction="drop")
    if kind == "validator":
        return policy(
            stream, allowed=True, validator=lambda _o, p: len(p) % 2 == 0, on_invalid="drop"
        )
    return policy(stream, allowed=True)


@settings(max_examples=300, deadline=None)
@given(
    streams(),
    CUTS,
    st.integers(0, 2**20),
    st.sampled_from(UPDATE_KINDS),
    st.sampled_from(UPDATE_KINDS),
)
def test_an_updated_policy_governs_the_messages_that_start_after_it(
    stream: Stream, cuts: list[int], at: int, before: str, after: str
) -> None:
    """Whatever the chunks and wherever the update falls (inside a header, a payload, a
    fragmented message, a control frame), a message that began before it ends under the old
    policy and every message that begins after it follows the new one."""
    data = stream.data
    at %= len(data) + 1
    starts: dict[int, int] = {}  # message -> stream offset of its first frame
    offset = 0
    for frame in stream.frames:
        if frame.message is not None:
            starts.setdefault(frame.message, offset)
        offset += len(frame.data)
    chunks = cut(data, [*cuts, at])
    pump = Pump(update_policy(stream, before))
    new = update_policy(stream, after)
    actions: list[Action] = []
    fed = 0
    for chunk in chunks:
        if fed == at:
            pump.update(new)
        actions += [Forward(chunk)] if pump.forward_whole(chunk) else pump.receive(chunk)
        fed += len(chunk)
    if fed == at:
        pump.update(new)
    expected = expected_under(stream, lambda m: before if starts[m] < at else after, even(stream))
    assert forwarded(actions) == expected
    assert not any(isinstance(a, (Close, CloseSeen)) for a in actions)
    assert pump.stats.bytes == len(data)
    assert pump.stats.messages == len(stream.payloads)
    # once the stream rests between messages, the new policy is the pump's
    assert pump.policy is new
    later = text_frame("x", mask=stream.masked)  # odd length: the validator drops it
    assert forwarded(pump.receive(later)) == (later if after == "plain" else b"")


def test_an_update_between_messages_applies_to_the_next_one() -> None:
    pump = Pump(StreamPolicy(from_client=True, allowed=True))
    first = text_frame("first", mask=True)
    assert pump.receive(first) == [Forward(first)]
    pump.update(StreamPolicy(from_client=True, allowed=False))
    assert pump.receive(text_frame("second", mask=True)) == [
        Close(1008, "topic does not allow publish")
    ]


def test_a_fragmented_message_ends_under_the_policy_it_began_with() -> None:
    head = raw_frame(Opcode.TEXT, b"par", fin=False, mask=True)
    ping = raw_frame(Opcode.PING, b"p", mask=True)
    tail = raw_frame(Opcode.CONT, b"ts", fin=True, mask=True)
    nxt = text_frame("next", mask=True)
    quota = ListQuota(set())
    pump = Pump(StreamPolicy(from_client=True, allowed=True, quota=quota))
    assert forwarded(pump.receive(head)) == head
    pump.update(StreamPolicy(from_client=True, allowed=False, on_wrong_direction="drop"))
    assert pump.policy.allowed  # the message in progress is still the old policy's
    assert forwarded(pump.receive(ping + tail + nxt)) == ping + tail
    assert not pump.policy.allowed
    assert pump.stats.dropped == 1
    assert len(quota.calls) == 1  # the new policy has no quota


def test_a_quota_can_be_swapped_in_and_out() -> None:
    message = text_frame("m", mask=True)
    pump = Pump(StreamPolicy(from_client=True, allowed=True))
    pump.update(StreamPolicy(from_client=True, allowed=True, quota=ListQuota({0})))
    assert pump.receive(message) == [Reply(THROTTLED)]
    pump.update(StreamPolicy(from_client=True, allowed=True))
    assert pump.receive(message) == [Forward(message)]


@pytest.mark.parametrize(
    "field", [{"from_client": False}, {"deflate": Compression()}, {"max_message_size": 10}]
)
def test_an_update_keeps_direction_compression_and_size_limit(field: dict[str, object]) -> None:
    pump = Pump(StreamPolicy(from_client=True, allowed=True))
    options: dict[str, object] = {"from_client": True, "allowed": True, **field}
    with pytest.raises(RelayError, match="cannot change"):
        pump.update(StreamPolicy(**options))  # type: ignore[arg-type]


def test_an_update_after_a_close_changes_nothing() -> None:
    pump = Pump(StreamPolicy(from_client=True, allowed=True))
    bye = close_frame(1000, "bye", mask=True)
    assert pump.receive(bye)[-1] == CloseSeen(1000, "bye")
    pump.update(StreamPolicy(from_client=True, allowed=False))
    assert pump.receive(text_frame("late", mask=True)) == []
