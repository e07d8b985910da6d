"""Incremental WebSocket frame scanning over raw bytes (RFC 6455, section 5).

The relay forwards frames as the bytes it received.  :class:`FrameScanner` reads only the
frame headers, checks them and skips payloads by arithmetic; it collects a payload only when
asked to (close frames always, data messages for a validator), and reads the payloads of
compressed messages (permessage-deflate, RFC 7692) only to measure what they inflate to.
No I/O happens here.
"""

from __future__ import annotations

import enum
import os
import sys
import zlib
from typing import NamedTuple, cast

from asyncapi_gw.relay.closecode import CloseCode, is_sendable
from asyncapi_gw.relay.deflate import Compression, Inflater

__all__ = [
    "MAX_HEADER",
    "FrameEvent",
    "FrameScanner",
    "Opcode",
    "ProtocolViolation",
    "close_frame",
    "parse_close_payload",
    "text_frame",
    "unmask",
]

MAX_HEADER = 14
"""The longest frame header: 2 bytes, 8 bytes of extended length and a 4-byte mask key."""


class Opcode(enum.IntEnum):
    CONT = 0
    TEXT = 1
    BINARY = 2
    CLOSE = 8
    PING = 9
    PONG = 10


class ProtocolViolation(Exception):  # noqa: N818 (the name the relay's shell codes against)
    """The peer broke the protocol; the relay answers with a close ``code``.

    ``offset`` is the stream offset of the first byte of the offending frame (``-1`` when
    the violation is not tied to a position, as in :func:`parse_close_payload`).
    """

    def __init__(self, code: int, reason: str, offset: int = -1) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason
        self.offset = offset


class FrameEvent(NamedTuple):
    """A frame seen by the scanner, in stream offsets (bytes since the first feed).

    With ``payload`` ``None`` the event reports a header (``report`` mode).  With a payload it
    reports a completed close frame (its unmasked payload), or, in ``collect`` mode, a
    completed data message: ``opcode`` is then the message's opcode, ``start`` the start of
    its last frame and ``payload`` the unmasked payload of all its frames.
    """

    start: int
    end: int
    opcode: int
    fin: bool
    payload: bytes | None


# Frame kinds, looked up from the first header byte and the "inside a message" state.
_INVALID = 0
_WHOLE = 1  # first frame of a message, FIN set
_FIRST = 2  # first frame of a fragmented message
_MIDDLE = 3  # continuation, FIN clear
_LAST = 4  # continuation, FIN set
_CONTROL = 5  # ping or pong
_CLOSE = 6

_CLOSE_REASON_MAX = 123


def _kind_table(*, in_message: bool, deflate: bool) -> bytes:
    table = bytearray(256)
    for b0 in range(256):
        fin = bool(b0 & 0x80)
        opcode = b0 & 0x0F
        rsv = b0 & 0x70
        # permessage-deflate: RSV1 marks a compressed message, on its first frame only
        if rsv and not (deflate and rsv == 0x40 and opcode in (Opcode.TEXT, Opcode.BINARY)):
            continue
        if opcode in (Opcode.TEXT, Opcode.BINARY) and not in_message:
            table[b0] = _WHOLE if fin else _FIRST
        elif opcode == Opcode.CONT and in_message:
            table[b0] = _LAST if fin else _MIDDLE
        elif opcode in (Opcode.PING, Opcode.PONG) and fin:
            table[b0] = _CONTROL
        elif opcode == Opcode.CLOSE and fin:
            table[b0] = _CLOSE
    return bytes(table)


# (outside a message, inside one) without and with permessage-deflate; shared by every scanner.
_TABLES = {
    deflate: (
        _kind_table(in_message=False, deflate=deflate),
        _kind_table(in_message=True, deflate=deflate),
    )
    for deflate in (False, True)
}


def unmask(payload: bytes, key: bytes) -> bytes:
    """XOR ``payload`` with the repeated 4-byte mask ``key`` (masking is its own inverse)."""
    n = len(payload)
    if not n:
        return b""
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


def _frame(opcode: Opcode, payload: bytes, *, mask: bool) -> bytes:
    n = len(payload)
    head = bytearray((0x80 | opcode,))
    bit = 0x80 if mask else 0
    if n < 126:
        head.append(bit | n)
    elif n < 65536:
        head.append(bit | 126)
        head += n.to_bytes(2, "big")
    else:
        head.append(bit | 127)
        head += n.to_bytes(8, "big")
    if not mask:
        return bytes(head) + payload
    key = os.urandom(4)
    return bytes(head) + key + unmask(payload, key)


