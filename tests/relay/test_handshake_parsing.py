"""The hand-written handshake parsers and ``check_upgrade``, pinned to websockets' own.

Each property feeds the same bytes, split into the same chunks, to our parser and to websockets'
generator-based one (``Request.parse`` / ``Response.parse`` over a ``StreamReader``) and checks,
after every chunk, that we never accept what websockets refuses, never refuse what it accepts
(but for the stricter rules listed below), and never decide before it could; a last CRLF CRLF
ends any unfinished head, and then we must have decided. An accepted head must be websockets'
to the byte: method, path, protocol, ``raw_items()`` and the bytes left after it. A response
with a body (any status but 1xx, 204 and 304) is compared up to websockets reading the body.

How the two compare. websockets checks each line as it arrives; we check the framing of each
line as it arrives (length, CRLF, number of lines) but the content of the lines only once the
head is complete. So, where websockets refuses a line's content:

* on an incomplete head we are still waiting (we refuse once the head is complete);
* when a later line breaks a limit, or ends in a bare LF, we refuse for that (431 or 400) where
  websockets refused for the content (400).

The framing is judged by websockets' own line reader (``read_line`` with its limit and
``parse_line``'s CRLF rule) with one change of ours: an empty first line ends the head at once
(websockets refuses it as a request or status line). websockets' server answers an over-long
request line with 414; our parser says 431 for every limit.

Stricter than websockets, on purpose (tested below one by one):

* requests: at most one ``Host``, and one in HTTP/1.1, whose value is a host and optional port
  (RFC 9112 section 3.2); the method is a token and the target non-empty visible ASCII
  (websockets takes any ASCII: an empty path, tabs, NUL, DEL), in origin form or an absolute
  ``http``, ``https``, ``ws`` or ``wss`` URI (RFC 9112 section 3.2.2), which becomes the
  origin form of its path and query;
* responses: a status code of exactly three digits (websockets reads up to 18: ``0101``).

websockets already refuses ``Transfer-Encoding`` and a ``Content-Length`` other than ``0`` in a
request, so these rules are shared. The limits are websockets' (``MAX_LINE_LENGTH``,
``MAX_NUM_HEADERS``), not ours, wherever the tests build a head.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Generator
from dataclasses import dataclass
from itertools import pairwise
from typing import TypeAlias

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from websockets.datastructures import Headers
from websockets.exceptions import RequestLineTooLong, SecurityError
from websockets.http11 import MAX_LINE_LENGTH, MAX_NUM_HEADERS, Request, Response, parse_line
from websockets.server import ServerProtocol
from websockets.streams import StreamReader

from asyncapi_gw.relay.handshake import (
    MAX_HEADERS,
    MAX_LINE,
    HandshakeError,
    HttpRequest,
    HttpResponse,
    RequestParser,
    ResponseParser,
    check_upgrade,
)

SETTINGS = settings(max_examples=400, deadline=None)
LINE, HEADERS = MAX_LINE_LENGTH, MAX_NUM_HEADERS  # websockets' limits

# RFC 9110 token (a method, a header name) and a request target of visible ASCII.
TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
VISIBLE = re.compile(r"[\x21-\x7e]+")
THREE_DIGITS = re.compile(rb"[0-9]{3}")

# -- websockets, driven chunk by chunk --------------------------------------------------------


@dataclass
class Theirs:
    """websockets' state: ``waiting`` for data, ``done`` (a request or response head),
    ``head_ok`` (a response head accepted, its body next), ``too_large`` or ``invalid``."""

    kind: str
    request: Request | None = None
    response: Response | None = None


class _BodyNextError(Exception):
    """websockets went on to read a response body: it accepted the head."""


def _resume(parser: Generator[None, None, object], *, response: bool = False) -> Theirs:
    try:
        next(parser)
    except StopIteration as stop:
        value = stop.value
        if isinstance(value, Request):
            return Theirs("done", request=value)
        assert isinstance(value, Response)
        return Theirs("done", response=value)
    except _BodyNextError:
        return Theirs("head_ok")
    except (NotImplementedError, LookupError):
        # a response body's framing (Content-Length, Transfer-Encoding); a request's
        # Transfer-Encoding is a refusal
        return Theirs("head_ok" if response else "invalid")
    except SecurityError as exc:
        # the limits of a head are subclasses; SecurityError itself is a response body's limit
        return Theirs("head_ok" if type(exc) is SecurityError else "too_large")
    except Exception:  # every other refusal is one verdict
        return Theirs("invalid")
    return Theirs("waiting")


def websockets_request(reader: StreamReader) -> Generator[None, None, object]:
    return Request.parse(reader.read_line)


def websockets_response_head(reader: StreamReader) -> Generator[None, None, object]:
    """``Response.parse`` up to its body: reading one raises :class:`_BodyNextError`."""

    def read_line(m: int, too_long: type[Exception]) -> Generator[None, None, bytearray]:
        if too_long is SecurityError:  # a chunk size line: the head is behind
            raise _BodyNextError
        return reader.read_line(m, too_long)

    def read_exact(n: int) -> Generator[None, None, bytearray]:
        raise _BodyNextError

    def read_to_eof(m: int, too_long: type[Exception]) -> Generator[None, None, bytearray]:
        raise _BodyNextError

    return Response.parse(read_line, read_exact, read_to_eof)


def framing(data: bytes) -> str:
    """How the head's lines are framed, by websockets' line reader: ``head`` (an empty line
    came), ``incomplete``, ``too_large`` or ``no_crlf``. Contents are not looked at."""
    reader = StreamReader()
    reader.feed_data(data)

    def lines() -> Generator[None, None, str]:
        count = 0
        while True:
            line = yield from parse_line(reader.read_line, SecurityError)
            if line == b"":
                return "head"
            count += 1
            if count > MAX_NUM_HEADERS + 1:  # the start line and the headers
                return "too_large"

    scan = lines()
    try:
        next(scan)
    except StopIteration as stop:
        result: str = stop.value
        return result
    except SecurityError:
        return "too_large"
    except EOFError:  # parse_line's "line without CRLF"
        return "no_crlf"
    return "incomplete"


# -- ours -------------------------------------------------------------------------------------

Ours: TypeAlias = "HttpRequest | HttpResponse | int | None"  # int: the refusal's status


def expected(theirs: Theirs, framed: str, *, refusal: int, too_large: int) -> str | int | None:
    """What our parser must have said: ``"accept"``, ``None`` (waiting) or a status."""
    if theirs.kind in ("done", "head_ok"):
        assert framed == "head"
        return "accept"
    if theirs.kind == "too_large":
        assert framed == "too_large"
        return too_large
    if theirs.kind == "waiting":
        assert framed == "incomplete"
        return None
    # websockets refused a line's content: we wait for the head or refuse its framing
    return {"head": refusal, "no_crlf": refusal, "too_large": too_large, "incomplete": None}[framed]


def verdict(ours: Ours) -> str | int | None:
    return "accept" if isinstance(ours, (HttpRequest, HttpResponse)) else ours


AUTHORITY = re.compile(r"(?:\[[^\[\]/?#@\s]+\]|[-\w.~!$&'()*+,;=%]*)(?::[0-9]*)?", re.ASCII)
ABSOLUTE = re.compile(r"(?:[hH][tT][tT][pP][sS]?|[wW][sS][sS]?)://([^/?#]*)((?:[/?].*)?)")


def origin_path(target: str) -> str | None:
    """The origin form our parser gives a target, ``None`` when it refuses it."""
    if target.startswith("/"):
        return target
    found = ABSOLUTE.fullmatch(target)
    if found is None or not AUTHORITY.fullmatch(found[1]):
        return None
    return found[2] if found[2].startswith("/") else "/" + found[2]


def stricter_request(request: Request) -> bool:
    """Whether one of our extra rules refuses a request websockets accepts."""
    hosts = request.headers.get_all("Host")
    return (
        len(hosts) > 1
        or (not hosts and request.protocol == "HTTP/1.1")  # type: ignore[attr-defined]
        or not all(AUTHORITY.fullmatch(host) for host in hosts)
        or not TOKEN.fullmatch(request.method)
        or not VISIBLE.fullmatch(request.path)
        or origin_path(request.path) is None
    )


def compare_requests(chunks: list[bytes]) -> Ours:
    """Feeds the chunks to both and checks after each; returns our final verdict."""
    parser = RequestParser()
    reader = StreamReader()
    reference = websockets_request(reader)
    theirs = _resume(reference)
    received = b""
    ours: Ours = None
    for chunk in chunks:
        received += chunk
        if theirs.kind == "waiting":
            reader.feed_data(chunk)
            theirs = _resume(reference)
        try:
            ours = parser.feed(chunk)
        except HandshakeError as exc:
            ours = exc.status
        want = expected(theirs, framing(received), refusal=400, too_large=431)
        if want == "accept":
            assert theirs.request is not None
            if stricter_request(theirs.request):
                want = 400
        assert verdict(ours) == want, (received, theirs, ours)
        if isinstance(ours, HttpRequest):
            assert theirs.request is not None
            assert ours.method == theirs.request.method
            assert ours.path == origin_path(theirs.request.path)
            assert ours.protocol == theirs.request.protocol
            assert ours.headers.raw_items() == list(theirs.request.headers.raw_items())
            assert parser.leftover == bytes(reader.buffer)
        if ours is not None:
            return ours
    return ours


def compare_responses(chunks: list[bytes]) -> Ours:
    """As :func:`compare_requests`, for a backend's response head."""
    parser = ResponseParser()
    reader = StreamReader()
    reference = websockets_response_head(reader)
    theirs = _resume(reference, response=True)
    received = b""
    ours: Ours = None
    for chunk in chunks:
        received += chunk
        if theirs.kind == "waiting":
            reader.feed_data(chunk)
            theirs = _resume(reference, response=True)
        try:
            ours = parser.feed(chunk)
        except HandshakeError as exc:
            ours = exc.status
        want = expected(theirs, framing(received), refusal=502, too_large=502)
        raw_code = received.split(b"\r\n", 1)[0].split(b" ", 2)[1:2]
        if want == "accept" and not THREE_DIGITS.fullmatch(raw_code[0]):
            want = 502
        assert verdict(ours) == want, (received, theirs, ours)
        if isinstance(ours, HttpResponse):
            assert ours.status_code == int(raw_code[0])
        if isinstance(ours, HttpResponse) and theirs.response is not None:
            # 1xx, 204 and 304 have no body: websockets returned the whole response
            assert ours.status_code == theirs.response.status_code
            assert ours.reason_phrase == theirs.response.reason_phrase
            assert ours.headers.raw_items() == list(theirs.response.headers.raw_items())
            assert parser.leftover == bytes(reader.buffer)
        if ours is not None:
            return ours
    return ours


