"""Both HTTP/1.1 opening handshakes, built and parsed with websockets' sans-I/O pieces.

The relay reads the client's request, checks it as a WebSocket server would, builds the request
it sends to the backend and checks the backend's answer; the shell only moves the bytes.
"""

from __future__ import annotations

import email.utils
import functools
import http
import re
import time
from collections.abc import Generator, Iterable
from typing import Any

import attrs
from websockets.datastructures import Headers
from websockets.exceptions import InvalidHeader, InvalidHeaderValue, SecurityError
from websockets.headers import build_authorization_basic, build_host, parse_subprotocol
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol
from websockets.streams import StreamReader
from websockets.uri import WebSocketURI, parse_uri
from websockets.utils import accept_key, generate_key

__all__ = [
    "BackendHandshake",
    "HandshakeError",
    "RequestParser",
    "ResponseParser",
    "check_upgrade",
    "is_upgrade",
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
    )
)
# What may stand in a request target and a header value on the wire: no CR, LF, NUL or space.
_TARGET = re.compile(r"[\x21-\x7e]+")
_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


class HandshakeError(Exception):
    """A handshake that cannot go on; ``status`` is the HTTP status the client gets."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class _Parser:
    """Feeds bytes to one of websockets' generator-based HTTP parsers."""

    def __init__(self, parse: Generator[None, None, Any], reader: StreamReader) -> None:
        self._reader = reader
        self._parse = parse
        next(self._parse)

    def _feed(self, data: bytes, *, eof: bool = False) -> Any:
        if eof:
            self._reader.feed_eof()
        else:
            self._reader.feed_data(data)
        try:
            next(self._parse)
        except StopIteration as done:
            return done.value
        return None

    @property
    def leftover(self) -> bytes:
        """Bytes received after the end of the HTTP message."""
        return bytes(self._reader.buffer)


class RequestParser(_Parser):
    """The client's handshake request, fed as it arrives."""

    def __init__(self) -> None:
        reader = StreamReader()
        super().__init__(Request.parse(reader.read_line), reader)

    def feed(self, data: bytes) -> Request | None:
        """The request once complete, else ``None``. Raises :class:`HandshakeError`."""
        try:
            request: Request | None = self._feed(data)
        except EOFError:
            raise HandshakeError(400, "incomplete HTTP request") from None
        except SecurityError as exc:  # a line too long or too many headers
            raise HandshakeError(431, f"HTTP request too large: {exc}") from None
        except (NotImplementedError, ValueError, RuntimeError) as exc:
            # websockets' too-long and too-many errors derive from these
            raise HandshakeError(400, f"invalid HTTP request: {exc}") from None
        if request is not None and not _TARGET.fullmatch(request.path):
            raise HandshakeError(400, "invalid request target")
        return request


class ResponseParser(_Parser):
    """The backend's handshake response, fed as it arrives."""

    def __init__(self) -> None:
        reader = StreamReader()
        parse = Response.parse(reader.read_line, reader.read_exact, reader.read_to_eof)
        super().__init__(parse, reader)

    def feed(self, data: bytes, *, eof: bool = False) -> Response | None:
        """The response once complete, else ``None``. Raises :class:`HandshakeError` (502)."""
        try:
            response: Response | None = self._feed(data, eof=eof)
        except EOFError:
            raise HandshakeError(
                502, "backend closed the connection during the handshake"
            ) from None
        except (NotImplementedError, ValueError, RuntimeError, LookupError, SecurityError) as exc:
            raise HandshakeError(502, f"backend sent an invalid HTTP response: {exc}") from None
        return response


def is_upgrade(request: Request) -> bool:
    """Whether the request asks for a WebSocket upgrade at all."""
    return any("websocket" in v.lower() for v in request.headers.get_all("Upgrade"))


# Checks requests with ``process_request``, which keeps nothing of them that the relay reads.
_CHECKER = ServerProtocol()


def check_upgrade(request: Request) -> HandshakeError | None:
    """What is wrong with a WebSocket upgrade request, as websockets' server judges it.

    A valid request costs one ``process_request`` on a shared protocol; an invalid one gets a
    fresh protocol's ``accept``, whose response gives the status and the reason.
    """
    try:
        _CHECKER.process_request(request)
    except Exception:  # noqa: BLE001 - accept() below classifies it, as the server would
        response = ServerProtocol().accept(request)
    else:
        return None
    if response.status_code == 101:
        return None
    return HandshakeError(response.status_code, response.body.decode(errors="replace").strip())