def close_frame(code: int, reason: str = "", *, mask: bool) -> bytes:
    """A close frame; ``reason`` is cut to 123 bytes of UTF-8 without splitting a character.

    ``mask`` must be true for frames sent to the backend (the relay is its client).
    """
    raw = reason.encode()
    if len(raw) > _CLOSE_REASON_MAX:
        raw = raw[:_CLOSE_REASON_MAX].decode(errors="ignore").encode()
    return _frame(Opcode.CLOSE, code.to_bytes(2, "big") + raw, mask=mask)


def text_frame(text: str, *, mask: bool) -> bytes:
    """A single-frame text message."""
    return _frame(Opcode.TEXT, text.encode(), mask=mask)


def parse_close_payload(payload: bytes) -> tuple[int | None, str]:
    """The close code and reason of an unmasked close payload; ``(None, "")`` when empty."""
    if not payload:
        return None, ""
    if len(payload) == 1:
        raise ProtocolViolation(CloseCode.PROTOCOL_ERROR, "close frame with a 1-byte payload")
    code = int.from_bytes(payload[:2], "big")
    if not is_sendable(code):
        raise ProtocolViolation(CloseCode.PROTOCOL_ERROR, f"invalid close code {code}")
    try:
        reason = payload[2:].decode()
    except UnicodeDecodeError:
        raise ProtocolViolation(CloseCode.INVALID_DATA, "close reason is not valid UTF-8") from None
    return code, reason


