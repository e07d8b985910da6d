"""Both HTTP/1.1 opening handshakes: parsed here within websockets' limits, judged as websockets'
server judges them, and built as its client builds them.

The relay reads the client's request, checks it as a WebSocket server would, builds the request
it sends to the backend and checks the backend's answer; the shell only moves the bytes.
"""

from __future__ import annotations

import base64
import email.utils
import functools
import http
import os
import re
import time
from collections.abc import Iterable
from typing import Protocol

import attrs
from websockets.datastructures import Headers
from websockets.exceptions import InvalidHeader
from websockets.headers import (
    build_authorization_basic,
    build_extension,
    build_host,
    parse_extension,
    parse_subprotocol,
)
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol
from websockets.uri import WebSocketURI, parse_uri
from websockets.utils import accept_key

from asyncapi_gw.relay.deflate import EXTENSION as DEFLATE
from asyncapi_gw.relay.deflate import Agreement
from asyncapi_gw.relay.principal import DEFAULT_HEADER as DEFAULT_PRINCIPAL_HEADER

__all__ = [
    "BackendHandshake",
    "HandshakeError",
    "HeaderView",
    "HeadersLike",
    "HttpRequest",
    "HttpResponse",
    "RequestLike",
    "RequestParser",
    "ResponseParser",
    "check_upgrade",
    "deflate_agreement",
    "deflate_offer",
    "forwarded_headers",
    "is_upgrade",
    "origin_form",
    "plain_response",
    "switching_protocols",
]

# Headers the relay writes itself; an allow-list can never copy them from the client.
RESERVED_HEADERS = frozenset(
    name.lower()
    for name in (
        "Host",
        "Upgrade",
        "Connection",
        "Content-Length",
        "Transfer-Encoding",
        "Sec-WebSocket-Key",
        "Sec-WebSocket-Version",
        "Sec-WebSocket-Accept",
        "Sec-WebSocket-Extensions",
        "Sec-WebSocket-Protocol",
        "X-Forwarded-For",
        "X-Forwarded-Proto",
        "X-Forwarded-Host",
        DEFAULT_PRINCIPAL_HEADER,
    )
)
# What may stand in a request target and a header value on the wire: no CR, LF, NUL or space.
_TARGET = re.compile(r"[\x21-\x7e]+")
_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


class HandshakeError(Exception):
    """A handshake that cannot go on; ``status`` is the HTTP status the client gets, with
    ``headers`` (such as ``WWW-Authenticate``) besides the relay's own."""

    def __init__(self, status: int, reason: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = tuple(headers)


# websockets' limits for an HTTP head: bytes per line (with its CRLF) and header lines.
MAX_LINE = 8192
MAX_HEADERS = 128
_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
# Every byte of a head's lines (CRLFs removed) that a header value may hold; a name or a
# request line is narrower still and is checked on its own.
_LINE_BYTES = re.compile(_VALUE.pattern.encode())
_STATUS = re.compile(rb"[0-9]{3}")
_TARGET_BYTES = re.compile(_TARGET.pattern.encode())
# RFC 3986 host (an IP literal, or a registered name or IPv4 address) and optional port, as
# the Host header and an absolute-form target carry them (RFC 9110 section 7.2; no userinfo).
_HOST = re.compile(
    r"(?:\[[0-9A-Za-z._~!$&'()*+,;=:%-]+\]|[0-9A-Za-z._~!$&'()*+,;=%-]*)(?::[0-9]*)?"
)
# An absolute-form target of a scheme the relay serves: scheme, authority, the rest.
_ABSOLUTE = re.compile(r"(?i:https?|wss?)://([^/?#]*)(.*)")


class HeaderView:
    """Headers as received: ``raw_items()`` in order with their case, ``get_all()`` by any case."""

    __slots__ = ("_by_name", "_items")

    def __init__(
        self, items: list[tuple[str, str]], by_name: dict[str, list[str]] | None = None
    ) -> None:
        """``by_name``, when given, is ``items``' values by lower-cased name."""
        self._items = items
        if by_name is None:
            by_name = {}
            for name, value in items:
                by_name.setdefault(name.lower(), []).append(value)
        self._by_name = by_name

    def get_all(self, key: str) -> list[str]:
        return self._by_name.get(key.lower(), [])

    def get(self, key: str) -> str | None:
        """The header's only value, ``None`` when absent. Raises :class:`LookupError` when
        it is repeated."""
        values = self._by_name.get(key.lower())
        if values is None:
            return None
        if len(values) > 1:
            raise LookupError(f"more than one {key} header")
        return values[0]

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: str) -> bool:
        return key.lower() in self._by_name

    def raw_items(self) -> list[tuple[str, str]]:
        return self._items