def _offer(request: Request, name: str) -> str | None:
    values = request.headers.get_all(name)
    return ", ".join(values) if values else None


def switching_protocols(
    request: Request, *, subprotocol: str | None, extensions: str | None
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
    status: int, text: str, *, content_type: str = "text/plain; charset=utf-8"
) -> bytes:
    """A complete HTTP/1.1 response that closes the connection (426 names the upgrade)."""
    body = text.encode()
    headers = Headers(
        [
            ("Connection", "close"),
            ("Content-Length", str(len(body))),
            ("Content-Type", content_type),
            ("Cache-Control", "no-store"),
        ]
    )
    if status == 426:
        headers["Upgrade"] = "websocket"
    return Response(status, http.HTTPStatus(status).phrase, headers, body).serialize()


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

    @classmethod
    def build(
        cls,
        url: str,
        client: Request,
        *,
        forward_headers: Iterable[str],
        offer_extensions: bool = True,
        client_host: str,
        secure_client: bool,
    ) -> BackendHandshake:
        """The backend request: the client's subprotocol offer, its extension offer unless
                ``offer_extensions`` is false, the allow-listed headers and ``X-Forwarded-*``.
        Raises :class:`HandshakeError` for unsafe values."""
        uri, resource, fixed = _backend_target(url)
        key = generate_key()
        # the headers websockets' ClientProtocol.connect() writes, then the relay's
        headers = [
            *fixed,
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", key),
            ("Sec-WebSocket-Version", "13"),
        ]
        offers = ["Sec-WebSocket-Protocol"]
        if offer_extensions:
            offers.append("Sec-WebSocket-Extensions")
        for name in offers:
            offer = _offer(client, name)
            if offer is not None:
                headers.append((name, offer))
        allowed = {name.lower() for name in forward_headers} - RESERVED_HEADERS
        if allowed:
            headers += [(n, v) for n, v in client.headers.raw_items() if n.lower() in allowed]
        headers.append(("X-Forwarded-For", client_host))
        headers.append(("X-Forwarded-Proto", "wss" if secure_client else "ws"))
        if "Host" in client.headers:
            headers.append(("X-Forwarded-Host", client.headers["Host"]))
        if not all(_VALUE.fullmatch(value) for _, value in headers):
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
        )

    def check(self, response: Response) -> tuple[str | None, str | None]:
        """The backend's chosen subprotocol and extensions. Raises :class:`HandshakeError`."""
        if response.status_code != 101:
            raise HandshakeError(
                502, f"backend refused the upgrade: {response.status_code} {response.reason_phrase}"
            )
        headers = response.headers
        try:
            upgrade = headers.get_all("Upgrade")
            connection = ",".join(headers.get_all("Connection")).lower()
            if [v.lower() for v in upgrade] != ["websocket"] or "upgrade" not in connection:
                raise InvalidHeaderValue("Upgrade")
            if headers["Sec-WebSocket-Accept"] != accept_key(self.key):
                raise InvalidHeaderValue("Sec-WebSocket-Accept")
            protocols = headers.get_all("Sec-WebSocket-Protocol")
            if len(protocols) > 1 or (protocols and protocols[0] not in self.offered_subprotocols):
                raise InvalidHeaderValue("Sec-WebSocket-Protocol")
        except (KeyError, LookupError, InvalidHeader) as exc:
            raise HandshakeError(502, f"backend sent an invalid handshake: {exc}") from None
        extensions = headers.get_all("Sec-WebSocket-Extensions")
        return (protocols[0] if protocols else None), (", ".join(extensions) or None)


def _serialize(target: str, headers: list[tuple[str, str]]) -> bytes:
    """The bytes of ``Request(target, Headers(headers)).serialize()`` (an ASCII target;
    header values round-trip as ISO-8859-1, as websockets writes them)."""
    lines = [f"GET {target} HTTP/1.1\r\n", *(f"{n}: {v}\r\n" for n, v in headers), "\r\n"]
    return "".join(lines).encode("iso-8859-1")


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