# -- the grammar ------------------------------------------------------------------------------

# Hostile pieces: drawn now and then by the properties, and tried one at a time below.
BAD_ENDINGS = (b"\n", b"\r", b"", b"\r\r\n", b"\n\r", b"\r \n")
BAD_NAMES = (
    b"Content-Length",  # with a value other than 0
    b"Transfer-Encoding",
    b"",
    b"Bad Name",
    b"X\x00",
    b"X\xe9",
    b"X(y)",
    b" X",
    b"X ",
    b"X\t",
    b"X/Y",
    b"\x7f",
)
BAD_VALUES = (b"a\x00b", b"a\rb", b"a\x7fb", b"a\x0bb", b"\x1f", b"a\nb")
BAD_SEPARATORS = (b"::", b"", b" :", b"\t:")
ODD_LINES = (b" folded", b"\tfolded: x", b"no colon", b"\r", b":value", b"X-A: v\rY: w")
BAD_METHODS = (b"", b"G\x00T", b"G\xc9T", b"GE(T", b"\x7f", b"G\tT")
BAD_TARGETS = (b"", b"/a\x00b", b"/a\tb", b"/\x7f", b"/caf\xe9", b"/a\rb", b"/a b", b"/\x1b")
BAD_PROTOCOLS = (
    b"HTTP/2",
    b"HTTP/2.0",
    b"http/1.1",
    b"HTTP/1.1 ",
    b"HTTP/1.1\t",
    b"HTTP/1.10",
    b"",
)
BAD_SPACES = (b"  ", b"\t", b"", b" \x00")
BAD_CODES = (b"404", b"599", b"600", b"099", b"0101", b"00204", b"20", b"2x0", b"", b"+200")
BAD_REASONS = (b"caf\xe9", b"a\x00b", b"a\x7f", b"a\rb", b"\x01", b"\xb2")
BAD_STATUS_PROTOCOLS = (b"HTTP/1.0", b"HTTP/2", b"http/1.1", b"")


