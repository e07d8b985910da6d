"""Per-direction relay policy: raw bytes from one side in, actions for the shell out.

A :class:`Pump` sits on one direction of a relayed connection after both handshakes.  It
reads frame headers only (:mod:`asyncapi_gw.relay.frames`) and forwards the received bytes
themselves: masked frames stay masked, RSV bits and compressed payloads pass untouched, and
when every message is allowed a chunk comes back as one :class:`Forward` holding the very
same bytes object.  Dropping a message forwards the bytes around its data frames; control
frames inside a dropped or held message are still forwarded (immediately).

Validation needs plaintext: a :class:`StreamPolicy` with a validator refuses ``deflate``
(permessage-deflate), so the shell must not negotiate compression on validated topics.  With
``deflate``, compressed messages are held to ``max_message_size`` by the size they inflate to,
measured as they pass (:mod:`asyncapi_gw.relay.deflate`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, cast

import attrs

from asyncapi_gw.errors import RelayError
from asyncapi_gw.relay.closecode import CloseCode
from asyncapi_gw.relay.config import OnInvalid, OnThrottle, OnWrongDirection
from asyncapi_gw.relay.deflate import Compression
from asyncapi_gw.relay.frames import (
    FrameEvent,
    FrameScanner,
    Opcode,
    ProtocolViolation,
    parse_close_payload,
    text_frame,
)
from asyncapi_gw.relay.quota import THROTTLED_MESSAGE

__all__ = [
    "Action",
    "Close",
    "CloseSeen",
    "Forward",
    "Pump",
    "PumpStats",
    "QuotaLike",
    "Reply",
    "StreamPolicy",
]


@attrs.frozen
class Forward:
    """Write ``data`` to the other side."""

    data: bytes


@attrs.frozen
class Reply:
    """Write ``data`` (a whole frame) back to the side the bytes came from."""

    data: bytes


@attrs.frozen
class Close:
    """Close the connection because of this side, which broke the protocol or the policy.

    This side gets ``code`` and ``reason``; the shell tells the other side why (the client gets
    1014 when the backend is at fault, the backend 1001 when the client is).  The bytes
    forwarded before this action end at a frame boundary (:meth:`Pump.at_frame_boundary`), so
    a close frame may follow them, even inside a fragmented message.
    """

    code: int
    reason: str

    def closes(self, *, from_client: bool) -> tuple[tuple[int, str], tuple[int, str]]:
        """The (code, reason) of the close frame to the client, then to the backend, when the
        side this came from is at fault: it gets ``code``; the other side learns why, the
        client with 1014 (bad gateway), the backend with 1001 (going away)."""
        what = f"{_FAULTS.get(self.code, 'error')}: {self.reason}"
        if from_client:
            return (self.code, self.reason), (CloseCode.GOING_AWAY, f"client {what}")
        return (CloseCode.BAD_GATEWAY, f"bad gateway: backend {what}"), (self.code, self.reason)


# What a Close's code says about the side at fault, in the other side's close reason.
_FAULTS: dict[int, str] = {
    CloseCode.PROTOCOL_ERROR: "protocol error",
    CloseCode.INVALID_DATA: "invalid data",
    CloseCode.POLICY_VIOLATION: "policy violation",
    CloseCode.MESSAGE_TOO_BIG: "message too big",
    CloseCode.THROTTLED: "throttled",
}


@attrs.frozen
class CloseSeen:
    """This side's close frame was forwarded intact (in the preceding :class:`Forward`).

    The shell now awaits the other side's close reply, then closes TCP.
    """

    code: int | None
    reason: str


Action = Forward | Reply | Close | CloseSeen


class QuotaLike(Protocol):
    def take(self, now: float) -> bool: ...

    def take_many(self, now: float, count: int) -> int:
        """As many of ``count`` events as ``take`` would admit in a row, counted."""
        ...


@attrs.frozen(kw_only=True)
class StreamPolicy:
    """What one direction may carry.

    ``from_client``: client to backend (frames masked).  ``allowed``: the topic allows this
    direction (publish from the client, subscribe from the backend); otherwise each message
    closes (1008) or is dropped.  ``max_message_size`` bounds a whole message's payload
    (1009).  ``quota`` is taken once per message; a refused message is dropped with WSO2's
    throttling text frame as a :class:`Reply` (from the client; silently from the backend) or
    closes with :attr:`CloseCode.THROTTLED`.  ``validator(opcode, payload)`` sees each whole
    unmasked message, buffered until complete (bounded by ``max_message_size`` only);
    an invalid one closes (1007) or is dropped.  ``deflate``: permessage-deflate negotiated,
    and how this side compresses; ``max_message_size`` then bounds the inflated size too.
    """

    from_client: bool
    allowed: bool
    on_wrong_direction: OnWrongDirection = attrs.field(
        default=OnWrongDirection.CLOSE, converter=OnWrongDirection
    )
    max_message_size: int | None = None
    quota: QuotaLike | None = None
    on_throttle: OnThrottle = attrs.field(default=OnThrottle.REPLY, converter=OnThrottle)
    validator: Callable[[int, bytes], bool] | None = None
    on_invalid: OnInvalid = attrs.field(default=OnInvalid.CLOSE, converter=OnInvalid)
    deflate: Compression | None = None

    def __attrs_post_init__(self) -> None:
        if self.validator is not None and self.deflate is not None:
            raise RelayError("message validation needs uncompressed frames (no permessage-deflate)")

    # What a refused message does, by the policy's modes: the Close, or ``None`` (dropped).

    def wrong_direction(self) -> Close | None:
        """A message against the topic's direction: close 1008, or drop it."""
        if self.on_wrong_direction is not OnWrongDirection.CLOSE:
            return None
        operation = "publish" if self.from_client else "subscribe"
        return Close(CloseCode.POLICY_VIOLATION, f"topic does not allow {operation}")

    def over_quota(self) -> Close | None:
        """A message the quota refuses: close 4003, or drop it (with WSO2's reply)."""
        if self.on_throttle is not OnThrottle.CLOSE:
            return None
        return Close(CloseCode.THROTTLED, "Websocket frame throttled out")

    def invalid(self) -> Close | None:
        """A message that fails validation: close 1007, or drop it."""
        if self.on_invalid is not OnInvalid.CLOSE:
            return None
        return Close(CloseCode.INVALID_DATA, "message failed validation")