class HeadersLike(Protocol):
    """What the relay reads of headers: ours (:class:`HeaderView`) or websockets'."""

    def get_all(self, key: str) -> list[str]: ...

    def raw_items(self) -> Iterable[tuple[str, str]]: ...


class RequestLike(Protocol):
    """What the relay reads of a handshake request: ours or websockets' ``Request``."""

    @property
    def path(self) -> str: ...

    @property
    def headers(self) -> HeadersLike: ...


@attrs.frozen(slots=True)
class HttpRequest:
    """A parsed HTTP/1.x request head. ``path`` is the target in origin form (``/a?b``);
    ``host`` is the authority the request is for: an absolute-form target's, else ``Host``'s
    (RFC 9112 section 3.2.2)."""

    method: str
    path: str
    protocol: str
    headers: HeaderView
    host: str | None = None


@attrs.frozen(slots=True)
class HttpResponse:
    """A parsed HTTP/1.x response head."""

    status_code: int
    reason_phrase: str
    headers: HeaderView


class _HeadReader:
    """Collects an HTTP head as it arrives, enforcing websockets' limits as it goes.

    A head is lines ending in CRLF up to an empty line: a line of more than :data:`MAX_LINE`
    bytes or more than :data:`MAX_HEADERS` header lines is ``too_large``; a bare LF is
    refused as soon as it is seen, as websockets' line reader does.
    """

    __slots__ = ("_buffer", "_checked", "_lines", "leftover")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._checked = 0  # the buffer holds whole, checked lines up to here
        self._lines = 0
        self.leftover = b""
        """Bytes received after the end of the head."""

    def _head(self, data: bytes, status: int, what: str) -> bytes | None:
        """The head's bytes (no final CRLF CRLF) once complete. Raises :class:`HandshakeError`
        with ``status`` for a malformed head, 431 (for a request) or ``status`` when too large."""
        buffer = self._buffer
        if not buffer:
            end = data.find(b"\r\n\r\n")
            # The usual case, a whole head in one read: short enough that no line can be
            # too long, every LF after a CR, few enough lines.
            if (
                0 <= end <= MAX_LINE - 2  # its last line's CRLF counts
                and data.count(b"\n", 0, end) == data.count(b"\r\n", 0, end)
                and data.count(b"\n", 0, end) <= MAX_HEADERS
            ):
                self.leftover = data[end + 4 :]
                return data[:end]
        buffer += data
        start = self._checked
        while True:
            newline = buffer.find(b"\n", start)
            if newline < 0:
                break
            if newline + 1 - start > MAX_LINE:
                raise _too_large(status, what, "a line is too long")
            if newline == start or buffer[newline - 1] != 0x0D:
                raise HandshakeError(status, f"invalid HTTP {what}: a line without CRLF")
            if newline == start + 1:  # the empty line
                head = bytes(buffer[: max(0, start - 2)])
                self.leftover = bytes(buffer[newline + 1 :])
                self._buffer = bytearray()
                return head
            self._lines += 1
            if self._lines > MAX_HEADERS + 1:
                raise _too_large(status, what, "too many headers")
            start = newline + 1
        self._checked = start
        if len(buffer) - start > MAX_LINE:
            raise _too_large(status, what, "a line is too long")
        return None


def _too_large(status: int, what: str, why: str) -> HandshakeError:
    return HandshakeError(431 if status == 400 else status, f"HTTP {what} too large: {why}")


def _headers(lines: list[bytes], status: int, what: str) -> HeaderView:
    """Header lines as websockets parses them: a token, a colon, a value stripped of blanks."""
    items = []
    by_name: dict[str, list[str]] = {}
    for line in lines:
        raw_name, colon, raw_value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(raw_name):
            raise HandshakeError(status, f"invalid HTTP {what}: bad header line")
        name = raw_name.decode("ascii")
        value = raw_value.strip(b" \t").decode("iso-8859-1")
        items.append((name, value))
        key = name.lower()
        if key in by_name:
            by_name[key].append(value)
        else:
            by_name[key] = [value]
    return HeaderView(items, by_name)


