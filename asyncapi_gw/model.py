"""The streaming-API domain model: frozen value objects and their invariants.

No wire format and no I/O live here.  The AsyncAPI codec turns documents into these objects and
back; the relay reads them.  Change a model value with :func:`attrs.evolve`.

Free-form JSON (schemas, bindings, message objects, the source document) is held *frozen*:
mappings become read-only :class:`types.MappingProxyType` views and lists become tuples
(:func:`freeze`); :func:`thaw` gives plain ``dict``/``list`` data back.
"""

from __future__ import annotations

import enum
import re
import types
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs

__all__ = [
    "AuthKind",
    "AuthType",
    "Endpoint",
    "Environment",
    "Operation",
    "Parameter",
    "PointOfView",
    "SecurityScheme",
    "StreamingAPI",
    "Throttling",
    "ThrottlingUnit",
    "Topic",
    "TopicKind",
    "TopicOperation",
    "default_context",
    "freeze",
    "thaw",
]


def freeze(value: Any) -> Any:
    """Deep read-only copy of JSON data: mappings as ``MappingProxyType``, lists as tuples.

    A ``MappingProxyType`` counts as frozen already and is kept as it is, so that evolving a
    model value does not copy its documents again.  Scalars and string keys are kept as they
    are (the source document's remember how they were written); other keys become strings.
    """
    if isinstance(value, types.MappingProxyType):
        return value
    if isinstance(value, Mapping):
        return types.MappingProxyType(
            {(k if isinstance(k, str) else str(k)): freeze(v) for k, v in value.items()}
        )
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Plain, mutable JSON data (``dict``/``list``) from frozen or plain data."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value


