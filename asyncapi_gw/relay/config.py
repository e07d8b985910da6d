"""The relay's settings: one frozen value object, mirrored by the ``serve`` command's options."""

from __future__ import annotations

import enum
import re
from typing import Any
from urllib.parse import urlsplit

import attrs

from asyncapi_gw.relay.auth import AuthConfig
from asyncapi_gw.relay.principal import DEFAULT_HEADER
from asyncapi_gw.relay.quota import DEFAULT_LEASE, QuotaStoreFailure

__all__ = [
    "DEFAULT_ADMIN_PORT",
    "DEFAULT_DRAIN_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_OPEN_TIMEOUT",
    "DEFAULT_PING_INTERVAL",
    "DEFAULT_PING_TIMEOUT",
    "DEFAULT_PRINCIPAL_HEADER",
    "DEFAULT_QUOTA_LEASE",
    "OnInvalid",
    "OnThrottle",
    "OnWrongDirection",
    "QuotaStoreFailure",
    "RelayConfig",
]

DEFAULT_MAX_MESSAGE_SIZE = 1 << 20  # 1 MiB, as websockets' own default
DEFAULT_OPEN_TIMEOUT = 10.0
DEFAULT_DRAIN_TIMEOUT = 10.0
DEFAULT_PING_INTERVAL = 20.0
DEFAULT_PING_TIMEOUT = 20.0
DEFAULT_IDLE_TIMEOUT = 600.0  # 10 minutes without a data message, as AWS API Gateway's WebSockets
DEFAULT_ADMIN_PORT = 9098  # what ``asyncapi-gw serve`` binds on the loopback unless told otherwise
DEFAULT_PRINCIPAL_HEADER = DEFAULT_HEADER
DEFAULT_QUOTA_LEASE = DEFAULT_LEASE


class OnWrongDirection(enum.Enum):
    """What a message against its topic's direction meets: one from the client on a topic
    without publish, or from the backend on a topic without subscribe."""

    CLOSE = "close"  # close the connection with 1008 (policy violation)
    DROP = "drop"  # drop the message and count it


class OnThrottle(enum.Enum):
    """What a message over the quota meets."""

    REPLY = "reply"  # dropped; a client gets WSO2's text frame "Error code: 4003 ..."
    CLOSE = "close"  # close the connection with 4003


class OnInvalid(enum.Enum):
    """What a message that fails its topic's message schema meets (``validate_messages``)."""

    CLOSE = "close"  # close the connection with 1007 (invalid payload data)
    DROP = "drop"  # drop the message and count it


