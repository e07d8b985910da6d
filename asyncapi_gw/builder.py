"""Create a streaming API from scratch, as WSO2's "Create WebSocket API" form does.

>>> api = new_api(name="Chats", version="1.0.0", endpoint="ws://chat.example:8080",
...               topics=[topic("/rooms/{roomId}", uri_mapping="/rooms/{uri.var.roomId}")])
>>> api.gateway_path
'/chats/1.0.0'

An API with no topics gets WSO2's default topic ``/*`` with publish and subscribe.  Invalid
values raise :class:`~asyncapi_gw.errors.ConversionError` with a problem naming the field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

import attrs

from asyncapi_gw.errors import ConversionError, Problem
from asyncapi_gw.model import (
    AuthKind,
    AuthType,
    Endpoint,
    Operation,
    Parameter,
    SecurityScheme,
    StreamingAPI,
    Throttling,
    Topic,
    TopicOperation,
    default_context,
)

__all__ = ["AUTH_CHOICES", "DEFAULT_TOPIC", "OPERATION_CHOICES", "new_api", "parse_topic", "topic"]

DEFAULT_TOPIC = "/*"
AUTH_CHOICES = ("oauth2", "api_key", "none")
OPERATION_CHOICES = {
    "pub": (Operation.PUBLISH,),
    "sub": (Operation.SUBSCRIBE,),
    "pubsub": (Operation.PUBLISH, Operation.SUBSCRIBE),
}

T = TypeVar("T")


def _checked(field: str, build: Callable[[], T]) -> T:
    try:
        return build()
    except (ValueError, TypeError) as exc:
        raise ConversionError(
            f"invalid {field}: {exc}",
            [Problem(pointer="", message=str(exc), rule=f"invalid-{field}")],
        ) from None


def topic(
    name: str,
    operations: str = "pubsub",
    *,
    uri_mapping: str | None = None,
    description: str | None = None,
    scopes: Iterable[str] = (),
    auth_type: AuthType | None = None,
) -> Topic:
    """A topic with ``pub``, ``sub`` or ``pubsub`` operations sharing one URL mapping.

    Every ``{name}`` in the topic name becomes a string parameter.
    """
    if operations not in OPERATION_CHOICES:
        raise ConversionError(
            f"invalid topic operations {operations!r}: use pub, sub or pubsub",
            [Problem(pointer="", message=f"unknown operations {operations!r}",
                     rule="invalid-topic")],
        )
    ops = {
        op: TopicOperation(operation=op, uri_mapping=uri_mapping, scopes=tuple(scopes))
        for op in OPERATION_CHOICES[operations]
    }

    def build() -> Topic:
        bare = Topic(
            name=name,
            description=description,
            publish=ops.get(Operation.PUBLISH),
            subscribe=ops.get(Operation.SUBSCRIBE),
            auth_type=auth_type,
        )
        names = dict.fromkeys(bare.template_parameters)
        return attrs.evolve(
            bare, parameters=[Parameter(name=p, schema={"type": "string"}) for p in names]
        )

    return _checked("topic", build)


def parse_topic(spec: str) -> Topic:
    """A topic from the CLI form ``NAME[:pub|:sub|:pubsub][=URL_MAPPING]``.

    The mapping follows the first ``=`` (it may carry a query string with more ``=``).
    """
    name, _, mapping = spec.partition("=")
    operations = "pubsub"
    head, sep, tail = name.rpartition(":")
    if sep and tail in OPERATION_CHOICES:
        name, operations = head, tail
    return topic(name, operations, uri_mapping=mapping or None)


def new_api(
    *,
    name: str,
    version: str,
    endpoint: str,
    context: str | None = None,
    sandbox_endpoint: str | None = None,
    topics: Iterable[Topic] = (),
    auth: str = "none",
    description: str | None = None,
    throttling: Throttling | None = None,
) -> StreamingAPI:
    """A new WebSocket API; ``auth`` is ``oauth2``, ``api_key`` or ``none``.

    With ``oauth2`` the scheme declares every scope the topics name.
    """
    if auth not in AUTH_CHOICES:
        raise ConversionError(
            f"invalid auth {auth!r}: use oauth2, api_key or none",
            [Problem(pointer="", message=f"unknown auth {auth!r}", rule="invalid-auth")],
        )
    topic_list = list(topics) or [topic(DEFAULT_TOPIC)]
    security: list[SecurityScheme] = []
    if auth == "oauth2":
        scopes = dict.fromkeys(s for t in topic_list for s in t.scopes)
        security.append(SecurityScheme(name="oauth2", kind=AuthKind.OAUTH2,
                                       scopes={s: s for s in scopes}))
    elif auth == "api_key":
        security.append(SecurityScheme(name="api_key", kind=AuthKind.API_KEY))
    production = _checked("endpoint", lambda: Endpoint(url=endpoint))
    sandbox = (
        _checked("sandbox-endpoint", lambda: Endpoint(url=sandbox_endpoint))
        if sandbox_endpoint is not None
        else None
    )
    return _checked(
        "api",
        lambda: StreamingAPI(
            name=name,
            version=version,
            context=context if context is not None else default_context(name),
            description=description,
            production_endpoint=production,
            sandbox_endpoint=sandbox,
            topics=topic_list,
            security=security,
            throttling=throttling,
        ),
    )
