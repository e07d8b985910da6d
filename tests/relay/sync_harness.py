"""Shared pieces of the synchronous relay core tests (gate, connection): a clock to set and the
APIs they route to."""

from __future__ import annotations

from typing import Any

from asyncapi_gw.model import (
    AuthKind,
    Endpoint,
    Operation,
    SecurityScheme,
    StreamingAPI,
    Topic,
    TopicOperation,
)


class Clock:
    """An injected clock (monotonic and wall at once): tests move ``now``."""

    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def make_api(**fields: Any) -> StreamingAPI:
    """``Chat`` 1.0 at ``/chat``: a room topic both ways, a subscribe-only feed and a publish-only
    orders topic with a payload schema."""
    defaults: dict[str, Any] = {
        "name": "Chat",
        "version": "1.0",
        "context": "/chat",
        "production_endpoint": Endpoint(url="ws://backend.example:8080/ws"),
        "topics": (
            Topic(
                name="/rooms/{id}",
                publish=TopicOperation(operation=Operation.PUBLISH),
                subscribe=TopicOperation(operation=Operation.SUBSCRIBE),
            ),
            Topic(name="/feed", subscribe=TopicOperation(operation=Operation.SUBSCRIBE)),
            Topic(
                name="/orders",
                publish=TopicOperation(
                    operation=Operation.PUBLISH,
                    message={"payload": {"type": "object", "required": ["id"]}},
                ),
            ),
        ),
    }
    return StreamingAPI(**{**defaults, **fields})


SECURED = make_api(
    name="Secure",
    context="/secure",
    security=(SecurityScheme(name="key", kind=AuthKind.API_KEY),),
)
"""The same topics at ``/secure``, behind an API key."""
