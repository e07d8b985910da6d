"""The relay gateway: serves AsyncAPI-described WebSocket APIs in front of their backends.

``async with Relay([api], ws_port=0) as relay:`` serves until the block ends; see
:class:`RelayConfig` for every option.
"""

from __future__ import annotations

from asyncapi_gw.model import Environment
from asyncapi_gw.relay.asgi import AsgiRelay
from asyncapi_gw.relay.auth import ApiKeyInfo, AuthConfig
from asyncapi_gw.relay.closecode import CloseCode
from asyncapi_gw.relay.config import OnInvalid, OnThrottle, OnWrongDirection, RelayConfig
from asyncapi_gw.relay.credentials import load_auth_config
from asyncapi_gw.relay.metrics import RelayStats
from asyncapi_gw.relay.reload import ReloadReport
from asyncapi_gw.relay.server import Relay

__all__ = [
    "ApiKeyInfo",
    "AsgiRelay",
    "AuthConfig",
    "CloseCode",
    "Environment",
    "OnInvalid",
    "OnThrottle",
    "OnWrongDirection",
    "Relay",
    "RelayConfig",
    "RelayStats",
    "ReloadReport",
    "load_auth_config",
]