@attrs.frozen(kw_only=True)
class PumpStats:
    """Counters of one direction: ``bytes`` received, data ``messages`` started, frames,
    and messages ``dropped`` (wrong direction, throttled, invalid, cut short by a close)."""

    messages: int
    frames: int
    bytes: int
    dropped: int


# What happens to a frame's bytes.
_FORWARD = 0
_DROP = 1
_HOLD = 2  # part of a message awaiting validation
_CLOSING = 3  # part of a close frame awaiting its payload's check


class _Output:
    """Actions of one ``receive`` call; contiguous forwarded ranges of the chunk merge."""

    __slots__ = ("_run_end", "_run_start", "actions", "base", "data")

    def __init__(self, data: bytes, base: int) -> None:
        self.actions: list[Action] = []
        self.data = data
        self.base = base  # stream offset of data[0]
        self._run_start = 0
        self._run_end = 0

    def forward(self, start: int, stop: int) -> None:
        """Forward stream bytes ``[start, stop)`` of the chunk."""
        start -= self.base
        stop -= self.base
        if self._run_end == start and self._run_end > self._run_start:
            self._run_end = stop
            return
        self.flush()
        self._run_start, self._run_end = start, stop

    def add(self, action: Action) -> None:
        self.flush()
        self.actions.append(action)

    def flush(self) -> None:
        if self._run_end > self._run_start:
            data = self.data
            whole = self._run_start == 0 and self._run_end == len(data)
            self.actions.append(Forward(data if whole else data[self._run_start : self._run_end]))
        self._run_start = self._run_end = 0