def _split_head(head: bytes, status: int, what: str) -> list[bytes]:
    lines = head.split(b"\r\n")  # at most MAX_HEADERS + 1: _head counted them
    if not _LINE_BYTES.fullmatch(head.replace(b"\r\n", b"")):
        raise HandshakeError(status, f"invalid HTTP {what}: forbidden characters")
    return lines


class RequestParser(_HeadReader):
    """The client's handshake request, fed as it arrives."""

    __slots__ = ()

    def feed(self, data: bytes) -> HttpRequest | None:
        """The request once its head is complete, else ``None``. Raises
        :class:`HandshakeError`: 431 past websockets' limits, 400 for anything malformed,
        a body, or more than one ``Host``."""
        head = self._head(data, 400, "request")
        if head is None:
            return None
        lines = _split_head(head, 400, "request")
        method, _, rest = lines[0].partition(b" ")
        target, _, protocol = rest.partition(b" ")
        if protocol not in (b"HTTP/1.1", b"HTTP/1.0") or not _TOKEN.fullmatch(method):
            raise HandshakeError(400, "invalid HTTP request: bad request line")
        if not _TARGET_BYTES.fullmatch(target):
            raise HandshakeError(400, "invalid request target")
        headers = _headers(lines[1:], 400, "request")
        by_name = headers._by_name
        if "transfer-encoding" in by_name or not set(by_name.get("content-length", ())) <= {"0"}:
            raise HandshakeError(400, "invalid HTTP request: a request body")
        hosts = by_name.get("host", ())
        if len(hosts) > 1:
            raise HandshakeError(400, "invalid HTTP request: more than one Host header")
        if not hosts and protocol == b"HTTP/1.1":
            raise HandshakeError(400, "invalid HTTP request: HTTP/1.1 requires a Host header")
        if hosts and not _HOST.fullmatch(hosts[0]):
            raise HandshakeError(400, "invalid HTTP request: invalid Host header")
        path, authority = origin_form(target.decode())
        host = authority if authority is not None else (hosts[0] if hosts else None)
        return HttpRequest(method.decode(), path, protocol.decode(), headers, host)


def origin_form(target: str) -> tuple[str, str | None]:
    """A request target in origin form, and the authority of an absolute-form one.

    An origin-form target (``/path?query``) is returned as it is, with no authority. An
    absolute-form one with an ``http``, ``https``, ``ws`` or ``wss`` scheme, which a server
    must accept (RFC 9112 section 3.2.2), becomes its path and query (``/`` when the path is
    empty) with its authority, which must name a host. Raises :class:`HandshakeError` (400)
    for any other form.
    """
    if target.startswith("/"):
        return target, None
    absolute = _ABSOLUTE.fullmatch(target)
    if absolute is None:
        raise HandshakeError(400, "invalid request target: neither a path nor an absolute URI")
    authority, rest = absolute.groups()
    if (
        not _HOST.fullmatch(authority)
        or authority.startswith(":")  # these schemes require a host (RFC 9110 4.2.1)
        or not authority
        or rest[:1] not in ("", "/", "?")
    ):
        raise HandshakeError(400, "invalid request target: bad authority")
    return (rest if rest.startswith("/") else "/" + rest), authority


class ResponseParser(_HeadReader):
    """The backend's handshake response head, fed as it arrives (a body is never read: only a
    101 lets the connection go on)."""

    __slots__ = ()

    def feed(self, data: bytes, *, eof: bool = False) -> HttpResponse | None:
        """The response once its head is complete, else ``None``. Raises
        :class:`HandshakeError` (502)."""
        if eof:
            raise HandshakeError(502, "backend closed the connection during the handshake")
        head = self._head(data, 502, "response")
        if head is None:
            return None
        lines = _split_head(head, 502, "response")
        protocol, _, rest = lines[0].partition(b" ")
        code, space, reason = rest.partition(b" ")  # the second space stays, reason or not
        if (
            protocol != b"HTTP/1.1"
            or not space
            or not _STATUS.fullmatch(code)
            or not 100 <= int(code) < 600
        ):
            raise HandshakeError(
                502,
                "backend sent an invalid HTTP response: bad status line "
                + repr(lines[0][:80].decode("iso-8859-1")),
            )
        headers = _headers(lines[1:], 502, "response")
        return HttpResponse(int(code), reason.decode("iso-8859-1"), headers)


