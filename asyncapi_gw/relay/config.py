"""The relay's settings: one frozen value object, mirrored by the ``serve`` command's options."""

from __future__ import annotations

from typing import Any, Literal

import attrs

from asyncapi_gw.relay.auth import AuthConfig

__all__ = ["OnInvalid", "OnThrottle", "OnWrongDirection", "RelayConfig"]

OnWrongDirection = Literal["close", "drop"]
OnThrottle = Literal["reply", "close"]
OnInvalid = Literal["close", "drop"]


def _port(_inst: object, attr: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and not 0 <= value <= 65535:
        raise ValueError(f"{attr.name} must be between 0 and 65535, not {value}")


def _positive(_inst: object, attr: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and value <= 0:
        raise ValueError(f"{attr.name} must be positive, not {value}")


@attrs.frozen(kw_only=True)
class RelayConfig:
    """How a :class:`~asyncapi_gw.relay.Relay` listens, authenticates, limits and logs.

    Ports are shifted by ``port_offset``; ``None`` turns a listener off. The ``wss`` listener
    runs only with ``tls_cert`` and ``tls_key``. Timeouts are in seconds; ``None`` disables one.
    ``open_timeout`` bounds the whole opening handshake from the client's connection: its
    request (else dropped unanswered) and the backend's handshake (else 504).
    ``access_log`` is a file path, ``"-"`` for standard error, or ``None`` for no access log.
    """

    host: str = "127.0.0.1"
    ws_port: int | None = attrs.field(default=9099, validator=_port)
    wss_port: int | None = attrs.field(default=8099, validator=_port)
    port_offset: int = 0
    tls_cert: str | None = None
    tls_key: str | None = None
    auth: AuthConfig | None = None
    max_message_size: int = attrs.field(default=1 << 20, validator=_positive)
    max_connections: int | None = attrs.field(default=None, validator=_positive)
    on_wrong_direction: OnWrongDirection = "close"
    on_throttle: OnThrottle = "reply"
    validate_messages: bool = False
    on_invalid: OnInvalid = "close"
    forward_query: bool = True
    forward_headers: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    open_timeout: float = attrs.field(default=10.0, validator=_positive)
    close_timeout: float = attrs.field(default=5.0, validator=_positive)
    drain_timeout: float = attrs.field(default=10.0, validator=_positive)
    ping_interval: float | None = attrs.field(default=20.0, validator=_positive)
    ping_timeout: float | None = attrs.field(default=20.0, validator=_positive)
    idle_timeout: float | None = attrs.field(default=None, validator=_positive)
    write_buffer_limit: int = attrs.field(default=256 * 1024, validator=_positive)
    access_log: str | None = None

    def __attrs_post_init__(self) -> None:
        for port in (self.ws_port, self.wss_port):
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

    def _shift(self, port: int) -> int:
        return port if port == 0 else port + self.port_offset
