"""asyncapi-gw: AsyncAPI WebSocket APIs — import, validate, create, export and relay."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asyncapi_gw.asyncapi import (
    Conversion,
    ImportResult,
    ValidationReport,
    convert_asyncapi,
    dump_asyncapi,
    export_asyncapi,
    import_asyncapi,
    load_asyncapi,
    loads_asyncapi,
    validate_document,
)
from asyncapi_gw.builder import new_api, parse_topic, topic
from asyncapi_gw.errors import (
    AsyncAPIGwError,
    ConversionError,
    DocumentError,
    Problem,
    RelayError,
    Severity,
    UnsupportedVersionError,
    ValidationError,
)
from asyncapi_gw.model import (
    AuthKind,
    AuthType,
    Endpoint,
    Environment,
    Operation,
    Parameter,
    PointOfView,
    SecurityScheme,
    StreamingAPI,
    Throttling,
    ThrottlingUnit,
    Topic,
    TopicOperation,
)

if TYPE_CHECKING:
    from asyncapi_gw.relay import (
        ApiKeyInfo,
        AuthConfig,
        OnInvalid,
        OnThrottle,
        OnWrongDirection,
        Relay,
        RelayConfig,
    )

__all__ = [
    "ApiKeyInfo",
    "AsyncAPIGwError",
    "AuthConfig",
    "AuthKind",
    "AuthType",
    "Conversion",
    "ConversionError",
    "DocumentError",
    "Endpoint",
    "Environment",
    "ImportResult",
    "OnInvalid",
    "OnThrottle",
    "OnWrongDirection",
    "Operation",
    "Parameter",
    "PointOfView",
    "Problem",
    "Relay",
    "RelayConfig",
    "RelayError",
    "SecurityScheme",
    "Severity",
    "StreamingAPI",
    "Throttling",
    "ThrottlingUnit",
    "Topic",
    "TopicOperation",
    "UnsupportedVersionError",
    "ValidationError",
    "ValidationReport",
    "convert_asyncapi",
    "dump_asyncapi",
    "export_asyncapi",
    "import_asyncapi",
    "load_asyncapi",
    "loads_asyncapi",
    "new_api",
    "parse_topic",
    "topic",
    "validate_document",
]


# The relay's names, loaded on first use.
_RELAY = frozenset(
    {
        "ApiKeyInfo",
        "AuthConfig",
        "OnInvalid",
        "OnThrottle",
        "OnWrongDirection",
        "Relay",
        "RelayConfig",
    }
)


def __getattr__(name: str) -> Any:
    """The relay (and with it ``websockets`` and PyJWT) loads only when it is used."""
    if name in _RELAY:
        from asyncapi_gw import relay  # noqa: PLC0415 - websockets loads only when used

        return getattr(relay, name)
    raise AttributeError(f"module 'asyncapi_gw' has no attribute {name!r}")
