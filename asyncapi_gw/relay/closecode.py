"""Every WebSocket close code the relay sends or checks, named once.

RFC 6455 section 7.4.1 and the IANA registry define the 1000-1015 codes; 4001 and 4003 are
private-range codes the relay shares with WSO2's gateway (a revoked or expired credential, and
throttling). A close frame carries any code of 1000-1003, 1007-1014 or 3000-4999
(:func:`is_sendable`); 1005, 1006 and 1015 name what happened when no close frame (or no code)
arrived and are never sent.
"""

from __future__ import annotations

import enum

__all__ = ["RELAY_CLOSING", "CloseCode", "is_sendable"]


class CloseCode(enum.IntEnum):
    """A close code; an ``int``, so it goes into close frames and compares with received codes."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    """The relay shuts down, a connection was idle too long, or the other side left."""
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005
    """A close frame without a code arrived (never sent)."""
    ABNORMAL_CLOSURE = 1006
    """The connection ended without a close frame (never sent)."""
    INVALID_DATA = 1007
    """A message failed validation, or a text frame was not UTF-8."""
    POLICY_VIOLATION = 1008
    """A message against the topic's direction."""
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    """A side did not answer the relay's keepalive ping in time."""
    SERVICE_RESTART = 1012
    """A reload removed or changed the connection's topic, route or backend: reconnect."""
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    """To the client: the backend broke the protocol or the policy, or its connection was lost."""
    TLS_HANDSHAKE = 1015
    """A TLS handshake failed (never sent)."""
    REVOKED = 4001
    """The connection's credential expired or is no longer accepted on its topic."""
    THROTTLED = 4003
    """``on_throttle="close"``: a message over the quota (WSO2's throttling code)."""


RELAY_CLOSING = (CloseCode.GOING_AWAY, "relay closing")
"""What the backend gets whenever the relay closes a connection for its own reasons
(shutdown, idleness, a credential's expiry, a reload): the client gets the reason."""

_SENDABLE = frozenset(c for c in CloseCode if c < 3000) - {
    CloseCode.NO_STATUS_RCVD,
    CloseCode.ABNORMAL_CLOSURE,
    CloseCode.TLS_HANDSHAKE,
}


def is_sendable(code: int) -> bool:
    """Whether a close frame may carry ``code`` (RFC 6455 section 7.4)."""
    return code in _SENDABLE or 3000 <= code < 5000
