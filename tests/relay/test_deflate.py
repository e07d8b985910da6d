"""permessage-deflate: the agreement a backend answers, the offer the relay forwards, and the
size limit held against what compressed messages inflate to, with frames compressed by
websockets' own permessage-deflate (the encoder real clients and backends use)."""

from __future__ import annotations

import itertools
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame
from websockets.frames import Opcode as WsOpcode
from websockets.streams import StreamReader

from asyncapi_gw.relay.deflate import Compression, Inflater
from asyncapi_gw.relay.frames import FrameEvent, FrameScanner, ProtocolViolation
from asyncapi_gw.relay.handshake import deflate_agreement, deflate_offer
from asyncapi_gw.relay.quota import ConnectionQuota, Quota
from asyncapi_gw.relay.stream import Close, Forward, Pump, StreamPolicy


def test_agreement_reads_each_side_s_window_and_context_takeover() -> None:
    agreement = deflate_agreement(
        "permessage-deflate; server_max_window_bits=12; client_max_window_bits=10; "
        "server_no_context_takeover"
    )
    assert agreement.backend == Compression(12, context_takeover=False)
    assert agreement.client == Compression(10, context_takeover=True)
    assert deflate_agreement("permessage-deflate").client == Compression(15, True)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("x-webkit-deflate-frame", "were not offered"),
        ("permessage-deflate, permessage-deflate", "were not offered"),
        ("permessage-deflate; server_max_window_bits=16", "between 8 and 15"),
        ("permessage-deflate; client_max_window_bits", "invalid"),  # a value in an answer
        ("permessage-deflate; server_no_context_takeover=1", "invalid"),
        ("permessage-deflate; mystery", "unknown"),
        ("permessage-deflate; client_no_context_takeover; client_no_context_takeover", "repeated"),
        ("permessage-deflate;;", "unreadable"),
    ],
)
def test_agreement_refuses_what_the_relay_cannot_follow(header: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        deflate_agreement(header)


def test_client_takeover_can_be_turned_off_in_the_client_s_answer() -> None:
    agreement = deflate_agreement("permessage-deflate; client_max_window_bits=12")
    plain = agreement.without_client_takeover()
    assert plain.client == Compression(12, context_takeover=False)
    assert deflate_agreement(plain.header) == plain
    assert plain.without_client_takeover() is plain


def test_the_backend_is_offered_permessage_deflate_only() -> None:
    assert deflate_offer(["permessage-deflate; client_max_window_bits"]) == (
        "permessage-deflate; client_max_window_bits"
    )
    assert deflate_offer(["x-webkit-deflate-frame", "permessage-deflate, foo; a=1"]) == (
        "permessage-deflate"
    )
    assert deflate_offer(["x-webkit-deflate-frame"]) is None
    assert deflate_offer([";;"]) is None
    assert deflate_offer([]) is None


def test_a_bomb_is_stopped_without_inflating_it() -> None:
    compressor = zlib.compressobj(wbits=-15)
    bomb = compressor.compress(bytes(20 << 20)) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert len(bomb) < 25_000  # 20 MiB of zeros in about 20 KB
    inflater = Inflater(Compression())
    assert not inflater.feed(bomb, 64 * 1024)
    assert inflater.size <= 64 * 1024 * 2  # it stopped at the first piece past the limit


def test_inflated_sizes_are_exact_at_the_limit() -> None:
    for size in (0, 1, 1000, 65536, 65537, 200_000):
        compressor = zlib.compressobj(wbits=-15)
        data = compressor.compress(b"ab" * (size // 2) + b"c" * (size % 2))
        data += compressor.flush(zlib.Z_SYNC_FLUSH)[:-4]
        for limit in (size - 1, size):
            if limit < 0:
                continue
            inflater = Inflater(Compression())
            fits = inflater.feed(data, limit, last=True)
            assert fits == (size <= limit), (size, limit)


# -- the scanner against websockets' encoder ---------------------------------------------------


def _frames(
    messages: list[tuple[bytes, int]],
    *,
    masked: bool,
    takeover: bool,
    bits: int,
    compressed: list[bool],
) -> tuple[bytes, list[int]]:
    """The wire bytes of ``messages`` (payload, fragment count), each compressed by
    permessage-deflate (or sent uncompressed when ``compressed`` says so), and each message's
    stream offset."""
    extension = PerMessageDeflate(
        remote_no_context_takeover=False,
        local_no_context_takeover=not takeover,
        remote_max_window_bits=15,
        local_max_window_bits=bits,
    )
    wire = bytearray()
    starts = []
    for (payload, pieces), compress in zip(messages, compressed, strict=True):
        starts.append(len(wire))
        step = max(1, -(-len(payload) // pieces))
        parts = [payload[i : i + step] for i in range(0, len(payload), step)] or [b""]
        for n, part in enumerate(parts):
            frame = Frame(WsOpcode.CONT if n else WsOpcode.TEXT, part, fin=n == len(parts) - 1)
            wire += frame.serialize(mask=masked, extensions=[extension] if compress else None)
    return bytes(wire), starts


MESSAGES = st.lists(
    st.tuples(
        st.integers(0, 3000).map(lambda n: (b"abcabcxyz" * 400)[:n]),
        st.integers(1, 4),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(MESSAGES, st.integers(9, 15), st.lists(st.integers(0, 40_000), max_size=8), st.data())
def test_the_limit_holds_on_the_inflated_size(
    messages: list[tuple[bytes, int]], bits: int, cuts: list[int], data: st.DataObject
) -> None:
    masked, takeover = data.draw(st.booleans()), data.draw(st.booleans())
    limit = 2000
    compressed = data.draw(st.lists(st.booleans(), min_size=len(messages), max_size=len(messages)))
    wire, starts = _frames(
        messages, masked=masked, takeover=takeover, bits=bits, compressed=compressed
    )
    scanner = FrameScanner(
        masked=masked, deflate=Compression(bits, takeover), max_message_size=limit, report=True
    )
    events: list[FrameEvent] = []
    points = sorted({c % (len(wire) + 1) for c in cuts} | {0, len(wire)})
    violation = None
    try:
        for a, b in itertools.pairwise(points):
            scanner.feed(wire[a:b], events)
    except ProtocolViolation as exc:
        violation = exc
    too_big = [i for i, (payload, _) in enumerate(messages) if len(payload) > limit]
    if not too_big:
        assert violation is None
        assert scanner.messages == len(messages)
        return
    assert violation is not None
    assert violation.code == 1009
    first = too_big[0]
    # refused within the first message over the limit, and nothing of its refused frame shown
    assert starts[first] <= violation.offset < [*starts, len(wire)][first + 1]
    # no frame after the refused one is shown (the refused one is, when its header came in an
    # earlier piece than the bytes that took it over the limit)
    assert all(e.start <= violation.offset for e in events)


def test_invalid_compressed_data_is_a_protocol_error() -> None:
    wire = bytes([0xC1, 17]) + b"\xff\xff\xff\xff not deflate"  # FIN, RSV1, text
    scanner = FrameScanner(masked=False, deflate=Compression(), max_message_size=100)
    with pytest.raises(ProtocolViolation) as caught:
        scanner.feed(wire, [])
    assert caught.value.code == 1002


def test_without_a_limit_compressed_messages_pass_uninflated() -> None:
    wire, _ = _frames([(b"z" * 5000, 1)], masked=True, takeover=True, bits=15, compressed=[True])
    scanner = FrameScanner(masked=True, deflate=Compression())
    scanner.feed(wire, [])
    assert scanner.messages == 1


def _delivered(data: bytes, *, masked: bool, takeover: bool, bits: int) -> list[int]:
    """The sizes of the whole messages a websockets peer inflates from ``data`` (a frame cut
    short at the end is not delivered)."""
    decoder = PerMessageDeflate(
        remote_no_context_takeover=not takeover,
        local_no_context_takeover=False,
        remote_max_window_bits=bits,
        local_max_window_bits=15,
    )
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    sizes: list[int] = []
    size = 0
    while True:
        parser = Frame.parse(reader.read_exact, mask=masked, extensions=[decoder])
        try:
            next(parser)
        except StopIteration as stop:
            frame: Frame = stop.value
        except EOFError:
            break
        size += len(frame.data)
        if frame.fin:
            sizes.append(size)
            size = 0
    return sizes


@settings(max_examples=300, deadline=None)
@given(
    MESSAGES,
    st.booleans(),
    st.booleans(),
    st.lists(st.integers(0, 40_000), max_size=8),
    st.sampled_from(["plain", "quota"]),
)
def test_no_message_over_the_limit_reaches_the_peer(
    messages: list[tuple[bytes, int]],
    masked: bool,
    takeover: bool,
    cuts: list[int],
    kind: str,
) -> None:
    """What the relay forwards never holds a whole message that inflates past the limit, and
    every message before the first such one arrives."""
    limit, bits = 2000, 12
    wire, _ = _frames(
        messages, masked=masked, takeover=takeover, bits=bits, compressed=[True] * len(messages)
    )
    quota = ConnectionQuota(Quota(1000, 60.0), Quota(1000, 60.0)) if kind == "quota" else None
    pump = Pump(
        StreamPolicy(
            from_client=masked,
            allowed=True,
            max_message_size=limit,
            deflate=Compression(bits, takeover),
            quota=quota,
        ),
        clock=lambda: 0.0,
    )
    points = sorted({c % (len(wire) + 1) for c in cuts} | {0, len(wire)})
    actions = []
    for a, b in itertools.pairwise(points):
        chunk = wire[a:b]
        actions += [Forward(chunk)] if pump.forward_whole(chunk) else pump.receive(chunk)
    out = b"".join(a.data for a in actions if isinstance(a, Forward))
    sizes = _delivered(out, masked=masked, takeover=takeover, bits=bits)
    assert all(size <= limit for size in sizes)
    fitting = list(itertools.takewhile(lambda m: len(m[0]) <= limit, messages))
    assert sizes == [len(payload) for payload, _ in fitting]
    closes = [a for a in actions if isinstance(a, Close)]
    assert [c.code for c in closes] == ([1009] if len(fitting) < len(messages) else [])


class _CountingInflater(Inflater):
    __slots__ = ("ended",)

    def __init__(self, compression: Compression) -> None:
        super().__init__(compression)
        self.ended = 0

    def feed(self, data: bytes, limit: int, *, last: bool = False) -> bool:
        self.ended += last
        return super().feed(data, limit, last=last)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 3000).map(lambda n: (b"abcabcxyz" * 400)[:n]), min_size=1, max_size=8),
    st.booleans(),
    st.integers(0, 4),
)
def test_throttled_messages_are_inflated_once(
    messages: list[bytes], masked: bool, room: int
) -> None:
    """A message the quota refuses after the shortcut inflated it is not inflated again (that
    would cost twice and feed the sender's context twice)."""
    limit, bits = 2000, 12
    frames = [
        _frames([(m, 1)], masked=masked, takeover=False, bits=bits, compressed=[True])[0]
        for m in messages
    ]  # each frame compressed alone: as with client_no_context_takeover on a throttled API
    pump = Pump(
        StreamPolicy(
            from_client=masked,
            allowed=True,
            max_message_size=limit,
            deflate=Compression(bits, context_takeover=False),
            quota=ConnectionQuota(Quota(room + 1, 60.0), Quota(room + 1, 60.0)),
        ),
        clock=lambda: 0.0,
    )
    inflater = pump._scanner._inflater = _CountingInflater(Compression(bits, False))
    actions = []
    for frame in frames:  # one chunk per frame: the shell's shortcut takes each first
        actions += [Forward(frame)] if pump.forward_whole(frame) else pump.receive(frame)
    closes = [a.code for a in actions if isinstance(a, Close)]
    big = [i for i, m in enumerate(messages) if len(m) > limit]
    assert closes == ([1009] if big else [])
    assert inflater.ended == (big[0] + 1 if big else len(messages))
    delivered = sum(1 for a in actions if isinstance(a, Forward))
    assert delivered == min(room + 1, big[0] if big else len(messages))