def is_upgrade(request: HttpRequest) -> bool:
    """Whether the request asks for a WebSocket upgrade at all."""
    return any("websocket" in v.lower() for v in request.headers.get_all("Upgrade"))


# Checks requests with ``process_request``, which keeps nothing of them that the relay reads.
_CHECKER = ServerProtocol()
# ``Connection`` values that need no token parsing (lower case): what browsers and clients send.
_PLAIN_CONNECTION = frozenset({"upgrade", "keep-alive, upgrade", "upgrade, keep-alive"})


def check_upgrade(request: HttpRequest) -> HandshakeError | None:
    """What is wrong with a WebSocket upgrade request, as websockets' server judges it.

    The usual request (one plain ``Connection``, ``Upgrade``, key and version, at most one
    ``Origin``) is judged here; anything else by websockets: ``process_request`` on a shared
    protocol, then, to word a refusal, a fresh protocol's ``accept``.
    """
    by_name = request.headers._by_name
    connection = by_name.get("connection", ())
    upgrade = by_name.get("upgrade", ())
    key = by_name.get("sec-websocket-key", ())
    if (
        request.method == "GET"
        and request.protocol == "HTTP/1.1"
        and len(connection) == 1
        and connection[0].lower() in _PLAIN_CONNECTION
        and len(upgrade) == 1
        and upgrade[0].lower() == "websocket"
        and len(key) == 1
        and _is_key(key[0])
        and by_name.get("sec-websocket-version") == ["13"]
        and len(by_name.get("origin", ())) <= 1
        and _subprotocols_parse(by_name.get("sec-websocket-protocol", ()))
    ):
        return None
    theirs = Request(
        request.path, Headers(request.headers.raw_items()), request.method, request.protocol
    )
    try:
        _CHECKER.process_request(theirs)
    except Exception:  # noqa: BLE001 - accept() below classifies it, as the server would
        response = ServerProtocol().accept(theirs)
    else:
        return None
    if response.status_code == 101:
        return None
    return HandshakeError(response.status_code, response.body.decode(errors="replace").strip())


def _subprotocols_parse(values: Iterable[str]) -> bool:
    try:
        for value in values:
            parse_subprotocol(value)
    except InvalidHeader:
        return False
    return True


def _is_key(key: str) -> bool:
    """A ``Sec-WebSocket-Key`` websockets accepts: 16 bytes in strict base64."""
    if len(key) != 24:
        return False
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except ValueError:  # binascii.Error, or a character outside ASCII
        return False


def _offer(request: HttpRequest, name: str) -> str | None:
    values = request.headers.get_all(name)
    return ", ".join(values) if values else None


def switching_protocols(
    request: HttpRequest, *, subprotocol: str | None, extensions: str | None
) -> bytes:
    """The 101 response for the client, carrying the backend's subprotocol and extensions.

    ``request`` passed :func:`check_upgrade`; the response is the one websockets' server gives,
    written directly (a second ``ServerProtocol`` per handshake cost about 4 % of its CPU).
    """
    head = [
        b"HTTP/1.1 101 Switching Protocols\r\nDate: ",
        _http_date(),
        b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ",
        accept_key(request.headers["Sec-WebSocket-Key"]).encode(),
    ]
    if subprotocol is not None:
        head += [b"\r\nSec-WebSocket-Protocol: ", subprotocol.encode()]
    if extensions is not None:
        head += [b"\r\nSec-WebSocket-Extensions: ", extensions.encode()]
    head.append(b"\r\n\r\n")
    return b"".join(head)


@functools.lru_cache(maxsize=2)
def _date_of(second: int) -> bytes:
    return email.utils.formatdate(second, usegmt=True).encode()


def _http_date() -> bytes:
    """The ``Date`` header's value, formatted once per second."""
    return _date_of(int(time.time()))


def plain_response(
    status: int,
    text: str,
    *,
    content_type: str = "text/plain; charset=utf-8",
    headers: Iterable[tuple[str, str]] = (),
) -> bytes:
    """A complete HTTP/1.1 response that closes the connection (426 names the upgrade), with
    ``headers`` besides its own."""
    body = text.encode()
    fields = Headers(
        [
            ("Connection", "close"),
            ("Content-Length", str(len(body))),
            ("Content-Type", content_type),
            ("Cache-Control", "no-store"),
            *headers,
        ]
    )
    if status == 426:
        fields["Upgrade"] = "websocket"
    return Response(status, http.HTTPStatus(status).phrase, fields, body).serialize()


