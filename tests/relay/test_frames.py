"""The frame scanner, frame builders and close payloads (RFC 6455), checked against websockets."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from raw_frames import raw_frame
from websockets.frames import Close as WsClose
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode as WsOpcode
from websockets.streams import StreamReader

from asyncapi_gw.relay.deflate import Compression
from asyncapi_gw.relay.frames import (
    FrameEvent,
    FrameScanner,
    Opcode,
    ProtocolViolation,
    close_frame,
    parse_close_payload,
    text_frame,
)

LENGTHS = st.one_of(
    st.integers(0, 300),
    st.sampled_from([125, 126, 127, 65535, 65536]),
)


def parse_with_websockets(data: bytes, *, masked: bool) -> WsFrame:
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = WsFrame.parse(reader.read_exact, mask=masked)
    with pytest.raises(StopIteration) as stop:
        next(parser)
    frame: WsFrame = stop.value.value
    assert reader.at_eof()
    return frame


def cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def scan(
    chunks: list[bytes],
    *,
    masked: bool,
    collect: bool = False,
    deflate: Compression | None = None,
    max_message_size: int | None = None,
) -> tuple[FrameScanner, list[FrameEvent]]:
    scanner = FrameScanner(
        masked=masked,
        deflate=deflate,
        max_message_size=max_message_size,
        report=True,
        collect=collect,
    )
    events: list[FrameEvent] = []
    for chunk in chunks:
        scanner.feed(chunk, events)
    return scanner, events


def violation(
    data: bytes, *, masked: bool, max_message_size: int | None = None
) -> ProtocolViolation:
    """The violation found in ``data``, fed byte by byte and whole (same outcome)."""
    found = []
    for chunks in ([data], [data[i : i + 1] for i in range(len(data))]):
        with pytest.raises(ProtocolViolation) as info:
            scan(chunks, masked=masked, max_message_size=max_message_size)
        found.append((info.value.code, info.value.reason, info.value.offset))
    assert found[0] == found[1]
    return info.value


# --- builders ---------------------------------------------------------------------------


@pytest.mark.parametrize("masked", [True, False])
@pytest.mark.parametrize("text", ["", "hé", "x" * 125, "y" * 126, "z" * 65535, "w" * 65536])
def test_text_frame_parses_with_websockets(text: str, masked: bool) -> None:
    frame = parse_with_websockets(text_frame(text, mask=masked), masked=masked)
    assert frame.opcode is WsOpcode.TEXT
    assert frame.fin
    assert bytes(frame.data).decode() == text


@pytest.mark.parametrize("masked", [True, False])
def test_close_frame_parses_with_websockets(masked: bool) -> None:
    frame = parse_with_websockets(close_frame(4001, "token expired", mask=masked), masked=masked)
    assert frame.opcode is WsOpcode.CLOSE
    close = WsClose.parse(frame.data)
    assert (close.code, close.reason) == (4001, "token expired")


@given(st.text(max_size=200), st.booleans())
def test_close_reason_is_cut_on_a_character_boundary(reason: str, masked: bool) -> None:
    frame = parse_with_websockets(close_frame(1000, reason, mask=masked), masked=masked)
    close = WsClose.parse(frame.data)  # websockets rejects bad UTF-8 and payloads over 125
    assert len(frame.data) <= 125
    assert reason.startswith(close.reason)
    assert len(reason.encode()) <= 123 or len(close.reason.encode()) > 119


def test_masked_frames_use_fresh_keys() -> None:
    assert text_frame("same", mask=True) != text_frame("same", mask=True)


# --- close payloads -----------------------------------------------------------------------


def test_close_payload_valid_and_empty() -> None:
    assert parse_close_payload(b"") == (None, "")
    assert parse_close_payload((1000).to_bytes(2, "big")) == (1000, "")
    assert parse_close_payload((4999).to_bytes(2, "big") + "é".encode()) == (4999, "é")
    assert parse_close_payload((1014).to_bytes(2, "big") + b"gw") == (1014, "gw")


@pytest.mark.parametrize(
    "payload",
    [b"\x03", *(c.to_bytes(2, "big") for c in (0, 999, 1004, 1005, 1006, 1015, 2999, 5000))],
)
def test_close_payload_protocol_errors(payload: bytes) -> None:
    with pytest.raises(ProtocolViolation) as info:
        parse_close_payload(payload)
    assert info.value.code == 1002


def test_close_payload_bad_utf8_reason() -> None:
    with pytest.raises(ProtocolViolation) as info:
        parse_close_payload(b"\x03\xe8\xff\xfe")
    assert info.value.code == 1007


# --- scanner: valid streams ---------------------------------------------------------------


@st.composite
def streams(draw: st.DrawFn) -> tuple[bool, bytes, list[tuple[int, int, int, bool]], list[bytes]]:
    """A direction's bytes, each frame's (start, end, opcode, fin) and each message's payload."""
    masked = draw(st.booleans())
    rng = random.Random(draw(st.integers(0, 2**32)))
    data = b""
    frames: list[tuple[int, int, int, bool]] = []
    messages: list[bytes] = []

    def put(opcode: int, payload: bytes, fin: bool) -> None:
        nonlocal data
        frame = raw_frame(opcode, payload, fin=fin, mask=masked)
        frames.append((len(data), len(data) + len(frame), opcode, fin))
        data += frame

    for _ in range(draw(st.integers(0, 5))):
        opcode = draw(st.sampled_from([Opcode.TEXT, Opcode.BINARY]))
        parts = [rng.randbytes(draw(LENGTHS)) for _ in range(draw(st.integers(1, 3)))]
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            put(Opcode.CONT if index else opcode, part, last)
            if draw(st.booleans()):
                put(draw(st.sampled_from([Opcode.PING, Opcode.PONG])), rng.randbytes(5), True)
        messages.append(b"".join(parts))
    return masked, data, frames, messages