class FrameScanner:
    """Reads the frames of one direction from raw bytes fed in chunks of any size.

    ``masked`` is the mask bit every frame must carry (true from the client).  ``deflate``
    (permessage-deflate negotiated: how this side compresses) lets RSV1 mark a message's first
    frame as compressed.  A data message whose payload (all fragments) exceeds
    ``max_message_size`` is refused with 1009 as soon as a header shows it; with ``deflate``,
    so is a compressed message as soon as its payload inflates past the limit (see
    :mod:`asyncapi_gw.relay.deflate`): the offending frame is not reported.  Data that does not
    inflate is refused with 1002.  ``report`` asks for an event per frame header; ``collect``
    asks for each data message's unmasked payload (not with ``deflate``).  Close frames are
    always collected and scanning stops after one.  Violations raise
    :class:`ProtocolViolation`; the events found before one are already in the caller's list.
    """

    __slots__ = (
        "_collect",
        "_compressed",
        "_counted",
        "_deflate",
        "_frame_fin",
        "_frame_opcode",
        "_frame_start",
        "_gathering",
        "_head",
        "_inflated",
        "_inflater",
        "_inflating",
        "_key",
        "_limit",
        "_mask_bit",
        "_message_payload",
        "_pending",
        "_pieces",
        "_pos",
        "_remaining",
        "_report",
        "_skimmed",
        "_tables",
        "closed",
        "frames",
        "in_message",
        "message_opcode",
        "message_size",
        "messages",
        "offset",
    )

    def __init__(
        self,
        *,
        masked: bool,
        deflate: Compression | None = None,
        max_message_size: int | None = None,
        report: bool = False,
        collect: bool = False,
    ) -> None:
        self._mask_bit = 0x80 if masked else 0
        self._deflate = deflate is not None
        self._limit = sys.maxsize if max_message_size is None else max_message_size
        self._report = report
        self._collect = collect
        self._tables = _TABLES[self._deflate]
        # Compressed messages are inflated (to count) when there is a limit to hold.
        self._inflater = None if deflate is None or max_message_size is None else Inflater(deflate)
        self._counted = 0x40 if self._inflater is not None else 0  # the RSV1 bit, or none
        self._compressed = False  # the current message is compressed and counted
        self._inflating = False  # the frame partly fed is inflated as its payload comes
        self._pos = 0  # payload bytes of that frame inflated so far (the mask's phase)
        self._inflated = False  # the next whole message was inflated by skim already
        self._pending: ProtocolViolation | None = None  # skim's refusal, for feed
        # What the last skim counted: bytes, frames, messages, the payload left before it, and
        # whether it inflated a message (for unskim).
        self._skimmed: tuple[int, int, int, int, bool] = (0, 0, 0, 0, False)
        self.offset = 0
        """Stream offset just past the bytes fed so far."""
        self.frames = 0
        self.messages = 0
        """Data messages started (counted at their first frame)."""
        self.in_message = False
        """Inside a fragmented message (its first frame seen, its last not yet)."""
        self.message_opcode = 0
        self.message_size = 0
        self.closed = False
        """A complete close frame was scanned; later bytes are ignored."""
        self._head = b""  # an incomplete header
        self._remaining = 0  # payload bytes of the current frame still to come
        # Collection of the current frame's payload (close frames, collected messages).
        self._gathering = False
        self._pieces: list[bytes] = []
        self._key = b""
        self._frame_start = 0
        self._frame_opcode = 0
        self._frame_fin = False
        self._message_payload: list[bytes] = []

    @property
    def at_frame_boundary(self) -> bool:
        """No frame is partly fed."""
        return not self._head and not self._remaining

    @property
    def payload_left(self) -> int:
        """Payload bytes of the frame being fed still to come (0 outside a payload)."""
        return self._remaining

    def reconfigure(self, *, report: bool, collect: bool) -> None:
        """Change ``report`` and ``collect`` between messages (a :class:`ValueError` inside
        one: its frames would be reported or collected only in part)."""
        if self.in_message or not self.at_frame_boundary:
            raise ValueError("a scanner is reconfigured between messages only")
        self._report = report
        self._collect = collect

    @property
    def unfinished_start(self) -> int:
        """The stream offset where an incomplete header, or a frame still being collected,
        begins at the end of the bytes fed; ``-1`` when the bytes fed end otherwise."""
        if self._head:
            return self.offset - len(self._head)
        return self._frame_start if self._gathering else -1

    def skim(self, data: bytes) -> int:
        """Count ``data`` as :meth:`feed` would, when it ends neither inside a header nor past
        a close frame and holds only what passes without an event: whole (unfragmented) data
        frames within the size limit, pings and pongs, and the rest of a frame's payload; then
        the number of data messages that start in it.  Else count nothing and ``-1``: the
        chunk goes to :meth:`feed`, which finds what else it holds (a violation among them).
        Nothing is collected or reported: the caller acts on the chunk as a whole.

        A compressed message is inflated here, when the chunk is exactly its one frame: when
        it inflates past the limit (or does not inflate), the answer is ``-1`` and the next
        :meth:`feed`, of this chunk, raises the violation.  :meth:`unskim` takes the count
        back."""
        if (
            self._head
            or self.in_message
            or self._gathering
            or self._inflating
            or self._collect
            or self.closed
            or self._inflated
            or self._pending is not None
        ):
            return -1
        n = len(data)
        i = self._remaining
        if i >= n:  # the middle of a payload
            self._skimmed = (n, 0, 0, i, False)
            self._remaining = i - n
            self.offset += n
            return 0
        whole, control = _WHOLE, _CONTROL
        table = self._tables[0]
        mask_bit = self._mask_bit
        key_size = 4 if mask_bit else 0
        limit = self._limit
        counted = self._counted
        frames = starts = 0
        opcode = length = 0
        compressed = False
        runs = True
        while i < n:
            if n - i < 2:
                return -1
            b0 = data[i]
            b1 = data[i + 1]
            if (b1 & 0x80) != mask_bit:
                return -1
            size = b1 & 0x7F
            if size < 126:
                head = 2 + key_size
            elif size == 126:
                if n - i < 4:
                    return -1
                size = (data[i + 2] << 8) | data[i + 3]
                head = 4 + key_size
            else:
                return -1  # 64 KiB or more: the full scan's per-frame cost is nothing to it
            if n - i < head:
                return -1
            kind = table[b0]
            if kind == whole:
                if size > limit:
                    return -1
                if b0 & counted:  # compressed, counted: only as a chunk of its own
                    if i or head + size != n:
                        return -1
                    compressed = True
                starts += 1
                opcode, length = b0, size
            elif kind != control or size > 125:
                return -1
            frames += 1
            step = head + size
            i += step
            if runs and n - i >= step:
                # A run of frames with this one's header (equal messages, as streams often
                # carry) is checked in C: each header byte, strided over the frames.
                last = i - step
                count = (n - i) // step
                end = i + count * step
                if (
                    data[i:end:step] == data[last : last + 1] * count
                    and data[i + 1 : end : step] == data[last + 1 : last + 2] * count
                    and (
                        head - key_size == 2
                        or (
                            data[i + 2 : end : step] == data[last + 2 : last + 3] * count
                            and data[i + 3 : end : step] == data[last + 3 : last + 4] * count
                        )
                    )
                ):
                    frames += count
                    if kind == whole:
                        starts += count
                    i = end
                else:
                    runs = False  # the headers vary: no more tries in this chunk
        if compressed:
            self._frame_start = self.offset
            self._key = data[head - 4 : head] if mask_bit else b""
            self._pos = 0
            try:
                self._inflate(data[head:], last=True)
            except ProtocolViolation as exc:
                self._pending = exc
                return -1
        self._skimmed = (n, frames, starts, self._remaining, compressed)
        self._remaining = i - n
        self.offset += n
        self.frames += frames
        if starts:
            self.messages += starts
            self.message_opcode = opcode & 0x0F
            self.message_size = length
        return starts

    def unskim(self) -> None:
        """Take back the count of the last :meth:`skim` (its messages were refused after all);
        a compressed message stays inflated: :meth:`feed` does not inflate it again.  The
        chunk then goes to :meth:`feed`."""
        n, frames, starts, remaining, compressed = self._skimmed
        self.offset -= n
        self.frames -= frames
        self.messages -= starts
        self._remaining = remaining
        self._inflated = compressed

    def take_close(self, data: bytes) -> bytes | None:
        """When ``data`` is exactly one whole close frame at a frame boundary outside a
        message, count it as :meth:`feed` would and return its unmasked payload (instead of
        reporting it as an event); else count nothing and return ``None``."""
        n = len(data)
        if n < 2 or data[0] != 0x88 or self._head or self._remaining or self.in_message:
            return None
        b1 = data[1]
        length = b1 & 0x7F
        masked = self._mask_bit
        if self.closed or (b1 & 0x80) != masked or length > 125:
            return None
        start = 6 if masked else 2
        if start + length != n:
            return None
        self.frames += 1
        self.offset += n
        self.closed = True
        payload = data[start:]
        return unmask(payload, data[2:6]) if masked else payload

    def feed(self, data: bytes, events: list[FrameEvent]) -> None:
        """Scan ``data``, the next bytes of the stream, appending events to ``events``."""
        if self.closed:
            return
        if self._pending is not None:  # skim inflated this chunk's message: refused
            pending, self._pending = self._pending, None
            raise pending
        start = 0
        if self._head:
            held = len(self._head)
            buf = self._head + data[:MAX_HEADER]
            self._head = b""
            self._scan(buf, 0, self.offset - held, events)
            if self._head:
                # A header still incomplete: resume at its first byte, inside ``data`` when
                # a header was completed before it (a 14-byte window always completes one).
                start = len(buf) - len(self._head) - held
                if start < 0 or self.closed:
                    self.offset += len(data)
                    return
                self._head = b""
            else:
                start = len(buf) - held
        if not self.closed:
            self._scan(data, start, self.offset, events)
        self.offset += len(data)

    def _scan(self, buf: bytes, i: int, base: int, events: list[FrameEvent]) -> None:
        n = len(buf)
        if self._remaining:
            take = min(self._remaining, n - i)
            if self._gathering:
                self._pieces.append(buf[i : i + take])
            elif self._inflating:
                self._inflate(buf[i : i + take], last=take == self._remaining and self._frame_fin)
            i += take
            self._remaining -= take
            if self._remaining:
                return
            if self._gathering:
                self._finish_frame(base + i, events)
                if self.closed:
                    return
            elif self._inflating:
                self._inflating = False
        mask_bit = self._mask_bit
        limit = self._limit
        report = self._report
        collect = self._collect
        counted = self._counted
        table = self._tables[self.in_message]
        frames = 0
        try:
            while n - i >= 2:
                b0 = buf[i]
                b1 = buf[i + 1]
                kind = table[b0]
                if not kind or (b1 & 0x80) != mask_bit:
                    raise self._refusal(b0, base + i)
                length = b1 & 0x7F
                if length < 126:
                    size = 2
                elif length == 126:
                    if n - i < 4:
                        break
                    length = (buf[i + 2] << 8) | buf[i + 3]
                    size = 4
                else:
                    if n - i < 10:
                        break
                    length = int.from_bytes(buf[i + 2 : i + 10], "big")
                    if length >> 63:
                        raise ProtocolViolation(
                            CloseCode.PROTOCOL_ERROR,
                            "64-bit payload length with its MSB set",
                            base + i,
                        )
                    size = 10
                if mask_bit:
                    size += 4
                if n - i < size:
                    break
                frames += 1
                end = i + size + length
                gather = inflate = False
                if kind == _WHOLE:
                    self.messages += 1
                    if length > limit:
                        raise _too_big(length, limit, base + i)
                    self.message_opcode = b0 & 0x0F
                    self.message_size = length
                    gather = collect
                    inflate = self._compressed = bool(b0 & counted)
                    if self._inflated:  # by skim, before unskim
                        inflate = self._compressed = self._inflated = False
                elif kind == _FIRST:
                    self.messages += 1
                    if length > limit:
                        raise _too_big(length, limit, base + i)
                    self.in_message = True
                    table = self._tables[1]
                    self.message_opcode = b0 & 0x0F
                    self.message_size = length
                    gather = collect
                    inflate = self._compressed = bool(b0 & counted)
                elif kind < _CONTROL:  # _MIDDLE or _LAST
                    self.message_size += length
                    if self.message_size > limit:
                        raise _too_big(self.message_size, limit, base + i)
                    if kind == _LAST:
                        self.in_message = False
                        table = self._tables[0]
                    gather = collect
                    inflate = self._compressed
                elif length > 125:
                    raise ProtocolViolation(
                        CloseCode.PROTOCOL_ERROR, "control frame payload over 125 bytes", base + i
                    )
                else:
                    gather = kind == _CLOSE
                if inflate:  # before the frame is reported: a refused one is not
                    self._frame_start = base + i
                    self._frame_fin = b0 >= 0x80
                    self._key = buf[i + size - 4 : i + size] if mask_bit else b""
                    self._pos = 0
                    self._inflate(buf[i + size : min(end, n)], last=end <= n and b0 >= 0x80)
                if report:
                    events.append(FrameEvent(base + i, base + end, b0 & 0x0F, b0 >= 0x80, None))
                if gather:
                    self._gathering = True
                    self._frame_start = base + i
                    self._frame_opcode = b0 & 0x0F
                    self._frame_fin = b0 >= 0x80
                    i += size
                    self._key = buf[i - 4 : i] if mask_bit else b""
                    self._pieces = [buf[i : min(end, n)]]
                    if end > n:
                        self._remaining = end - n
                        return
                    i = end
                    self._finish_frame(base + i, events)
                    if self.closed:
                        return
                    continue
                if end > n:
                    self._remaining = end - n
                    self._inflating = inflate
                    return
                i = end
            self._head = buf[i:]
        finally:
            self.frames += frames

    def _finish_frame(self, end: int, events: list[FrameEvent]) -> None:
        self._gathering = False
        payload = b"".join(self._pieces) if len(self._pieces) != 1 else self._pieces[0]
        self._pieces = []
        if self._key:
            payload = unmask(payload, self._key)
        opcode = self._frame_opcode
        if opcode == Opcode.CLOSE:
            self.closed = True
            events.append(FrameEvent(self._frame_start, end, opcode, True, payload))
            return
        self._message_payload.append(payload)
        if self._frame_fin:
            whole = b"".join(self._message_payload)
            self._message_payload = []
            events.append(FrameEvent(self._frame_start, end, self.message_opcode, True, whole))

    def _inflate(self, piece: bytes, *, last: bool) -> None:
        """Inflate the next payload bytes of a compressed message's frame (the message's
        ``last`` ones: it ends here)."""
        if self._key:
            phase = self._pos & 3
            piece = unmask(piece, self._key[phase:] + self._key[:phase] if phase else self._key)
            self._pos += len(piece)
        if last:
            self._compressed = False
        try:
            fits = cast(Inflater, self._inflater).feed(piece, self._limit, last=last)
        except zlib.error:
            raise ProtocolViolation(
                CloseCode.PROTOCOL_ERROR, "invalid compressed data", self._frame_start
            ) from None
        if not fits:
            raise ProtocolViolation(
                CloseCode.MESSAGE_TOO_BIG,
                f"compressed message inflates past {self._limit} bytes",
                self._frame_start,
            )

    def _refusal(self, b0: int, offset: int) -> ProtocolViolation:
        opcode = b0 & 0x0F
        rsv = b0 & 0x70
        if rsv and not self._deflate:
            reason = "reserved bits set without a negotiated extension"
        elif rsv & 0x30:
            reason = "RSV2 or RSV3 set (permessage-deflate uses RSV1 only)"
        elif rsv and opcode in (Opcode.CONT, Opcode.CLOSE, Opcode.PING, Opcode.PONG):
            reason = "RSV1 set on a continuation or control frame"
        elif opcode not in Opcode._value2member_map_:
            reason = f"unknown opcode {opcode}"
        elif opcode >= Opcode.CLOSE and not b0 & 0x80:
            reason = "fragmented control frame"
        elif opcode == Opcode.CONT and not self.in_message:
            reason = "continuation frame outside a fragmented message"
        elif opcode != Opcode.CONT and opcode < Opcode.CLOSE and self.in_message:
            reason = "new data frame inside a fragmented message"
        else:
            reason = "unmasked frame from the client" if self._mask_bit else "masked frame"
        return ProtocolViolation(CloseCode.PROTOCOL_ERROR, reason, offset)


def _too_big(size: int, limit: int, offset: int) -> ProtocolViolation:
    return ProtocolViolation(
        CloseCode.MESSAGE_TOO_BIG, f"message of {size} bytes exceeds {limit}", offset
    )