def _weighted(*choices: tuple[int, bytes]) -> st.SearchStrategy[bytes]:
    return st.sampled_from([value for weight, value in choices for _ in range(weight)])


def _mostly(
    good: st.SearchStrategy[bytes], hostile: st.SearchStrategy[bytes], one_in: int
) -> st.SearchStrategy[bytes]:
    """``hostile`` one time in ``one_in`` or so, else ``good``: most heads get far enough to
    be compared in full."""
    return st.integers(0, one_in - 1).flatmap(lambda i: hostile if i == 0 else good)


ENDINGS = _mostly(st.just(b"\r\n"), st.sampled_from(BAD_ENDINGS), 40)
HEADER_NAMES = _mostly(
    _weighted(
        (3, b"X-A"),
        (2, b"x-a"),
        (2, b"User-Agent"),
        (1, b"Host"),
        (1, b"Upgrade"),
        (1, b"Connection"),
        (1, b"Sec-WebSocket-Key"),
        (1, b"content-length"),  # mostly with a value other than 0
        (1, b"!#$%&'*+-.^_`|~09az"),
    ),
    st.one_of(st.sampled_from(BAD_NAMES), st.binary(min_size=1, max_size=3)),
    15,
)
HEADER_VALUES = _mostly(
    _weighted(
        (4, b"v"),
        (1, b""),
        (1, b"0"),
        (1, b" 0 "),
        (1, b" padded  "),
        (1, b"\t tab\t"),
        (1, b"in  side\tblanks"),
        (1, b"caf\xe9 \xff"),
        (1, b"a:b"),
        (1, b"websocket"),
        (1, b"!~\x80"),
    ),
    st.one_of(st.sampled_from(BAD_VALUES), st.binary(max_size=5)),
    10,
)
SEPARATORS = _mostly(
    _weighted((6, b": "), (3, b":"), (1, b":\t"), (1, b": \t ")),
    st.sampled_from(BAD_SEPARATORS),
    20,
)


@st.composite
def header_line(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 29))
    if kind == 0:  # obs-fold, no colon, a bare CR...
        line = draw(st.sampled_from(ODD_LINES))
    elif kind == 1:
        line = b"Content-Length: 0"
    elif kind in (2, 3):  # a line around the limit, with its ending
        size = draw(st.integers(LINE - 3, LINE + 2))
        line = b"X-Long: " + b"a" * max(0, size - len(b"X-Long: ") - 2)
    else:
        line = draw(HEADER_NAMES) + draw(SEPARATORS) + draw(HEADER_VALUES)
    return line + draw(ENDINGS)


