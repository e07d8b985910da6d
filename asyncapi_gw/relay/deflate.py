"""permessage-deflate (RFC 7692) as the relay handles it: the offer it forwards, the agreement
the backend answers, and inflating compressed messages only to measure them. No I/O.

The relay forwards compressed frames as they came; it never recompresses. To hold
``max_message_size`` against the size a message *inflates* to (a 20 KB message of zeros
inflates to 20 MiB), it inflates each compressed message as its bytes pass, counting the output
and discarding it, and stops as soon as the count passes the limit. The output is produced in
bounded pieces, so memory per connection stays at zlib's window and state.

Each side compresses with its own LZ77 window. With context takeover (the default) a message
may refer to the earlier messages of its side, so the relay keeps one inflater per direction,
fed with every compressed message of that side, for the life of the connection; with
``*_no_context_takeover`` every message stands alone and the inflater is dropped between
messages. The relay offers the backend only what it can read (permessage-deflate offers,
nothing else) and refuses (502) an agreement it cannot follow; the header syntax is read by
:mod:`asyncapi_gw.relay.handshake`.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import attrs

__all__ = ["EXTENSION", "Agreement", "Compression", "Inflater"]

EXTENSION = "permessage-deflate"
_TAIL = b"\x00\x00\xff\xff"  # the end of a sync flush, which senders strip from each message
_PIECE = 64 * 1024  # inflated bytes produced per zlib call: the memory bound of counting
_MIN_WINDOW_BITS = 9  # zlib's raw inflate takes 9 to 15; a larger window reads any smaller one


@attrs.frozen
class Compression:
    """How one side compresses the messages it sends: its window (``window_bits``, 8 to 15)
    and whether a message may refer to the earlier ones (``context_takeover``)."""

    window_bits: int = 15
    context_takeover: bool = True


@attrs.frozen(kw_only=True)
class Agreement:
    """The permessage-deflate parameters a backend answered: how the client compresses what
    it sends (``client``) and how the backend does (``backend``); ``header`` is the
    ``Sec-WebSocket-Extensions`` value the client gets."""

    client: Compression
    backend: Compression
    header: str

    @classmethod
    def from_extensions(
        cls, extensions: Sequence[tuple[str, Sequence[tuple[str, str | None]]]], response: str
    ) -> Agreement:
        """The agreement in a backend's ``Sec-WebSocket-Extensions`` answer (``response``,
        read as (name, parameters) pairs) to an offer of permessage-deflate alone. Raises
        :class:`ValueError` for anything else."""
        if len(extensions) != 1 or extensions[0][0] != EXTENSION:
            raise ValueError(f"extensions {response!r} were not offered (only {EXTENSION} is)")
        windows = {"client": 15, "server": 15}
        takeover = {"client": True, "server": True}
        seen: set[str] = set()
        for name, value in extensions[0][1]:
            if name in seen:
                raise ValueError(f"{EXTENSION} parameter {name} is repeated")
            seen.add(name)
            side, _, rest = name.partition("_")
            if side not in windows:
                raise ValueError(f"unknown {EXTENSION} parameter {name}")
            if rest == "no_context_takeover" and value is None:
                takeover[side] = False
            elif rest == "max_window_bits" and value is not None and value.isdigit():
                bits = int(value)
                if not 8 <= bits <= 15:
                    raise ValueError(f"{name}={value} is not between 8 and 15")
                windows[side] = bits
            else:
                raise ValueError(f"invalid {EXTENSION} parameter {name}={value}")
        return cls(
            client=Compression(windows["client"], takeover["client"]),
            backend=Compression(windows["server"], takeover["server"]),
            header=response,
        )

    def without_client_takeover(self) -> Agreement:
        """The agreement with ``client_no_context_takeover`` added for the client: each
        message it sends then stands alone, so the relay may drop one (a throttled message)
        without breaking the backend's inflation of the next. The backend needs no word of it:
        an inflater reads standalone messages as well."""
        if not self.client.context_takeover:
            return self
        header = self.header + "; client_no_context_takeover"  # one extension: its last parameter
        return attrs.evolve(
            self, client=attrs.evolve(self.client, context_takeover=False), header=header
        )


class Inflater:
    """Inflates the compressed messages of one side to count their sizes (see the module)."""

    __slots__ = ("_compression", "_zlib", "size")

    def __init__(self, compression: Compression) -> None:
        self._compression = compression
        self._zlib: zlib._Decompress | None = None
        self.size = 0
        """The inflated size of the current message so far."""

    def feed(self, data: bytes, limit: int, *, last: bool = False) -> bool:
        """Inflate ``data``, the next payload bytes of the current compressed message (its
        ``last`` ones: the message then ends, and the next starts at size 0, afresh without
        context takeover or after a sender's final block); false, having stopped early, once
        the message inflates to more than ``limit`` bytes. Raises :class:`zlib.error` for data
        that does not inflate."""
        inflater = self._zlib
        if inflater is None:
            bits = max(self._compression.window_bits, _MIN_WINDOW_BITS)
            inflater = self._zlib = zlib.decompressobj(-bits)
        if last:
            data += _TAIL  # what the sender stripped
        size = self.size
        while True:
            room = min(limit - size + 1, _PIECE)
            out = len(inflater.decompress(data, room))
            size += out
            # Less than the room: zlib holds nothing more. The room filled: go on, with the
            # input left or with none (zlib may hold output still).
            if out < room or not out or size > limit:
                break
            data = inflater.unconsumed_tail
        if not last:
            self.size = size
        else:
            self.size = 0
            if not self._compression.context_takeover or inflater.eof:
                self._zlib = None
        return size <= limit