class Pump:
    """Turns the bytes one side sends into :data:`Action` values for the shell.

    After a :class:`Close` or a :class:`CloseSeen`, ``receive`` returns ``[]``.
    """

    __slots__ = (
        "_admitted",
        "_bytes",
        "_clock",
        "_closing",
        "_done",
        "_dropped",
        "_events",
        "_frame_disposition",
        "_frame_end",
        "_held",
        "_message_disposition",
        "_next",
        "_plain",
        "_quota_only",
        "_refused",
        "_report",
        "_scanner",
        "_tail",
        "policy",
    )

    def __init__(
        self, policy: StreamPolicy, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self._configure(policy)
        self._next: StreamPolicy | None = None  # the policy of the next message (update)
        # Quota decisions _admit_whole took before handing a chunk to _route: this many
        # admitted message starts, then (if _refused) one refused.
        self._admitted = 0
        self._refused = False
        self._scanner = FrameScanner(
            masked=policy.from_client,
            deflate=policy.deflate,
            max_message_size=policy.max_message_size,
            report=self._report,
            collect=policy.validator is not None,
        )
        self._events: list[FrameEvent] = []
        self._done = False
        self._bytes = 0
        self._dropped = 0
        # Bytes received but not yet forwarded (nor dropped): an incomplete header, withheld
        # until its frame's fate is known, or (without a policy) an incomplete close frame.
        self._tail = b""
        # State of the policy path (``_report``): every frame's bytes get a disposition.
        self._frame_end = 0
        self._frame_disposition = _FORWARD
        self._message_disposition = _FORWARD
        self._held: list[bytes] = []
        self._closing: list[bytes] = []

    def _configure(self, policy: StreamPolicy) -> None:
        self.policy = policy
        self._report = (
            not policy.allowed or policy.quota is not None or policy.validator is not None
        )
        # Only a quota applies: whole chunks of admitted messages pass as they came.
        self._quota_only = policy.allowed and policy.validator is None and policy.quota is not None
        # Messages pass whole unless refused: forward_whole may take them (until a close).
        self._plain = policy.allowed and policy.validator is None

    def update(self, policy: StreamPolicy) -> None:
        """Apply ``policy`` from the next message this side starts: at once between messages,
        else when the message in progress ends (it ends under the policy it began with).

        Only the message-level fields may differ (``allowed``, ``on_wrong_direction``,
        ``quota``, ``on_throttle``, ``validator``, ``on_invalid``); :class:`RelayError` if the
        direction, ``deflate`` or ``max_message_size`` do.
        """
        fixed = ("from_client", "deflate", "max_message_size")
        changed = [name for name in fixed if getattr(policy, name) != getattr(self.policy, name)]
        if changed:
            raise RelayError(f"a pump's {', '.join(changed)} cannot change")
        self._next = policy
        self._switch()

    def _switch(self) -> None:
        """Take up the next policy if there is one and no message is in progress."""
        policy = self._next
        if policy is None or not self.at_message_boundary():
            return
        self._next = None
        if self._done:
            return
        self._configure(policy)
        scanner = self._scanner
        scanner.reconfigure(report=self._report, collect=policy.validator is not None)
        # Between messages nothing is withheld: the dispositions start afresh.
        self._frame_end = scanner.offset
        self._frame_disposition = self._message_disposition = _FORWARD

    def _receive_switching(self, data: bytes) -> list[Action]:
        """:meth:`receive` while a policy waits for the message in progress to end: the chunk
        is fed frame by frame (headers byte by byte) until a message boundary, then the new
        policy takes the rest."""
        policy, self._next = self._next, None
        actions: list[Action] = []
        while data and not self._done and not self.at_message_boundary():
            size = self._scanner.payload_left or 1
            actions += self.receive(data[:size])
            data = data[size:]
        self._next = policy
        self._switch()
        if data and not self._done:
            actions += self.receive(data)
        return actions

    @property
    def stats(self) -> PumpStats:
        scanner = self._scanner
        return PumpStats(
            messages=scanner.messages,
            frames=scanner.frames,
            bytes=self._bytes,
            dropped=self._dropped,
        )

    def at_message_boundary(self) -> bool:
        """The output of this direction is between messages: a frame may be injected."""
        scanner = self._scanner
        return not scanner.in_message and scanner.at_frame_boundary

    def at_frame_boundary(self) -> bool:
        """The bytes forwarded so far end between two frames, perhaps inside a fragmented
        message: a control frame such as a close may follow (RFC 6455 section 5.4).

        Always true once :meth:`receive` returned a :class:`Close`: incomplete headers and
        close frames are withheld until complete, and violations are found at a header."""
        scanner = self._scanner
        if not scanner.payload_left:
            return True
        if self._report:
            return self._frame_disposition != _FORWARD  # dropped, held or a close frame
        return scanner.unfinished_start >= 0  # a close frame, withheld until complete

    def forward_whole(self, data: bytes) -> bool:
        """The common chunk, done with no action list: true when the policy forwards ``data``
        as it came, counted as :meth:`receive` would count it: whole admitted data messages,
        pings and pongs, the rest of a frame in progress, the start of the last one (its whole
        header); false, with nothing counted, for any other chunk, which then goes to
        :meth:`receive`.  A second implementation of :meth:`receive` for these chunks, on
        :meth:`FrameScanner.skim`'s count instead of the full scan."""
        if self._next is not None or not self._at_rest():
            return False
        scanner = self._scanner
        starts = scanner.skim(data)
        if starts < 0:
            return False
        quota = self.policy.quota
        if starts and quota is not None:
            admitted = quota.take_many(self._clock(), starts)
            if admitted < starts:
                scanner.unskim()
                # decided: receive() answers the chunk without asking again
                self._admitted, self._refused = admitted, True
                return False
        self._bytes += len(data)
        self._frame_end = scanner.offset + scanner.payload_left
        return True

    def _at_rest(self) -> bool:
        """Whole messages pass (no policy withholds, drops or checks them) and none is cut:
        a chunk may take a shortcut of the full scan."""
        return self._plain and not (
            self._tail or self._frame_disposition or self._message_disposition
        )

    def receive(self, data: bytes) -> list[Action]:
        """The actions for ``data``, the next bytes received from this side."""
        if self._done:
            return []
        if self._next is not None:
            return self._receive_switching(data)
        self._bytes += len(data)
        if self._at_rest():
            payload = self._scanner.take_close(data)
            if payload is not None:  # a close frame alone: what _pass and _close_seen give
                self._done, self._plain = True, False
                try:
                    code, reason = parse_close_payload(payload)
                except ProtocolViolation as exc:
                    return [Close(exc.code, exc.reason)]
                return [Forward(data), CloseSeen(code, reason)]
        events = self._events
        base = self._scanner.offset
        violation = None
        try:
            self._scanner.feed(data, events)
        except ProtocolViolation as exc:
            violation = exc
        if violation is None and (
            (
                not events
                and not self._report
                and not self._tail
                and self._scanner.unfinished_start < 0
            )
            or (self._quota_only and self._admit_whole(data, base))
        ):
            events.clear()
            return [Forward(data)]
        try:
            out = _Output(data, base)
            if self._report:
                return self._route(out, violation)
            return self._pass(out, violation)
        finally:
            events.clear()

    def _admit_whole(self, data: bytes, base: int) -> bool:
        """Quota-only policy: whether the chunk's messages were all admitted, so it passes whole.

        Holds when nothing of an earlier chunk is withheld or dropped, the chunk ends inside or
        at the end of a frame whose header it holds, and it has no close frame. When the quota
        refuses a message, that decision and the admissions before it are kept for
        :meth:`_route`.
        """
        events = self._events
        if (
            self._tail
            or self._message_disposition != _FORWARD
            or self._frame_disposition != _FORWARD
            or self._refused  # forward_whole refused this chunk's message already
        ):
            return False
        if events:
            if events[-1].end < base + len(data):
                return False
        elif self._frame_end < base + len(data):
            return False
        starts = 0  # data messages starting in the chunk (before a close frame, if any)
        closing = False
        for event in events:
            opcode = event.opcode
            if opcode == Opcode.CLOSE:
                closing = True
                break
            if opcode != Opcode.CONT and opcode < Opcode.CLOSE:
                starts += 1
        if starts:
            quota = cast(QuotaLike, self.policy.quota)  # _quota_only
            admitted = quota.take_many(self._clock(), starts)
            if admitted < starts:
                self._admitted, self._refused = admitted, True
                return False
            if closing:
                self._admitted = admitted  # each message takes the quota once
        if closing:
            return False
        if events:
            self._frame_end = events[-1].end
            self._frame_disposition = _FORWARD
            self._message_disposition = _FORWARD
        return True

    def _pass(self, out: _Output, violation: ProtocolViolation | None) -> list[Action]:
        """Everything is forwarded but an incomplete header or close frame at the end of the
        chunk, withheld until complete; the only events are a close frame and a violation."""
        start = out.base - len(self._tail)  # the first byte not forwarded yet
        if violation is not None:
            self._assign(out, start, violation.offset, _FORWARD)
            return self._stop(out, Close(violation.code, violation.reason))
        if self._events:
            event = self._events[0]  # the close frame, which ends the scan
            try:
                code, reason = parse_close_payload(event.payload or b"")
            except ProtocolViolation as exc:
                self._assign(out, start, event.start, _FORWARD)
                return self._stop(out, Close(exc.code, exc.reason))
            self._assign(out, start, event.end, _FORWARD)
            return self._stop(out, CloseSeen(code, reason))
        base, tail = out.base, self._tail
        cut = self._scanner.unfinished_start
        if cut < 0:
            cut = base + len(out.data)
        self._assign(out, start, cut, _FORWARD)
        self._tail = (
            tail[len(tail) - (base - cut) :] + out.data if cut < base else out.data[cut - base :]
        )
        out.flush()
        return out.actions

    def _stop(self, out: _Output, action: Action) -> list[Action]:
        self._done = True
        self._plain = False
        out.add(action)
        return out.actions

    def _route(self, out: _Output, violation: ProtocolViolation | None) -> list[Action]:
        """Give every byte of the chunk the disposition of its frame."""
        data, base = out.data, out.base
        end = base + len(data)
        if violation is not None:  # nothing of the offending frame leaves, not even its start
            end = min(end, max(base, violation.offset))
        validator = self.policy.validator
        cursor = base - len(self._tail)  # the first byte without a disposition
        if self._frame_end > cursor:
            cursor = min(self._frame_end, end)
            self._assign(out, base, cursor, self._frame_disposition)
        for event in self._events:
            if event.payload is None:
                disposition = self._admit(event, out)
                if disposition is None:
                    return out.actions
                cursor = min(event.end, end)
                self._assign(out, event.start, cursor, disposition)
                self._frame_end = event.end
                self._frame_disposition = disposition
            elif event.opcode == Opcode.CLOSE:
                return self._close_seen(event, out)
            elif (
                validator is not None
                and self._message_disposition == _HOLD
                and not self._validated(validator, event, out)
            ):
                return out.actions
        if violation is not None:
            return self._stop(out, Close(violation.code, violation.reason))
        if cursor < base:
            self._tail = self._tail[len(self._tail) - (base - cursor) :] + data
        else:
            self._tail = data[cursor - base :]
        out.flush()
        return out.actions

    def _admit(self, event: FrameEvent, out: _Output) -> int | None:
        """The disposition of a frame from its header; ``None`` once a Close was added."""
        if event.opcode == Opcode.CLOSE:
            return _CLOSING
        if event.opcode > Opcode.CLOSE:
            return _FORWARD
        if event.opcode != Opcode.CONT:
            policy = self.policy
            if not policy.allowed:
                close = policy.wrong_direction()
                if close is not None:
                    self._stop(out, close)
                    return None
                self._message_disposition = _DROP
            elif self._throttled():
                close = policy.over_quota()
                if close is not None:
                    self._stop(out, close)
                    return None
                if policy.from_client:
                    out.add(Reply(text_frame(THROTTLED_MESSAGE, mask=False)))
                self._message_disposition = _DROP
            elif policy.validator is not None:
                self._message_disposition = _HOLD
            else:
                self._message_disposition = _FORWARD
            if self._message_disposition == _DROP:
                self._dropped += 1
        return self._message_disposition

    def _throttled(self) -> bool:
        """Whether the quota refuses the message starting now (decided already by
        :meth:`_admit_whole` for the first messages of a chunk it gave up on)."""
        if self._admitted:
            self._admitted -= 1
            return False
        if self._refused:
            self._refused = False
            return True
        quota = self.policy.quota
        return quota is not None and not quota.take(self._clock())

    def _assign(self, out: _Output, start: int, stop: int, disposition: int) -> None:
        """Dispose of stream bytes ``[start, stop)``, which may begin in the withheld tail."""
        if stop <= start:
            return
        base = out.base
        pieces: list[bytes] = []
        if start < base:
            tail = self._tail
            pieces.append(tail[len(tail) - (base - start) : len(tail) - (base - min(stop, base))])
            self._tail = b""
            start = base
        if disposition == _FORWARD:
            if pieces:
                out.add(Forward(pieces[0]))
            if stop > start:
                out.forward(start, stop)
            return
        if stop > start and disposition != _DROP:
            pieces.append(out.data[start - base : stop - base])
        if disposition == _HOLD:
            self._held += pieces
        elif disposition == _CLOSING:
            self._closing += pieces

    def _close_seen(self, event: FrameEvent, out: _Output) -> list[Action]:
        try:
            code, reason = parse_close_payload(event.payload or b"")
        except ProtocolViolation as exc:
            return self._stop(out, Close(exc.code, exc.reason))
        if self._held:  # a message awaiting validation, cut short by the close
            self._held = []
            self._dropped += 1
        out.add(Forward(b"".join(self._closing)))
        return self._stop(out, CloseSeen(code, reason))

    def _validated(
        self, validator: Callable[[int, bytes], bool], event: FrameEvent, out: _Output
    ) -> bool:
        """Release or discard the held message; false once a Close was added."""
        held, self._held = self._held, []
        if validator(event.opcode, event.payload or b""):
            out.add(Forward(b"".join(held)))
            return True
        close = self.policy.invalid()
        if close is not None:
            self._stop(out, close)
            return False
        self._dropped += 1
        return True