@settings(max_examples=150, deadline=None)
@given(streams(), st.lists(st.integers(0, 2**20), max_size=12))
def test_scanner_reports_every_frame_across_any_chunking(
    stream: tuple[bool, bytes, list[tuple[int, int, int, bool]], list[bytes]], cuts: list[int]
) -> None:
    masked, data, frames, messages = stream
    scanner, events = scan(cut(data, cuts), masked=masked, collect=True)
    headers = [e[:4] for e in events if e.payload is None]
    assert headers == frames
    assert [e.payload for e in events if e.payload is not None] == messages
    assert scanner.frames == len(frames)
    assert scanner.messages == len(messages)
    assert scanner.offset == len(data)
    assert scanner.at_frame_boundary
    assert not scanner.in_message


@settings(max_examples=60, deadline=None)
@given(streams(), st.lists(st.integers(0, 2**20), max_size=12))
def test_scanner_without_report_only_counts(
    stream: tuple[bool, bytes, list[tuple[int, int, int, bool]], list[bytes]], cuts: list[int]
) -> None:
    masked, data, frames, messages = stream
    scanner = FrameScanner(masked=masked)
    events: list[FrameEvent] = []
    for chunk in cut(data, cuts):
        scanner.feed(chunk, events)
    assert events == []
    assert (scanner.frames, scanner.messages) == (len(frames), len(messages))


def test_fragmented_message_is_tracked() -> None:
    scanner = FrameScanner(masked=False)
    events: list[FrameEvent] = []
    scanner.feed(raw_frame(Opcode.BINARY, b"abc", fin=False, mask=False), events)
    assert scanner.in_message
    assert (scanner.message_opcode, scanner.message_size) == (Opcode.BINARY, 3)
    scanner.feed(raw_frame(Opcode.PING, b"", mask=False), events)
    scanner.feed(raw_frame(Opcode.CONT, b"de", fin=False, mask=False)[:3], events)
    assert not scanner.at_frame_boundary
    scanner.feed(b"e", events)
    assert scanner.message_size == 5
    scanner.feed(raw_frame(Opcode.CONT, b"", mask=False), events)
    assert not scanner.in_message
    assert scanner.at_frame_boundary


def test_close_frame_is_collected_unmasked_and_ends_the_scan() -> None:
    close = close_frame(1001, "bye", mask=True)
    data = text_frame("a", mask=True) + close + b"\xff\xff garbage after the close"
    for step in (1, 3, len(data)):
        scanner = FrameScanner(masked=True)
        events: list[FrameEvent] = []
        for i in range(0, len(data), step):
            scanner.feed(data[i : i + step], events)
        start = len(text_frame("a", mask=True))
        assert events == [FrameEvent(start, start + len(close), Opcode.CLOSE, True, b"\x03\xe9bye")]
        assert scanner.closed