def forwarded_headers(
    client_headers: Iterable[tuple[str, str]],
    *,
    forward_headers: Iterable[str],
    relay_headers: Iterable[tuple[str, str]],
    client_host: str,
    secure_client: bool,
    host: str | None,
) -> list[tuple[str, str]]:
    """What a backend request carries besides the handshake, in every front: the client's
    headers on the ``forward_headers`` allow-list (never a reserved one, nor one the relay
    sets), ``relay_headers`` (the principal header), then ``X-Forwarded-For``, ``-Proto`` and,
    when the client named the host, ``-Host``."""
    own = list(relay_headers)
    allowed = {name.lower() for name in forward_headers} - RESERVED_HEADERS
    allowed -= {name.lower() for name, _ in own}
    out = [(n, v) for n, v in client_headers if n.lower() in allowed] if allowed else []
    out += own
    out.append(("X-Forwarded-For", client_host))
    out.append(("X-Forwarded-Proto", "wss" if secure_client else "ws"))
    if host is not None:
        out.append(("X-Forwarded-Host", host))
    return out


@attrs.frozen(kw_only=True)
class BackendHandshake:
    """The request the relay sends to a backend, and the check of the backend's response."""

    url: str
    host: str
    port: int
    secure: bool
    request: bytes
    key: str
    offered_subprotocols: tuple[str, ...]
    offered_deflate: bool = False

    @classmethod
    def build(
        cls,
        url: str,
        client: HttpRequest,
        *,
        forward_headers: Iterable[str],
        offer_extensions: bool = True,
        client_host: str,
        secure_client: bool,
        relay_headers: Iterable[tuple[str, str]] = (),
    ) -> BackendHandshake:
        """The backend request: the client's subprotocol offer, its permessage-deflate offer
        (no other extension) unless ``offer_extensions`` is false, the allow-listed headers,
        ``X-Forwarded-*`` and ``relay_headers`` (headers the relay sets: never copied from the
        client). Raises :class:`HandshakeError` for unsafe values."""
        uri, resource, fixed = _backend_target(url)
        key = _new_key()
        # the headers websockets' ClientProtocol.connect() writes, then the relay's
        headers = [
            *fixed,
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", key),
            ("Sec-WebSocket-Version", "13"),
        ]
        subprotocols = _offer(client, "Sec-WebSocket-Protocol")
        if subprotocols is not None:
            headers.append(("Sec-WebSocket-Protocol", subprotocols))
        deflate = None
        if offer_extensions:
            deflate = deflate_offer(client.headers.get_all("Sec-WebSocket-Extensions"))
            if deflate is not None:
                headers.append(("Sec-WebSocket-Extensions", deflate))
        headers += forwarded_headers(
            client.headers.raw_items(),
            forward_headers=forward_headers,
            relay_headers=relay_headers,
            client_host=client_host,
            secure_client=secure_client,
            host=client.host,
        )
        if not _VALUE.fullmatch("".join(value for _, value in headers)):  # a class of characters
            raise HandshakeError(400, "a forwarded header holds forbidden characters")
        try:
            offered = tuple(
                p
                for v in client.headers.get_all("Sec-WebSocket-Protocol")
                for p in parse_subprotocol(v)
            )
        except InvalidHeader as exc:
            raise HandshakeError(400, f"invalid Sec-WebSocket-Protocol: {exc}") from None
        return cls(
            url=url,
            host=uri.host,
            port=uri.port,
            secure=uri.secure,
            request=_serialize(resource, headers),
            key=key,
            offered_subprotocols=offered,
            offered_deflate=deflate is not None,
        )

    def check(self, response: HttpResponse) -> tuple[str | None, Agreement | None]:
        """The backend's chosen subprotocol and permessage-deflate agreement. Raises
        :class:`HandshakeError` (502), also for an extension that was not offered."""
        if response.status_code != 101:
            raise HandshakeError(
                502, f"backend refused the upgrade: {response.status_code} {response.reason_phrase}"
            )
        headers = response.headers
        upgrade = headers.get_all("Upgrade")
        connection = ",".join(headers.get_all("Connection")).lower()
        if [v.lower() for v in upgrade] != ["websocket"]:
            raise _bad_backend_header("Upgrade", upgrade)
        if "upgrade" not in connection:
            raise _bad_backend_header("Connection", headers.get_all("Connection"))
        accept = headers.get_all("Sec-WebSocket-Accept")
        if accept != [accept_key(self.key)]:
            raise _bad_backend_header("Sec-WebSocket-Accept", accept)
        protocols = headers.get_all("Sec-WebSocket-Protocol")
        if len(protocols) > 1 or (protocols and protocols[0] not in self.offered_subprotocols):
            raise _bad_backend_header("Sec-WebSocket-Protocol", protocols)
        extensions = ", ".join(headers.get_all("Sec-WebSocket-Extensions"))
        agreement = None
        if extensions:
            if not self.offered_deflate:
                raise HandshakeError(502, f"backend chose extensions not offered: {extensions}")
            try:
                agreement = deflate_agreement(extensions)
            except ValueError as exc:
                raise HandshakeError(502, f"backend sent an invalid handshake: {exc}") from None
        return (protocols[0] if protocols else None), agreement