def _frozen_map(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return freeze(value or {})  # type: ignore[no-any-return]


def _frozen_optional(value: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    return None if value is None else _frozen_map(value)


def _strings(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


def _parameters(values: Iterable[Parameter]) -> tuple[Parameter, ...]:
    return tuple(values)


def _topics(values: Iterable[Topic]) -> tuple[Topic, ...]:
    return tuple(values)


def _schemes(values: Iterable[SecurityScheme]) -> tuple[SecurityScheme, ...]:
    return tuple(values)


def _json_field(*, optional: bool = False) -> Any:
    if optional:
        return attrs.field(default=None, converter=_frozen_optional, hash=False)
    return attrs.field(factory=dict, converter=_frozen_map, hash=False)


class Operation(enum.Enum):
    """A topic's direction. AsyncAPI 2.x and WSO2 name them from the application's side."""

    PUBLISH = "publish"  # client -> backend
    SUBSCRIBE = "subscribe"  # backend -> client

    @property
    def short(self) -> str:
        return "pub" if self is Operation.PUBLISH else "sub"


class PointOfView(enum.Enum):
    """Whose side the operations of an AsyncAPI 3.x document are written from.

    ``APPLICATION`` is the specification's reading: ``receive`` is what the API receives from
    clients (publish, client -> backend) and ``send`` what it sends to them (subscribe).
    ``CLIENT`` is the opposite reading, the one WSO2 API Manager 4.7 writes and reads: ``send``
    is what clients send (publish), ``receive`` what they receive (subscribe).
    """

    APPLICATION = "application"
    CLIENT = "client"

    def operation(self, action: str) -> Operation:
        """The direction a 3.x ``action`` (``send`` or ``receive``) denotes."""
        sends = self is PointOfView.CLIENT
        return Operation.PUBLISH if (action == "send") == sends else Operation.SUBSCRIBE

    def action(self, operation: Operation) -> str:
        """The 3.x ``action`` that denotes ``operation``."""
        return "send" if self.operation("send") is operation else "receive"


class AuthType(enum.Enum):
    """WSO2's ``x-auth-type`` on a channel. ``NONE`` makes the topic open."""

    ANY = "Any"
    APPLICATION = "Application"
    APPLICATION_USER = "Application_User"
    NONE = "None"


class AuthKind(enum.Enum):
    """Which credentials the gateway accepts for a security scheme."""

    OAUTH2 = "oauth2"  # bearer JWT (oauth2, openIdConnect, http bearer)
    API_KEY = "api_key"  # apiKey, httpApiKey


class Environment(enum.Enum):
    """Which of an API's endpoints the relay dials for a connection, as its credential says: an
    API key's ``environment``, or a JWT whose ``keytype`` claim is ``SANDBOX``."""

    PRODUCTION = "production"  # the production endpoint
    SANDBOX = "sandbox"  # the sandbox endpoint


class TopicKind(enum.Enum):
    EXACT = "exact"
    TEMPLATE = "template"
    WILDCARD = "wildcard"


class ThrottlingUnit(enum.Enum):
    SECOND = "second"
    MINUTE = "minute"
    DAY = "day"

    @property
    def seconds(self) -> int:
        return {"second": 1, "minute": 60, "day": 86_400}[self.value]


_CONTEXT_CHARS = re.compile(r"[A-Za-z0-9_.~$;()/{}\-]+")
# RFC 3986 pchar without percent-escapes: what a version may hold to stand in a URL path.
_SEGMENT_CHARS = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@]+")
_PARAM = re.compile(r"\{([^{}/]*)\}")


def default_context(title: str) -> str:
    """``/`` + the title in lower case, runs of other characters replaced by ``-``.

    ``ChatRoom`` gives ``/chatroom``; ``Market Feed`` gives ``/market-feed``.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return "/" + (slug or "api")


def _check_context(_inst: object, _attr: object, context: str) -> None:
    if not context.startswith("/") or context == "/" or context.endswith("/"):
        raise ValueError(f"context {context!r} must start with '/' and not end with '/'")
    if not _CONTEXT_CHARS.fullmatch(context):
        raise ValueError(
            f"context {context!r} may hold only letters, digits and _ . ~ $ ; ( ) / {{ }} -"
        )
    for segment in context[1:].split("/"):
        if segment in ("", ".", ".."):
            raise ValueError(f"context {context!r} has an empty, '.' or '..' segment")
        if ("{" in segment or "}" in segment) and segment != "{version}":
            raise ValueError(
                f"context {context!r}: '{{version}}' must be a whole path segment "
                "and no other template is allowed"
            )


def _check_version(_inst: object, _attr: object, version: str) -> None:
    if not _SEGMENT_CHARS.fullmatch(version) or version in (".", ".."):
        raise ValueError(
            f"version {version!r} must be non-empty and fit in one URL path segment "
            "(no '/', '?', '#', '%', spaces or control characters)"
        )


@attrs.frozen(kw_only=True)
class Endpoint:
    """A backend WebSocket URL (``ws://`` or ``wss://``)."""

    url: str = attrs.field()

    @url.validator
    def _check(self, _attr: object, url: str) -> None:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as exc:
            raise ValueError(f"endpoint {url!r} is not a valid URL: {exc}") from None
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ValueError(f"endpoint {url!r} must be a ws:// or wss:// URL with a host")
        if parts.fragment:
            raise ValueError(f"endpoint {url!r} must not have a fragment")

    @property
    def secure(self) -> bool:
        return self.url.startswith("wss:")


@attrs.frozen(kw_only=True)
class Parameter:
    """A channel (path) parameter such as ``roomId`` in ``/rooms/{roomId}``."""

    name: str
    description: str | None = None
    schema: Mapping[str, Any] | None = _json_field(optional=True)


@attrs.frozen(kw_only=True)
class TopicOperation:
    """The publish or subscribe side of a topic."""

    operation: Operation
    description: str | None = None
    summary: str | None = None
    operation_id: str | None = None
    uri_mapping: str | None = None  # WSO2 x-uri-mapping, appended to the endpoint URL
    scopes: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    message: Mapping[str, Any] | None = _json_field(optional=True)  # resolved message object


def _check_topic_name(_inst: object, _attr: object, name: str) -> None:
    if not name or name.strip() != name:
        raise ValueError(f"topic name {name!r} must be non-empty without surrounding spaces")
    if "?" in name or "#" in name:
        raise ValueError(f"topic name {name!r} must not hold '?' or '#'")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise ValueError(f"topic name {name!r} must not hold control characters")


@attrs.frozen(kw_only=True)
class Topic:
    """An AsyncAPI channel as the gateway sees it.

    ``name`` is kept as written in the document; :attr:`path` is the same topic with a leading
    ``/`` (``rooms/{id}`` and ``/rooms/{id}`` denote one topic).
    """

    name: str = attrs.field(validator=_check_topic_name)
    description: str | None = None
    publish: TopicOperation | None = None
    subscribe: TopicOperation | None = None
    parameters: tuple[Parameter, ...] = attrs.field(default=(), converter=_parameters)
    bindings: Mapping[str, Any] = _json_field()
    auth_type: AuthType | None = None  # None: not stated, the API's security applies

    def __attrs_post_init__(self) -> None:
        if self.publish is None and self.subscribe is None:
            raise ValueError(f"topic {self.name!r} needs publish, subscribe or both")
        if self.publish is not None and self.publish.operation is not Operation.PUBLISH:
            raise ValueError(f"topic {self.name!r}: publish holds a {self.publish.operation}")
        if self.subscribe is not None and self.subscribe.operation is not Operation.SUBSCRIBE:
            raise ValueError(f"topic {self.name!r}: subscribe holds a {self.subscribe.operation}")
        names = [p.name for p in self.parameters]
        if len(set(names)) != len(names):
            raise ValueError(f"topic {self.name!r} has duplicate parameters")

    @property
    def path(self) -> str:
        return self.name if self.name.startswith("/") else "/" + self.name

    @property
    def operations(self) -> tuple[TopicOperation, ...]:
        return tuple(op for op in (self.publish, self.subscribe) if op is not None)

    @property
    def kind(self) -> TopicKind:
        if self.path == "/*" or self.path.endswith("/*"):
            return TopicKind.WILDCARD
        if _PARAM.search(self.path):
            return TopicKind.TEMPLATE
        return TopicKind.EXACT

    @property
    def template_parameters(self) -> tuple[str, ...]:
        """Names of the ``{name}`` placeholders in the topic path, in order."""
        return tuple(_PARAM.findall(self.path))

    @property
    def scopes(self) -> tuple[str, ...]:
        """Scopes named by either operation, without repeats, in document order."""
        return tuple(dict.fromkeys(s for op in self.operations for s in op.scopes))

    @property
    def is_open(self) -> bool:
        return self.auth_type is AuthType.NONE

    def allows(self, operation: Operation) -> bool:
        return (self.publish if operation is Operation.PUBLISH else self.subscribe) is not None


@attrs.frozen(kw_only=True)
class SecurityScheme:
    """A security scheme the gateway enforces, named as in ``components.securitySchemes``."""

    name: str
    kind: AuthKind
    scopes: Mapping[str, str] = _json_field()  # scope -> description
    scope_bindings: Mapping[str, str] = _json_field()  # WSO2 x-scopes-bindings: scope -> roles
    description: str | None = None


@attrs.frozen(kw_only=True)
class Throttling:
    """An event quota: at most ``events`` per ``unit`` per connection and per API, and, when
    ``per_principal`` is given, at most that many per ``unit`` per principal (an API key, a JWT
    subject; anonymous clients per source address) across its connections."""

    events: int = attrs.field()
    unit: ThrottlingUnit = ThrottlingUnit.MINUTE
    per_principal: int | None = attrs.field(default=None)

    @events.validator
    def _check(self, _attr: object, events: int) -> None:
        if isinstance(events, bool) or not isinstance(events, int) or events < 1:
            raise ValueError(f"throttling events must be a positive integer, not {events!r}")

    @per_principal.validator
    def _check_per_principal(self, _attr: object, value: int | None) -> None:
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ValueError(f"throttling perPrincipal must be a positive integer, not {value!r}")


@attrs.frozen(kw_only=True)
class StreamingAPI:
    """A WebSocket API: what a relay serves and what an AsyncAPI document describes.

    ``document`` and ``asyncapi_version`` remember the imported source so that an unchanged
    API exports back to equal data (unknown fields, extensions, ``components``, ``$ref``);
    ``point_of_view`` is the reading of a 3.x source's operations, which export keeps.
    """

    name: str = attrs.field()
    version: str = attrs.field(validator=_check_version)
    context: str = attrs.field(validator=_check_context)
    description: str | None = None
    production_endpoint: Endpoint | None = None
    sandbox_endpoint: Endpoint | None = None
    topics: tuple[Topic, ...] = attrs.field(default=(), converter=_topics)
    security: tuple[SecurityScheme, ...] = attrs.field(default=(), converter=_schemes)
    throttling: Throttling | None = None
    allow_encoded_slashes: bool = False
    """Let a path parameter's value hold ``/`` or ``\\`` (sent ``%2F``, ``%5C``); see the
    relay's routing."""
    asyncapi_version: str | None = None
    point_of_view: PointOfView | None = None
    document: Mapping[str, Any] | None = _json_field(optional=True)
    base_uri: str | None = None  # where the source document lives, for relative $refs

    @name.validator
    def _check_name(self, _attr: object, name: str) -> None:
        if not name.strip():
            raise ValueError("an API needs a non-empty name")

    @topics.validator
    def _check_topics(self, _attr: object, topics: tuple[Topic, ...]) -> None:
        seen: dict[str, str] = {}
        for topic in topics:
            if topic.path in seen:
                raise ValueError(
                    f"topics {seen[topic.path]!r} and {topic.name!r} denote the same topic"
                )
            seen[topic.path] = topic.name

    @security.validator
    def _check_security(self, _attr: object, schemes: tuple[SecurityScheme, ...]) -> None:
        names = [s.name for s in schemes]
        if len(set(names)) != len(names):
            raise ValueError("security scheme names must be unique")

    @property
    def gateway_path(self) -> str:
        """The path prefix clients use: the context with ``{version}`` filled in, or
        ``context + "/" + version`` when the context has no ``{version}``."""
        if "{version}" in self.context:
            return self.context.replace("{version}", self.version)
        return f"{self.context}/{self.version}"

    @property
    def auth_kinds(self) -> frozenset[AuthKind]:
        return frozenset(s.kind for s in self.security)

    @property
    def scopes(self) -> tuple[str, ...]:
        found = (s for scheme in self.security for s in scheme.scopes)
        return tuple(dict.fromkeys(found))

    def topic(self, name: str) -> Topic:
        """The topic called ``name`` (with or without the leading ``/``)."""
        path = name if name.startswith("/") else "/" + name
        for topic in self.topics:
            if topic.path == path:
                return topic
        raise KeyError(name)

    def with_topics(self, topics: Iterable[Topic]) -> StreamingAPI:
        return attrs.evolve(self, topics=tuple(topics))