@st.composite
def tail(draw: st.DrawFn) -> bytes:
    """What follows the headers: the empty line and some leftover, or an unfinished line."""
    kind = draw(st.integers(0, 15))
    if kind in (0, 1):  # a partial line around the limit
        return b"X: " + b"a" * draw(st.integers(LINE - 5, LINE + 1))
    if kind == 2:
        return draw(st.sampled_from([b"", b"\r", b"X-A: v"]))
    return draw(ENDINGS) + draw(
        st.sampled_from([b"", b"", b"\x81\x85abcd", b"GET / HTTP/1.1\r\n\r\n", b"\r\n", b"\n"])
    )


@st.composite
def head(draw: st.DrawFn, start_line: st.SearchStrategy[bytes]) -> bytes:
    parts = [draw(_weighted((20, b""), (1, b"\r\n"), (1, b"\r\n\r\n")))]  # empty lines first
    parts.append(draw(start_line) + draw(ENDINGS))
    headers = draw(st.lists(header_line(), max_size=6))
    if draw(st.integers(0, 9)) == 0:  # 126 to 130 headers
        more = HEADERS - 2 - len(headers) + draw(st.integers(0, 4))
        at = draw(st.integers(0, len(headers)))
        headers[at:at] = [b"X-N: %d\r\n" % i for i in range(more)]
    parts += headers
    parts.append(draw(tail()))
    return b"".join(parts)


METHODS = _mostly(
    _weighted((8, b"GET"), (1, b"POST"), (1, b"get"), (1, b"M-SEARCH")),
    st.sampled_from(BAD_METHODS),
    20,
)
TARGETS = _mostly(
    _weighted((6, b"/"), (3, b"/chat?room=1&x=%20"), (1, b"*"), (1, b"http://h/x"), (1, b"/~!$")),
    st.one_of(st.sampled_from(BAD_TARGETS), st.binary(max_size=6).map(lambda b: b"/" + b)),
    6,
)
PROTOCOLS = _mostly(
    _weighted((4, b"HTTP/1.1"), (1, b"HTTP/1.0")), st.sampled_from(BAD_PROTOCOLS), 20
)
SPACES = _mostly(st.just(b" "), st.sampled_from(BAD_SPACES), 30)


@st.composite
def request_line(draw: st.DrawFn) -> bytes:
    method, protocol = draw(METHODS), draw(PROTOCOLS)
    if draw(st.integers(0, 9)) == 0:  # a line around the limit (with its CRLF)
        size = draw(st.integers(LINE - 3, LINE + 2))
        target = b"/" + b"a" * max(0, size - len(method) - len(protocol) - 5)
        return method + b" " + target + b" " + protocol
    return method + draw(SPACES) + draw(TARGETS) + draw(SPACES) + protocol


CODES = _mostly(
    _weighted((4, b"101"), (2, b"200"), (1, b"204"), (1, b"304"), (1, b"100"), (1, b"199")),
    st.sampled_from(BAD_CODES),
    6,
)
REASONS = _mostly(
    _weighted((4, b"Switching Protocols"), (1, b"OK"), (1, b""), (1, b" spaced "), (1, b"\t")),
    st.sampled_from(BAD_REASONS),
    8,
)
STATUS_PROTOCOLS = _mostly(st.just(b"HTTP/1.1"), st.sampled_from(BAD_STATUS_PROTOCOLS), 10)


@st.composite
def status_line(draw: st.DrawFn) -> bytes:
    protocol, code = draw(STATUS_PROTOCOLS), draw(CODES)
    if draw(st.integers(0, 9)) == 0:  # a line around the limit (with its CRLF)
        size = draw(st.integers(LINE - 3, LINE + 2))
        return protocol + b" " + code + b" " + b"r" * max(0, size - len(protocol + code) - 4)
    reason = draw(_mostly(st.just(b" "), st.sampled_from([b"  ", b"\t", b""]), 8))
    return protocol + draw(SPACES) + code + reason + draw(REASONS)


