"""asyncapi-gw: AsyncAPI 2.x WebSocket APIs — import, validate, create, export and relay."""

from __future__ import annotations

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
    Operation,
    Parameter,
    SecurityScheme,
    StreamingAPI,
    Throttling,
    ThrottlingUnit,
    Topic,
    TopicOperation,
)

__all__ = [
    "AsyncAPIGwError",
    "AuthKind",
    "AuthType",
    "ConversionError",
    "DocumentError",
    "Endpoint",
    "Operation",
    "Parameter",
    "Problem",
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
]