def test_permessage_deflate_lets_rsv1_through_on_first_frames_only() -> None:
    data = raw_frame(Opcode.TEXT, b"compressed", mask=True, rsv=4)
    _, events = scan([data], masked=True, deflate=Compression())
    assert [e.opcode for e in events] == [Opcode.TEXT]
    for opcode, fin, rsv, reason in [
        (Opcode.TEXT, True, 2, "RSV2 or RSV3"),
        (Opcode.TEXT, True, 1, "RSV2 or RSV3"),
        (Opcode.PING, True, 4, "RSV1 set on a continuation or control frame"),
    ]:
        bad = raw_frame(opcode, b"x", fin=fin, mask=True, rsv=rsv)
        with pytest.raises(ProtocolViolation, match=reason):
            scan([bad], masked=True, deflate=Compression())
    first = raw_frame(Opcode.TEXT, b"a", fin=False, mask=True, rsv=4)
    continued = raw_frame(Opcode.CONT, b"b", mask=True, rsv=4)
    with pytest.raises(ProtocolViolation, match="RSV1 set on a continuation"):
        scan([first + continued], masked=True, deflate=Compression())


def test_collected_message_is_unmasked_per_frame() -> None:
    data = (
        raw_frame(Opcode.TEXT, b"hel", fin=False, mask=True)
        + raw_frame(Opcode.PONG, b"p", mask=True)
        + raw_frame(Opcode.CONT, b"lo", mask=True)
    )
    _, events = scan([data[i : i + 1] for i in range(len(data))], masked=True, collect=True)
    assert events[-1] == FrameEvent(len(data) - 2 - 4 - 2, len(data), Opcode.TEXT, True, b"hello")


# --- scanner: violations ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "masked", "reason"),
    [
        (raw_frame(Opcode.TEXT, b"x", mask=True, rsv=4), True, "reserved bits"),
        (raw_frame(Opcode.TEXT, b"x", mask=False, rsv=1), False, "reserved bits"),
        (raw_frame(3, b"x", mask=True), True, "unknown opcode 3"),
        (raw_frame(0xB, b"", mask=False), False, "unknown opcode 11"),
        (raw_frame(Opcode.PING, b"x", fin=False, mask=True), True, "fragmented control"),
        (raw_frame(Opcode.CLOSE, b"", fin=False, mask=False), False, "fragmented control"),
        (raw_frame(Opcode.PING, b"x" * 126, mask=True), True, "over 125"),
        (raw_frame(Opcode.TEXT, b"x", mask=False), True, "unmasked frame from the client"),
        (raw_frame(Opcode.TEXT, b"x", mask=True), False, "masked frame"),
        (raw_frame(Opcode.CONT, b"x", mask=True), True, "continuation frame outside"),
        (
            raw_frame(Opcode.TEXT, b"x", fin=False, mask=True)
            + raw_frame(Opcode.BINARY, b"", mask=True),
            True,
            "new data frame inside",
        ),
        (b"\x82\xff" + (2**63).to_bytes(8, "big") + b"mask", True, "MSB"),
    ],
)
def test_violations_are_protocol_errors(data: bytes, masked: bool, reason: str) -> None:
    exc = violation(data, masked=masked)
    assert exc.code == 1002
    assert reason in exc.reason


def test_violation_offset_is_the_offending_frame() -> None:
    good = raw_frame(Opcode.TEXT, b"ok", mask=True)
    exc = violation(good + good + raw_frame(Opcode.TEXT, b"x", mask=False), masked=True)
    assert exc.offset == 2 * len(good)


def test_size_limit_counts_all_fragments() -> None:
    first = raw_frame(Opcode.TEXT, b"x" * 60, fin=False, mask=True)
    second = raw_frame(Opcode.CONT, b"x" * 40, fin=False, mask=True)
    last = raw_frame(Opcode.CONT, b"x" * 1, mask=True)
    _, events = scan([first + second], masked=True, max_message_size=100)
    assert len(events) == 2
    exc = violation(first + second + last, masked=True, max_message_size=100)
    assert (exc.code, exc.offset) == (1009, len(first) + len(second))


def test_size_limit_refuses_from_the_header_alone() -> None:
    scanner = FrameScanner(masked=False, max_message_size=1 << 20)
    events: list[FrameEvent] = []
    with pytest.raises(ProtocolViolation) as info:
        scanner.feed(b"\x82\x7f" + (1 << 30).to_bytes(8, "big"), events)
    assert info.value.code == 1009


def test_size_limit_does_not_apply_to_control_frames() -> None:
    _, events = scan(
        [raw_frame(Opcode.PING, b"x" * 100, mask=False)], masked=False, max_message_size=10
    )
    assert len(events) == 1
