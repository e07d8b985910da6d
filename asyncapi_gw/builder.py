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
    ThrottlingUnit,
    Topic,
    TopicOperation,
    default_context,
)

__all__ = [
    "AUTH_CHOICES",
    "DEFAULT_TOPIC",
    "OPERATION_CHOICES",
    "new_api",
    "parse_scope",
    "parse_throttling",
    "parse_topic",
    "secure_topics",
    "topic",
]

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
        raise _invalid(field, str(exc)) from None


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
            [
                Problem(
                    pointer="", message=f"unknown operations {operations!r}", rule="invalid-topic"
                )
            ],
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


def parse_scope(spec: str) -> tuple[str, str]:
    """``(topic, scope)`` from the CLI form ``TOPIC=SCOPE`` (split at the first ``=``)."""
    name, sep, scope = spec.partition("=")
    if not sep or not name or not scope:
        raise _invalid("scope", f"{spec!r} is not TOPIC=SCOPE")
    return name, scope


def parse_throttling(spec: str, per_principal: int | None = None) -> Throttling:
    """A throttling from the CLI form ``EVENTS/UNIT`` (``100/minute``; units ``second``,
    ``minute``, ``day``), with ``per_principal`` events per principal in the same unit."""
    events, sep, unit = spec.partition("/")
    try:
        count = int(events)
        per = ThrottlingUnit(unit)
    except ValueError:
        raise _invalid(
            "throttling", f"{spec!r} is not EVENTS/UNIT with a unit of second, minute or day"
        ) from None
    if not sep:
        raise _invalid("throttling", f"{spec!r} is not EVENTS/UNIT")
    return _checked(
        "throttling", lambda: Throttling(events=count, unit=per, per_principal=per_principal)
    )


def secure_topics(
    topics: Iterable[Topic],
    *,
    auth: str,
    scopes: Iterable[tuple[str, str]] = (),
    open_topics: Iterable[str] = (),
) -> list[Topic]:
    """``topics`` with the ``(topic, scope)`` pairs required (any one of a topic's scopes
    admits a credential, as in WSO2) and ``open_topics`` opened to anonymous clients
    (``x-auth-type: None``); ``rooms/{id}`` names the topic ``/rooms/{id}``. Raises
    :class:`ConversionError` for a name that is not a topic, an open topic with scopes, or
    either on an API without auth."""
    wanted: dict[str, list[str]] = {}
    for name, scope in scopes:
        wanted.setdefault(_path(name), []).append(scope)
    opened = {_path(name) for name in open_topics}
    if (wanted or opened) and auth == "none":
        raise _invalid("topic", "scopes and open topics need an API with auth (oauth2 or api_key)")
    result = list(topics)
    known = [t.path for t in result]
    unknown = [name for name in (*wanted, *sorted(opened)) if name not in known]
    if unknown:
        raise _invalid("topic", f"{unknown[0]!r} is not one of the topics {', '.join(known)}")
    both = sorted(opened & wanted.keys())
    if both:
        raise _invalid("topic", f"topic {both[0]!r} cannot be open and require scopes")
    for index, t in enumerate(result):
        required = tuple(dict.fromkeys(wanted.get(t.path, ())))
        changes: dict[str, object] = {
            side: attrs.evolve(operation, scopes=required)
            for side, operation in (("publish", t.publish), ("subscribe", t.subscribe))
            if required and operation is not None
        }
        if t.path in opened:
            changes["auth_type"] = AuthType.NONE
        result[index] = attrs.evolve(t, **changes)  # type: ignore[arg-type]
    return result


def _path(name: str) -> str:
    return name if name.startswith("/") else "/" + name


def _invalid(field: str, message: str) -> ConversionError:
    return ConversionError(
        f"invalid {field}: {message}",
        [Problem(pointer="", message=message, rule=f"invalid-{field}")],
    )


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
        security.append(
            SecurityScheme(name="oauth2", kind=AuthKind.OAUTH2, scopes={s: s for s in scopes})
        )
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