@st.composite
def chunked(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` in pieces (often whole), then CRLF CRLF to end any unfinished head."""
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=5)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in pairwise(bounds)] + [b"\r\n\r\n"]


def _chunks_of(heads: st.SearchStrategy[bytes]) -> st.SearchStrategy[list[bytes]]:
    return heads.flatmap(chunked)


def _heads_with_one_piece(start: bytes, starts: list[bytes]) -> list[bytes]:
    """Heads that hold one hostile piece each: in the start line (``starts``), in a header line
    or ending a line."""

    def head(start: bytes = start, line: bytes = b"X-A: v", ending: bytes = b"\r\n") -> bytes:
        return start + b"\r\nHost: h\r\n" + line + ending + b"User-Agent: t\r\n\r\n"

    heads = [head(start=line) for line in starts]
    heads += [head(line=name + b": v") for name in BAD_NAMES]
    heads += [head(line=b"X-A: " + value) for value in BAD_VALUES]
    heads += [head(line=b"X-A" + separator + b"v") for separator in BAD_SEPARATORS]
    heads += [head(line=line) for line in ODD_LINES]
    heads += [head(ending=ending) for ending in BAD_ENDINGS]
    heads += [start + ending + b"Host: h\r\n\r\n" for ending in BAD_ENDINGS]
    heads += [start + b"\r\nHost: h\r\n" + ending for ending in BAD_ENDINGS]
    return heads


def _whole_and_byte_by_byte(data: bytes) -> list[list[bytes]]:
    return [[data, b"\r\n\r\n"], [*(data[i : i + 1] for i in range(len(data))), b"\r\n\r\n"]]


# -- 1. request heads -------------------------------------------------------------------------

# A request line of 8191 bytes, 8193 with its CRLF: one byte too long.
LONGEST = b"GET /" + b"a" * (LINE - 1 - 14) + b" HTTP/1.1"


@SETTINGS
@given(_chunks_of(head(request_line())))
@example([b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"])
@example([b"GET / HTTP/2\r\n", b"X: " + b"a" * LINE])
@example([b"\r\nGET / HTTP/1.1\r\n\r\n"])
@example([LONGEST + b"\r\n\r\n"])
def test_request_heads_are_judged_as_websockets_judges_them(chunks: list[bytes]) -> None:
    assert compare_requests(chunks) is not None  # a verdict once the head is complete


@pytest.mark.parametrize(
    "data",
    _heads_with_one_piece(
        b"GET /chat HTTP/1.1",
        [
            *(method + b" /chat HTTP/1.1" for method in BAD_METHODS),
            *(b"GET " + target + b" HTTP/1.1" for target in BAD_TARGETS),
            *(b"GET /chat " + protocol for protocol in BAD_PROTOCOLS),
            *(b"GET" + space + b"/chat HTTP/1.1" for space in BAD_SPACES),
            *(b"GET /chat" + space + b"HTTP/1.1" for space in BAD_SPACES),
        ],
    ),
)
def test_request_heads_with_one_hostile_piece(data: bytes) -> None:
    for chunks in _whole_and_byte_by_byte(data):
        assert compare_requests(chunks) is not None


def test_an_upgrade_request_fed_byte_by_byte_is_websockets_request() -> None:
    data = (
        b"GET /chat?room=1 HTTP/1.1\r\nHost: relay.example\r\nUpgrade: websocket\r\n"
        b"Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\nX-Odd:  caf\xe9 \t\r\n\r\n\x81\x80"
    )
    ours = compare_requests([data[i : i + 1] for i in range(len(data))])
    assert isinstance(ours, HttpRequest)
    assert ours.headers.raw_items()[-1] == ("X-Odd", "caf\xe9")
    assert compare_requests([data]) is not None


def test_our_limits_are_websockets_limits() -> None:
    assert (MAX_LINE, MAX_HEADERS) == (MAX_LINE_LENGTH, MAX_NUM_HEADERS) == (8192, 128)


def _header_of(size: int) -> bytes:
    """A header line of ``size`` bytes with its CRLF."""
    return b"X: " + b"a" * (size - 5) + b"\r\n"


@pytest.mark.parametrize("split", [False, True])
@pytest.mark.parametrize(
    ("data", "want"),
    [  # accepted heads are HTTP/1.0, which needs no Host line
        (b"GET / HTTP/1.0\r\n" + _header_of(LINE) + b"\r\n", "accept"),
        (b"GET / HTTP/1.1\r\n" + _header_of(LINE + 1) + b"\r\n", 431),
        (b"GET /" + b"a" * (LINE - 16) + b" HTTP/1.0\r\n\r\n", "accept"),
        (b"GET /" + b"a" * (LINE - 15) + b" HTTP/1.1\r\nHost: h\r\n\r\n", 431),
        (b"GET / HTTP/1.0\r\n" + b"X-N: v\r\n" * HEADERS + b"\r\n", "accept"),
        (b"GET / HTTP/1.1\r\n" + b"X-N: v\r\n" * (HEADERS + 1) + b"\r\n", 431),
        # 8192 bytes of a line and no LF yet: websockets waits (and refuses at the next byte)
        (b"GET / HTTP/1.1\r\nX: " + b"a" * (LINE - 3), None),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * (LINE - 2), 431),
    ],
)
def test_the_limits_fall_where_websockets_puts_them(
    data: bytes, want: str | int | None, split: bool
) -> None:
    chunks = [data[:20], data[20:]] if split else [data]
    assert verdict(compare_requests(chunks)) == want


def websockets_says(data: bytes) -> str:
    """What websockets' request parser makes of ``data`` (one read)."""
    reader = StreamReader()
    reader.feed_data(data)
    return _resume(websockets_request(reader)).kind


def we_refuse(data: bytes) -> int:
    """The status our request parser refuses ``data`` (one read) with."""
    with pytest.raises(HandshakeError) as refused:
        RequestParser().feed(data)
    return refused.value.status


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",  # one Host at most
        b"GET / HTTP/1.1\r\n\r\n",  # HTTP/1.1 requires a Host
        b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",  # a Host that is not a host
        b"GET / HTTP/1.1\r\nHost: u@h\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h:p\r\n\r\n",
        b"GET * HTTP/1.1\r\nHost: h\r\n\r\n",  # asterisk form
        b"GET ftp://h/x HTTP/1.1\r\nHost: h\r\n\r\n",  # an absolute URI of another scheme
        b"GET http://u@h/x HTTP/1.1\r\nHost: h\r\n\r\n",  # userinfo
        # an empty host in an http or ws URI (RFC 9110 section 4.2.1, RFC 6455 section 3)
        b"GET ws:///x HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET http://:80/x HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET http://h#f HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET h:80 HTTP/1.1\r\nHost: h\r\n\r\n",  # authority form
        b"GET  HTTP/1.1\r\n\r\n",  # an empty target
        b"GET /a\tb HTTP/1.1\r\n\r\n",
        b"GET /a\x00b HTTP/1.1\r\n\r\n",
        b"GET /\x7f HTTP/1.1\r\n\r\n",
        b"GET /a\rb HTTP/1.1\r\n\r\n",
        b" / HTTP/1.1\r\n\r\n",  # an empty method
        b"G(T / HTTP/1.1\r\n\r\n",
        b"G\x01T / HTTP/1.1\r\n\r\n",
    ],
)
def test_stricter_than_websockets_on_purpose(data: bytes) -> None:
    assert websockets_says(data) == "done"
    assert we_refuse(data) == 400


@pytest.mark.parametrize(
    ("target", "host", "path", "authority"),
    [
        (
            "ws://relay.example:9099/chat/1.0/x?a=1",
            "other",
            "/chat/1.0/x?a=1",
            "relay.example:9099",
        ),
        ("HTTPS://[::1]:8/x", "h", "/x", "[::1]:8"),
        ("http://h?q", "h", "/?q", "h"),
        ("wss://h", "h", "/", "h"),
        ("/x", "h:80", "/x", "h:80"),
    ],
)
def test_absolute_form_targets_become_their_path_for_the_authority_they_name(
    target: str, host: str, path: str, authority: str
) -> None:
    """RFC 9112 section 3.2.2: a server must accept absolute form and use its authority."""
    request = RequestParser().feed(f"GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    assert isinstance(request, HttpRequest)
    assert (request.path, request.host) == (path, authority)


def test_http_1_0_needs_no_host() -> None:
    request = RequestParser().feed(b"GET /health HTTP/1.0\r\n\r\n")
    assert isinstance(request, HttpRequest)
    assert request.host is None


def test_a_bad_line_is_refused_by_websockets_at_once_by_us_with_the_head() -> None:
    """On purpose: the contents of the lines are checked once the head is complete."""
    assert websockets_says(b"GET / HTTP/2\r\nHost: h\r\n") == "invalid"
    parser = RequestParser()
    assert parser.feed(b"GET / HTTP/2\r\nHost: h\r\n") is None
    with pytest.raises(HandshakeError) as refused:
        parser.feed(b"\r\n")
    assert refused.value.status == 400


def test_a_bad_line_then_a_limit_is_431_for_us_400_for_websockets() -> None:
    """On purpose: the limits are checked as the lines come, their contents with the head."""
    data = b"GET / HTTP/2\r\n" + _header_of(LINE + 1)
    assert websockets_says(data) == "invalid"
    assert we_refuse(data) == 431


def test_an_over_long_request_line_is_431_where_websockets_server_says_414() -> None:
    """On purpose: one status for every limit of a request head."""
    data = b"GET /" + b"a" * LINE + b" HTTP/1.1\r\n\r\n"
    server = ServerProtocol()
    server.receive_data(data)
    assert isinstance(server.handshake_exc, RequestLineTooLong)
    assert server.data_to_send()[0].startswith(b"HTTP/1.1 414 ")
    assert we_refuse(data) == 431


@pytest.mark.parametrize("parser", [RequestParser, ResponseParser])
def test_a_start_line_one_byte_too_long_is_refused_in_one_read_as_in_two(
    parser: Callable[[], RequestParser | ResponseParser],
) -> None:
    """A start line of 8191 bytes (8193 with its CRLF) and no header: websockets refuses it
    (``RequestLineTooLong`` / ``StatusLineTooLong``), so must the one-read fast path, whose
    bound is on the offset of the final CRLF CRLF, two bytes short of the line's size."""
    if parser is RequestParser:
        data = LONGEST + b"\r\n\r\n"
    else:
        data = b"HTTP/1.1 101 " + b"r" * (LINE - 1 - 13) + b"\r\n\r\n"
    assert data.index(b"\r\n") + 2 == LINE + 1
    reader = StreamReader()
    reader.feed_data(data)
    if parser is RequestParser:
        assert _resume(websockets_request(reader)).kind == "too_large"
    else:
        assert _resume(websockets_response_head(reader), response=True).kind == "too_large"
    in_two = parser()
    assert in_two.feed(data[:10]) is None
    with pytest.raises(HandshakeError) as refused:
        in_two.feed(data[10:])
    assert refused.value.status == (431 if parser is RequestParser else 502)
    with pytest.raises(HandshakeError) as refused:
        parser().feed(data)
    assert refused.value.status == (431 if parser is RequestParser else 502)


# -- 2. response heads ------------------------------------------------------------------------


@SETTINGS
@given(_chunks_of(head(status_line())))
@example([b"HTTP/1.1 0101 Switching Protocols\r\n\r\n"])
@example([b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"])
@example([b"HTTP/1.1 101 \r\nUpgrade: websocket\r\n\r\n\x81\x00", b"\r\n\r\n"])
@example([b"HTTP/1.1 101\r\n\r\n"])
def test_response_heads_are_judged_as_websockets_judges_them(chunks: list[bytes]) -> None:
    assert compare_responses(chunks) is not None


@pytest.mark.parametrize(
    "data",
    _heads_with_one_piece(
        b"HTTP/1.1 101 Switching Protocols",
        [
            *(protocol + b" 101 Switching Protocols" for protocol in BAD_STATUS_PROTOCOLS),
            *(b"HTTP/1.1 " + code + b" Switching Protocols" for code in BAD_CODES),
            *(b"HTTP/1.1 101 " + reason for reason in BAD_REASONS),
            *(b"HTTP/1.1" + space + b"101 Switching Protocols" for space in BAD_SPACES),
            *(b"HTTP/1.1 101" + space + b"Switching Protocols" for space in BAD_SPACES),
            b"HTTP/1.1 101",
            b"HTTP/1.1 101 ",
        ],
    ),
)
def test_response_heads_with_one_hostile_piece(data: bytes) -> None:
    for chunks in _whole_and_byte_by_byte(data):
        assert compare_responses(chunks) is not None


def test_a_status_code_of_other_than_three_digits_is_refused_on_purpose() -> None:
    """websockets reads 1 to 18 digits (``0101`` is 101); RFC 9110 says three."""
    for code in (b"0101", b"00204", b"000000000000000304"):
        data = b"HTTP/1.1 " + code + b" X\r\n\r\n"
        reader = StreamReader()
        reader.feed_data(data)
        assert _resume(websockets_response_head(reader), response=True).kind == "done"
        with pytest.raises(HandshakeError) as refused:
            ResponseParser().feed(data)
        assert refused.value.status == 502


def test_a_response_ended_by_the_backend_is_502() -> None:
    parser = ResponseParser()
    assert parser.feed(b"HTTP/1.1 101 Switching") is None
    with pytest.raises(HandshakeError) as refused:
        parser.feed(b"", eof=True)
    assert refused.value.status == 502


@pytest.mark.parametrize("space", [b"", b" "])
def test_a_status_line_needs_the_space_after_the_code(space: bytes) -> None:
    """``status-line = HTTP-version SP status-code SP [ reason-phrase ]`` (RFC 9112):
    websockets refuses ``HTTP/1.1 101`` with no space after the code, so must we."""
    data = b"HTTP/1.1 101" + space + b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    reader = StreamReader()
    reader.feed_data(data)
    theirs = _resume(websockets_response_head(reader), response=True)
    if space:
        assert theirs.kind == "done"
        response = ResponseParser().feed(data)
        assert response is not None
        assert (response.status_code, response.reason_phrase) == (101, "")
    else:
        assert theirs.kind == "invalid"
        with pytest.raises(HandshakeError) as refused:
            ResponseParser().feed(data)
        assert refused.value.status == 502


# -- 3. check_upgrade -------------------------------------------------------------------------

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
GOOD = {
    "Connection": (
        "Upgrade",
        "upgrade",
        "UPGRADE",
        "keep-alive, Upgrade",
        "Upgrade, keep-alive",
        "keep-alive,upgrade",
        "upgrade , keep-alive",
        "Upgrade,",
        ",Upgrade",
        "close, Upgrade, x",
    ),
    "Upgrade": ("websocket", "WebSocket", "WEBSOCKET", "websocket,", ", websocket"),
    "Sec-WebSocket-Key": (KEY, "AAAAAAAAAAAAAAAAAAAAAA==", "/////////////////////w=="),
    "Sec-WebSocket-Version": ("13",),
    "Origin": ("https://example.com", "null", "", "caf\xe9"),
    "Sec-WebSocket-Protocol": ("chat", "chat, superchat", "chat,", ",chat", "a, b ,c"),
    "Sec-WebSocket-Extensions": ("permessage-deflate; client_max_window_bits", "x-y", "x; a=1"),
}
BAD = {
    "Connection": (
        "keep-alive",
        "close",
        "Upgrade, , x",
        "Up grade",
        "Upgrade;x",
        "Upgr\xe9de",
        "",
    ),
    "Upgrade": ("websocket, h2c", "h2c", "websocket/13", "web socket", "", "websocket\xe9", "x;"),
    "Sec-WebSocket-Key": (
        KEY.rstrip("="),
        KEY + "=",
        KEY[:-3] + "!==",
        KEY[:-2] + "\xe9=",  # 24 characters, not all ASCII
        KEY[:-3] + "\xe9==",
        "dGhlIHNhbXBs ZSBub25jZQ=",
        KEY + KEY,
        "AAAAAAAAAAAAAAAAAAAA",  # 15 bytes
        "AAAAAAAAAAAAAAAAAAAAAAA=",  # 17 bytes
        "",
    ),
    "Sec-WebSocket-Version": ("8", "13, 8", "013", "", "14", "13 x"),
    "Origin": (),  # only a second one is a fault
    "Sec-WebSocket-Protocol": ("chat superchat", "", "ch@t", "chat;q=1", "ch\xe9t", ","),
    "Sec-WebSocket-Extensions": ("x; =", "", ";", "x y"),  # ignored: none is offered
}
REQUIRED = ("Connection", "Upgrade", "Sec-WebSocket-Key", "Sec-WebSocket-Version")
FAULTS = (None, None, *GOOD, "method", "protocol")


def upgrade_head(
    headers: list[tuple[str, str]], *, method: bytes = b"GET", protocol: bytes = b"HTTP/1.1"
) -> bytes:
    lines = [method + b" /chat " + protocol]
    lines += [f"{name}: {value}".encode("iso-8859-1") for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


@st.composite
def upgrade_request(draw: st.DrawFn) -> bytes:
    """A good upgrade request with, mostly, one fault: a header missing, repeated or wrong, or
    the method or protocol; now and then a second fault."""
    faults = {draw(st.sampled_from(FAULTS)), draw(st.sampled_from([*FAULTS, *[None] * 40]))}
    headers = [("Host", "relay.example")]
    for name, good_values in GOOD.items():
        good = st.sampled_from(good_values)
        if name == "Sec-WebSocket-Key":
            good = st.binary(min_size=16, max_size=16).map(lambda b: base64.b64encode(b).decode())
        bad = st.sampled_from(BAD[name] or good_values)
        if name not in faults:
            values = [draw(good)] if name in REQUIRED else draw(st.lists(good, max_size=1))
        else:
            kind = draw(st.integers(0, 3))
            if kind == 0:
                values = []
            elif kind == 1:
                values = draw(st.lists(st.one_of(good, bad), min_size=2, max_size=3))
            else:
                values = [draw(bad)]
        spelled = name
        if name == "Connection":
            spelled = draw(st.sampled_from(["Connection", "connection", "CONNECTION"]))
        headers += [(spelled, value) for value in values]
    method = draw(st.sampled_from([b"POST", b"get", b"HEAD"])) if "method" in faults else b"GET"
    protocol = b"HTTP/1.0" if "protocol" in faults else b"HTTP/1.1"
    return upgrade_head(draw(st.permutations(headers)), method=method, protocol=protocol)


def judged_alike(data: bytes) -> None:
    request = RequestParser().feed(data)
    assert request is not None
    theirs = Request(
        request.path, Headers(request.headers.raw_items()), request.method, request.protocol
    )
    status = ServerProtocol().accept(theirs).status_code
    for _ in range(2):  # the shared checker keeps nothing of an earlier request
        problem = check_upgrade(request)
        assert (problem.status if problem else 101) == status, (data, problem)


@settings(max_examples=500, deadline=None)
@given(upgrade_request())
def test_check_upgrade_judges_as_websockets_accept(data: bytes) -> None:
    judged_alike(data)


def _one_fault_each() -> dict[str, bytes]:
    """Upgrade requests by name: a good one, then each good and bad value of each header with
    the rest good, each header twice and missing, another method and another protocol."""
    base = [("Host", "h"), *((name, GOOD[name][0]) for name in REQUIRED)]
    cases = {"good": upgrade_head(base)}
    for name, good in GOOD.items():
        others = [(n, v) for n, v in base if n != name]
        for value in good + BAD[name]:
            cases[f"{name}={value!r}"] = upgrade_head([*others, (name, value)])
        cases[f"{name} twice"] = upgrade_head([*others, (name, good[0]), (name, good[-1])])
        cases[f"no {name}"] = upgrade_head(others)
    for method in (b"POST", b"get", b"HEAD"):
        cases[method.decode()] = upgrade_head(base, method=method)
    cases["HTTP/1.0"] = upgrade_head(base, protocol=b"HTTP/1.0")
    return cases


@pytest.mark.parametrize("data", _one_fault_each().values(), ids=_one_fault_each().keys())
def test_check_upgrade_one_fault_at_a_time(data: bytes) -> None:
    judged_alike(data)


def test_a_key_of_24_characters_not_all_ascii_is_400() -> None:
    """A header value may hold latin-1 (``\\x80``-``\\xff``); ``base64.b64decode`` of such a
    ``str`` raises a plain ``ValueError``, not ``binascii.Error``: still websockets' 400, not an
    exception out of ``check_upgrade``."""
    data = upgrade_head(
        [
            ("Host", "h"),
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Key", KEY[:-2] + "\xe9="),
            ("Sec-WebSocket-Version", "13"),
        ]
    )
    judged_alike(data)
    request = RequestParser().feed(data)
    assert request is not None
    problem = check_upgrade(request)
    assert problem is not None
    assert problem.status == 400