def _port(_inst: object, attr: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and not 0 <= value <= 65535:
        raise ValueError(f"{attr.name} must be between 0 and 65535, not {value}")


_TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")


def _header_name(_inst: object, attr: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and not _TOKEN.fullmatch(value):
        raise ValueError(f"{attr.name} must be an HTTP header name, not {value!r}")


def _store_url(_inst: object, attr: attrs.Attribute[Any], value: str | None) -> None:
    if value is None:
        return
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises for a port out of range or not a number
    except ValueError as exc:
        raise ValueError(f"{attr.name} is not a URL: {exc}") from None
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError(f"{attr.name} needs a socket path: unix:///PATH?db=N")
        return
    database = parts.path.removeprefix("/")
    if (
        parts.scheme not in ("redis", "rediss")
        or not parts.hostname
        or not (database == "" or database.isdigit())
    ):
        shown = value
        if parts.password:  # an error message is no place for a password
            shown = value.replace(f":{parts.password}@", ":***@", 1)
        raise ValueError(
            f"{attr.name} must be redis://HOST:PORT/DB, rediss://... or unix:///PATH, not {shown!r}"
        )


def _positive(_inst: object, attr: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and value <= 0:
        raise ValueError(f"{attr.name} must be positive, not {value}")


@attrs.frozen(kw_only=True)
class RelayConfig:
    """How a :class:`~asyncapi_gw.relay.Relay` listens, authenticates, limits and logs.

    Ports are shifted by ``port_offset``; ``None`` turns a listener off. The ``wss`` listener
    runs only with ``tls_cert`` and ``tls_key``. The admin listener (``GET /health`` and
    ``GET /metrics``, plain HTTP) binds ``admin_host:admin_port``; it is off by default here
    (an embedding program owns its ports), on by default in ``asyncapi-gw serve``.

    Timeouts are in seconds; ``None`` disables one. ``open_timeout`` bounds the whole opening
    handshake from the client's connection: its request (else dropped unanswered) and the
    backend's handshake (else 504). ``ping_interval``: how often the relay pings both sides;
    a side that sends nothing within ``ping_timeout`` after a ping is lost (1011).
    ``idle_timeout``: a connection that carries no data message either way for that long is
    closed (1001).

    ``max_message_size`` bounds each message's payload (1009); with permessage-deflate it
    bounds both the compressed and the decompressed size. ``compression`` false strips the
    permessage-deflate offer, so messages cross uncompressed. ``principal_quota`` (events per
    the API's throttling unit) overrides every throttled API's per-principal limit.
    ``principal_header`` names a header the relay sets on the backend request to say who the
    client is (see :mod:`asyncapi_gw.relay.principal`); a client's own copy never passes.
    ``access_log`` is a file path, ``"-"`` for standard error, or ``None`` for no access log.

    ``on_wrong_direction``, ``on_throttle`` and ``on_invalid`` take their enum's members or
    their values, the ``serve`` command's words (``"drop"`` is ``OnWrongDirection.DROP``).

    ``reuse_port`` binds the ``ws`` and ``wss`` listeners with ``SO_REUSEPORT``, so that several
    processes can listen on the same port and the kernel spreads new connections over them
    (``asyncapi-gw serve --workers``); the admin listener is never shared.

    ``quota_store`` (``redis://HOST:PORT/DB``) counts the API and principal quotas in Redis, for
    every process and relay instance that names the same store; each process may pass
    ``quota_lease`` events of a quota on credit (its first lease; busier quotas lease more at a
    time, up to a tenth of the limit), and ``quota_store_failure`` says what the
    quotas do while Redis cannot be reached (see :mod:`asyncapi_gw.relay.quota_store`).
    """

    host: str = "127.0.0.1"
    ws_port: int | None = attrs.field(default=9099, validator=_port)
    wss_port: int | None = attrs.field(default=8099, validator=_port)
    port_offset: int = 0
    admin_host: str = "127.0.0.1"
    admin_port: int | None = attrs.field(default=None, validator=_port)
    tls_cert: str | None = None
    tls_key: str | None = None
    auth: AuthConfig | None = None
    max_message_size: int = attrs.field(default=DEFAULT_MAX_MESSAGE_SIZE, validator=_positive)
    compression: bool = True
    max_connections: int | None = attrs.field(default=None, validator=_positive)
    on_wrong_direction: OnWrongDirection = attrs.field(
        default=OnWrongDirection.CLOSE, converter=OnWrongDirection
    )
    on_throttle: OnThrottle = attrs.field(default=OnThrottle.REPLY, converter=OnThrottle)
    principal_quota: int | None = attrs.field(default=None, validator=_positive)
    validate_messages: bool = False
    on_invalid: OnInvalid = attrs.field(default=OnInvalid.CLOSE, converter=OnInvalid)
    forward_query: bool = True
    forward_headers: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    principal_header: str | None = attrs.field(default=None, validator=_header_name)
    open_timeout: float = attrs.field(default=DEFAULT_OPEN_TIMEOUT, validator=_positive)
    close_timeout: float = attrs.field(default=5.0, validator=_positive)
    drain_timeout: float = attrs.field(default=DEFAULT_DRAIN_TIMEOUT, validator=_positive)
    ping_interval: float | None = attrs.field(default=DEFAULT_PING_INTERVAL, validator=_positive)
    ping_timeout: float | None = attrs.field(default=DEFAULT_PING_TIMEOUT, validator=_positive)
    idle_timeout: float | None = attrs.field(default=DEFAULT_IDLE_TIMEOUT, validator=_positive)
    write_buffer_limit: int = attrs.field(default=256 * 1024, validator=_positive)
    access_log: str | None = None
    reuse_port: bool = False
    quota_store: str | None = attrs.field(default=None, validator=_store_url)
    quota_store_failure: QuotaStoreFailure = attrs.field(
        default=QuotaStoreFailure.LOCAL, converter=QuotaStoreFailure
    )
    quota_lease: int = attrs.field(default=DEFAULT_QUOTA_LEASE, validator=_positive)

    def __attrs_post_init__(self) -> None:
        for port in (self.ws_port, self.wss_port, self.admin_port):
            if port and not 0 < port + self.port_offset <= 65535:
                raise ValueError(f"port {port} shifted by {self.port_offset} is out of range")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")

    @property
    def ws_bind_port(self) -> int | None:
        """The ``ws`` port to bind (offset applied), or ``None`` when off."""
        return None if self.ws_port is None else self._shift(self.ws_port)

    @property
    def wss_bind_port(self) -> int | None:
        """The ``wss`` port to bind (offset applied), or ``None`` when off or without TLS."""
        if self.wss_port is None or self.tls_cert is None:
            return None
        return self._shift(self.wss_port)

    @property
    def admin_bind_port(self) -> int | None:
        """The admin port to bind (offset applied), or ``None`` when off."""
        return None if self.admin_port is None else self._shift(self.admin_port)

    def _shift(self, port: int) -> int:
        return port if port == 0 else port + self.port_offset