def deflate_offer(offers: list[str]) -> str | None:
    """The client's permessage-deflate offers (``Sec-WebSocket-Extensions`` values), without
    any other extension (the relay reads no other); ``None`` when none is left or the header
    cannot be read."""
    try:
        wanted = [e for value in offers for e in parse_extension(value) if e[0] == DEFLATE]
    except InvalidHeader:
        return None
    return build_extension(wanted) if wanted else None


def deflate_agreement(response: str) -> Agreement:
    """The permessage-deflate agreement in a backend's ``Sec-WebSocket-Extensions``. Raises
    :class:`ValueError` when it is unreadable or not one the relay can follow."""
    try:
        extensions = parse_extension(response)
    except InvalidHeader as exc:
        raise ValueError(f"unreadable Sec-WebSocket-Extensions {response!r}: {exc}") from None
    return Agreement.from_extensions(extensions, response)


def _bad_backend_header(name: str, values: list[str]) -> HandshakeError:
    """502 naming what is wrong with a header of the backend's 101: missing, repeated, or a
    wrong value (which is not repeated: it may be long, and it is the backend's to log)."""
    if not values:
        what = f"missing {name} header"
    elif len(values) > 1:
        what = f"more than one {name} header"
    else:
        what = f"wrong {name} header"
    return HandshakeError(502, f"backend sent an invalid handshake: {what}")


def _serialize(target: str, headers: list[tuple[str, str]]) -> bytes:
    """The bytes of ``Request(target, Headers(headers)).serialize()`` (an ASCII target;
    header values round-trip as ISO-8859-1, as websockets writes them)."""
    lines = [f"GET {target} HTTP/1.1\r\n", *(f"{n}: {v}\r\n" for n, v in headers), "\r\n"]
    return "".join(lines).encode("iso-8859-1")


_KEY_POOL: list[bytes] = []


def _new_key() -> str:
    """A fresh ``Sec-WebSocket-Key``: 16 random bytes in base64, as websockets' client makes
    them, drawn from the system's generator 64 keys at a time (one call instead of 64)."""
    if not _KEY_POOL:
        pool = os.urandom(16 * 64)
        _KEY_POOL.extend(pool[i : i + 16] for i in range(0, len(pool), 16))
    return base64.b64encode(_KEY_POOL.pop()).decode()


if hasattr(os, "register_at_fork"):  # a child never repeats its parent's keys
    os.register_at_fork(after_in_child=_KEY_POOL.clear)


@functools.lru_cache(maxsize=1024)
def _backend_target(url: str) -> tuple[WebSocketURI, str, tuple[tuple[str, str], ...]]:
    """A backend URL parsed once: its URI, request target, ``Host`` and ``Authorization``."""
    try:
        uri = parse_uri(url)
    except ValueError as exc:
        raise HandshakeError(502, f"invalid backend URL: {exc}") from None
    resource = uri.resource_name
    if not _TARGET.fullmatch(resource):
        raise HandshakeError(400, "the backend path would hold forbidden characters")
    fixed = [("Host", build_host(uri.host, uri.port, uri.secure))]
    if uri.user_info:
        fixed.append(("Authorization", build_authorization_basic(*uri.user_info)))
    return uri, resource, tuple(fixed)
