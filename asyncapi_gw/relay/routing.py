"""The route table: which API and topic a request target reaches, and the backend URL it dials.

Pure: no I/O. The rules, stated once (docs/relay.md cites them):

Matching a request target ``<path>?<query>`` as received (still percent-encoded):

1. The target must be origin-form (start with ``/``) and printable ASCII without ``#``.
   The query is split off at the first ``?`` and kept raw; one trailing ``/`` is dropped.
2. The raw path is split on ``/`` *before* percent-decoding, so ``%2F`` stays inside its segment
   (and inside that one parameter value). Each segment is decoded as strict UTF-8. The target is
   refused (400) when a segment is empty (``//``), is ``.`` or ``..`` once decoded (``%2e%2E``
   too), holds a malformed escape (``%zz``), invalid or overlong UTF-8 (``%c0%ae``), or decodes
   to a control character (``%00``, ``%0d``, ``%0a``).
3. The API is the one whose gateway path is the longest prefix, segment by segment. When that API
   has no matching topic the answer is 404; a shorter gateway path is not tried.
4. The topic, within the rest of the path: an exact name beats a template, a template beats a
   wildcard. Between templates, at the first segment where they differ a literal beats a
   ``{param}``. Between wildcards the longest prefix wins (ties as for templates). ``P/*``
   matches ``P`` itself and anything below it, so a client connecting to exactly the gateway
   path reaches the topic ``/*``, as in WSO2. ``{name}`` fills one whole non-empty segment.
   A literal segment of a topic name is percent-decoded like the request's (channel names are
   URI templates): the topics ``/a%20b`` and ``/a b`` both match the request ``/a%20b``.
5. A parameter value that holds ``/`` or ``\\`` once decoded (``%2F``, ``%5C``) is refused (400)
   unless the API allows encoded slashes: a backend that decodes its path once would see more
   segments than the mapping has (``/open/..%2Fadmin`` is ``/open/../admin``, which resolves
   to ``/admin``). With rule 2, no accepted value can make such a backend see another segment
   count or a dot segment.

Building the table refuses (:class:`RelayError`) two APIs with one gateway path; two topics of an
API that match the same paths (``/rooms/{a}`` and ``/rooms/{b}``, ``/x`` and ``/x/``); topic names
with empty, ``.`` or ``..`` segments, malformed escapes, more than 256 segments, a ``{param}``
that is not a whole segment or a repeated ``{param}``; a URL mapping holding ``#``, spaces,
non-ASCII, a placeholder other than ``{uri.var.NAME}`` or a ``NAME`` the topic path lacks; and
a topic whose publish and subscribe carry different URL mappings (one connection carries both
directions to one backend URL, so the gateway cannot honour both; one mapping, or equal ones,
is fine).

The backend URL (:func:`backend_for`) is the endpoint URL with the topic's URL mapping appended as
WSO2 does, one ``/`` between them whether the endpoint ends with one, the mapping starts with one,
both or neither; a query in the endpoint URL or the mapping is kept and joined with ``&``.
``{uri.var.NAME}`` becomes the parameter's decoded value percent-encoded except for RFC 3986
unreserved characters, so no value can add a path segment, a query parameter, a fragment or
change the scheme, host or port. Without a mapping the endpoint URL is used unchanged. The
client's query follows, without the credential parameters ``access_token`` and ``apikey`` and
without the parameters the endpoint URL or the mapping already set (``?fixed=1`` in the mapping
wins over the client's ``fixed=2``; :attr:`BackendURL.overridden` names what was dropped), names
compared case-sensitively after decoding, every occurrence; it stays in encoded form, so an
encoded CR, LF or NUL is forwarded as ``%0D``, ``%0A``, ``%00``, never as the raw byte, and
characters a query may not hold raw are percent-encoded.
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterable, Mapping
from urllib.parse import quote, unquote, unquote_to_bytes, urlsplit

import attrs

from asyncapi_gw.errors import RelayError
from asyncapi_gw.model import AuthKind, Endpoint, Environment, StreamingAPI, Topic

__all__ = [
    "CREDENTIAL_QUERY_PARAMETERS",
    "BackendURL",
    "NoRoute",
    "Route",
    "RouteTable",
    "backend_for",
    "backend_template",
]

CREDENTIAL_QUERY_PARAMETERS: Mapping[str, AuthKind] = types.MappingProxyType(
    {"access_token": AuthKind.OAUTH2, "apikey": AuthKind.API_KEY}
)
"""Query parameters that carry credentials, and their kind: read by the gateway (see
:mod:`asyncapi_gw.relay.auth`), never sent to the backend."""

_MAX_TOPIC_DEPTH = 256  # matching recurses once per segment of a topic path
_PRINTABLE = re.compile(r"[!-~]*")  # printable ASCII without the space
_ESCAPES = re.compile(r"(?:[^%]|%[0-9A-Fa-f]{2})*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SEPARATORS = re.compile(r"[/\\]")
_PARAM_SEGMENT = re.compile(r"\{([^{}/]+)\}")
_URI_VAR = re.compile(r"\{uri\.var\.([^{}]*)\}")
# Raw in a forwarded query: RFC 3986 query characters and well-formed escapes; all else encoded.
_QUERY_REENCODE = re.compile(r"%(?![0-9A-Fa-f]{2})|[^A-Za-z0-9\-._~!$&'()*+,;=:@/?%]")


def _frozen_params(value: Mapping[str, str]) -> Mapping[str, str]:
    return types.MappingProxyType(dict(value))


@attrs.frozen(kw_only=True)
class Route:
    """A matched request: the API, the topic, decoded path parameters and the raw query."""

    api: StreamingAPI
    topic: Topic
    params: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_params, hash=False)
    query: str = ""
    uri_mapping: str | None = None  # the topic's URL mapping for this connection, validated

    @property
    def allows_client_messages(self) -> bool:
        """The topic has publish: client -> backend messages are relayed."""
        return self.topic.publish is not None

    @property
    def allows_backend_messages(self) -> bool:
        """The topic has subscribe: backend -> client messages are relayed."""
        return self.topic.subscribe is not None


@attrs.frozen(kw_only=True)
class BackendURL:
    """The URL to dial; ``overridden``: the names of the client's query parameters dropped
    because the endpoint URL or the URL mapping sets them (in the client's order)."""

    url: str
    overridden: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class NoRoute:
    """A refusal before the upgrade: the HTTP status and a plain-text reason."""

    status: int = 404
    reason: str


@attrs.frozen(kw_only=True)
class _Leaf:
    topic: Topic
    names: tuple[str, ...]  # parameter names, in path order
    uri_mapping: str | None


class _TopicNode:
    """One path segment of an API's topic tree."""

    __slots__ = ("has_wildcard", "leaf", "literal", "param", "wildcard")

    def __init__(self) -> None:
        self.literal: dict[str, _TopicNode] = {}
        self.param: _TopicNode | None = None
        self.leaf: _Leaf | None = None  # an exact or template topic ending here
        self.wildcard: _Leaf | None = None  # the topic ``<path to here>/*``
        self.has_wildcard = False  # this node or one below holds a wildcard topic


class _ApiNode:
    """One path segment of the gateway-path tree."""

    __slots__ = ("api", "children", "topics")

    def __init__(self) -> None:
        self.children: dict[str, _ApiNode] = {}
        self.api: StreamingAPI | None = None
        self.topics = _TopicNode()


_FOUND_ROUTES = 4096  # paths whose route a table keeps; all are dropped when it is full
_FOUND_PATH = 256  # longer paths are matched every time (the cache stays under ~2 MB)


@attrs.frozen(kw_only=True)
class RouteTable:
    """The APIs one relay serves, compiled for matching in time proportional to path depth."""

    apis: tuple[StreamingAPI, ...]
    _root: _ApiNode = attrs.field(repr=False, eq=False)
    # Routes found, by path (never the query, which may carry credentials); bounded.
    _found: dict[str, Route] = attrs.field(factory=dict, init=False, repr=False, eq=False)

    @classmethod
    def from_apis(cls, apis: Iterable[StreamingAPI]) -> RouteTable:
        """Compile ``apis``; :class:`RelayError` on a clash or a topic that cannot be served."""
        apis = tuple(apis)
        root = _ApiNode()
        for api in apis:
            node = root
            for segment in api.gateway_path[1:].split("/"):
                node = node.children.setdefault(segment, _ApiNode())
            if node.api is not None:
                other = node.api
                raise RelayError(
                    f"APIs {other.name!r} {other.version} and {api.name!r} {api.version} "
                    f"both use the gateway path {api.gateway_path}"
                )
            node.api = api
            for topic in api.topics:
                _add_topic(node.topics, api, topic)
        return cls(apis=apis, root=root)

    def match(self, target: str) -> Route | NoRoute:
        """The route for a request target ``<path>?<query>`` as received, or why there is none
        (404; 400 for a target the rules refuse)."""
        if not target.startswith("/") or not _PRINTABLE.fullmatch(target) or "#" in target:
            return NoRoute(
                status=400, reason="Bad request target: not a printable ASCII path without '#'."
            )
        path, _, query = target.partition("?")
        route = self._found.get(path)
        if route is None:
            found = self._match_path(path)
            if isinstance(found, NoRoute):
                return found
            if len(path) > _FOUND_PATH:
                route = found
            else:
                if len(self._found) >= _FOUND_ROUTES:
                    self._found.clear()
                route = self._found[path] = found
        if not query:
            return route
        return Route(
            api=route.api,
            topic=route.topic,
            params=route.params,
            query=query,
            uri_mapping=route.uri_mapping,
        )

    def _match_path(self, path: str) -> Route | NoRoute:
        if len(path) > 1 and path.endswith("/"):
            path = path[:-1]
        raw_segments = path[1:].split("/") if path != "/" else []
        segments: list[str] = []
        for raw in raw_segments:
            decoded = _decode_segment(raw)
            if decoded is None:
                return NoRoute(
                    status=400,
                    reason="Bad request path: empty, '.' or '..' segment, malformed escape, "
                    "invalid UTF-8 or control character.",
                )
            segments.append(decoded)

        api: StreamingAPI | None = None
        node, topics, depth = self._root, self._root.topics, 0
        for index, segment in enumerate(segments):
            found = node.children.get(segment)
            if found is None:
                break
            node = found
            if node.api is not None:
                api, topics, depth = node.api, node.topics, index + 1
        if api is None:
            return NoRoute(reason=f"No API is served at {path}.")

        rest = segments[depth:]
        collected: list[str] = []
        leaf = _match_exact_or_template(topics, rest, 0, collected)
        values = tuple(collected)
        if leaf is None:
            wildcard = _match_wildcard(topics, rest, 0, ())
            if wildcard is None:
                remainder = "/" + "/".join(raw_segments[depth:])
                return NoRoute(
                    reason=f"API {api.name!r} {api.version} has no topic matching {remainder}."
                )
            _, leaf, values = wildcard
        if not api.allow_encoded_slashes and any(_SEPARATORS.search(v) for v in values):
            return NoRoute(
                status=400,
                reason=f"Bad request path: API {api.name!r} {api.version} refuses '/' and '\\' "
                "(%2F, %5C) in path parameters.",
            )
        return Route(
            api=api,
            topic=leaf.topic,
            params=dict(zip(leaf.names, values, strict=True)),
            uri_mapping=leaf.uri_mapping,
        )


def backend_for(
    route: Route, environment: Environment, *, forward_query: bool = True
) -> BackendURL | NoRoute:
    """The backend URL to dial for ``route``, or the refusal when the API lacks the endpoint."""
    api = route.api
    if environment is Environment.SANDBOX:
        if api.sandbox_endpoint is None:
            return NoRoute(
                status=403,
                reason=f"API {api.name!r} {api.version} has no sandbox endpoint; "
                "sandbox credentials are refused.",
            )
        url = api.sandbox_endpoint.url
    else:
        if api.production_endpoint is None:
            return NoRoute(
                status=503, reason=f"API {api.name!r} {api.version} has no production endpoint."
            )
        url = api.production_endpoint.url
    if route.uri_mapping is not None:
        url = _apply_mapping(url, route.uri_mapping, route.params)
    if not forward_query or not route.query:
        return BackendURL(url=url)
    fixed = {_name(part) for part in url.partition("?")[2].split("&") if part}
    query, overridden = _forwarded_query(route.query, fixed)
    if query:
        url += query if url.endswith(("?", "&")) else ("&" if "?" in url else "?") + query
    return BackendURL(url=url, overridden=overridden)


def backend_template(endpoint: Endpoint, topic: Topic) -> str:
    """The backend URL for ``topic`` as :func:`backend_for` builds it, with the URL mapping's
    ``{uri.var.NAME}`` placeholders left in place (for display); :class:`RelayError` when the
    mapping would be refused by :meth:`RouteTable.from_apis`."""
    where = f"topic {topic.name!r}"
    mapping = _uri_mapping(where, topic, list(topic.template_parameters))
    return endpoint.url if mapping is None else _join(endpoint.url, mapping)


def _decode_segment(raw: str) -> str | None:
    """The decoded segment, or ``None`` when it is unsafe or malformed.

    Without ``%`` the segment is taken as it is: the request's were checked to be printable
    ASCII and topic names to hold no control characters (model)."""
    if "%" not in raw:
        return None if raw in ("", ".", "..") else raw
    if not _ESCAPES.fullmatch(raw):
        return None
    try:
        text = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return None
    if text in (".", "..") or _CONTROL.search(text):
        return None
    return text


def _match_exact_or_template(
    node: _TopicNode, segments: list[str], index: int, values: list[str]
) -> _Leaf | None:
    """Depth-first, literal before parameter at each segment: an exact name is found first."""
    if index == len(segments):
        return node.leaf
    segment = segments[index]
    child = node.literal.get(segment)
    if child is not None:
        found = _match_exact_or_template(child, segments, index + 1, values)
        if found is not None:
            return found
    if node.param is not None:
        values.append(segment)
        found = _match_exact_or_template(node.param, segments, index + 1, values)
        if found is not None:
            return found
        values.pop()
    return None


def _match_wildcard(
    node: _TopicNode, segments: list[str], index: int, values: tuple[str, ...]
) -> tuple[int, _Leaf, tuple[str, ...]] | None:
    """The wildcard topic with the longest prefix of ``segments`` (its depth, leaf and values);
    between equally long prefixes, literal before parameter."""
    best = None
    if index < len(segments):
        segment = segments[index]
        child = node.literal.get(segment)
        if child is not None and child.has_wildcard:
            best = _match_wildcard(child, segments, index + 1, values)
        if node.param is not None and node.param.has_wildcard:
            found = _match_wildcard(node.param, segments, index + 1, (*values, segment))
            if found is not None and (best is None or found[0] > best[0]):
                best = found
    if best is None and node.wildcard is not None:
        best = (index, node.wildcard, values)
    return best


def _add_topic(root: _TopicNode, api: StreamingAPI, topic: Topic) -> None:
    where = f"topic {topic.name!r} of API {api.name!r} {api.version}"
    path = topic.path
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    segments = path[1:].split("/") if path != "/" else []
    wildcard = bool(segments) and segments[-1] == "*"
    if wildcard:
        segments.pop()
    if len(segments) > _MAX_TOPIC_DEPTH:
        raise RelayError(f"{where} has more than {_MAX_TOPIC_DEPTH} path segments")
    names: list[str] = []
    node = root
    trail = [node]
    for segment in segments:
        param = _PARAM_SEGMENT.fullmatch(segment)
        if param is not None:
            if param[1] in names:
                raise RelayError(f"{where} repeats the parameter {{{param[1]}}}")
            names.append(param[1])
            if node.param is None:
                node.param = _TopicNode()
            node = node.param
        elif "{" in segment or "}" in segment:
            raise RelayError(f"{where}: a parameter must fill a whole path segment ({segment!r})")
        else:
            literal = _decode_segment(segment)
            if literal is None:
                raise RelayError(
                    f"{where} has an empty, '.' or '..' segment or a malformed escape "
                    "and can never match"
                )
            node = node.literal.setdefault(literal, _TopicNode())
        trail.append(node)

    leaf = _Leaf(topic=topic, names=tuple(names), uri_mapping=_uri_mapping(where, topic, names))
    taken = node.wildcard if wildcard else node.leaf
    if taken is not None:
        raise RelayError(
            f"topics {taken.topic.name!r} and {topic.name!r} of API {api.name!r} {api.version} "
            "match the same paths"
        )
    if wildcard:
        node.wildcard = leaf
        for passed in trail:
            passed.has_wildcard = True
    else:
        node.leaf = leaf


def _uri_mapping(where: str, topic: Topic, names: list[str]) -> str | None:
    """The one URL mapping for a connection on ``topic``, checked against its parameters."""
    mappings = sorted({op.uri_mapping for op in topic.operations if op.uri_mapping})
    if len(mappings) > 1:
        raise RelayError(
            f"{where}: publish and subscribe have different URL mappings "
            f"({mappings[0]!r} and {mappings[1]!r}); one connection dials one backend URL"
        )
    if not mappings:
        return None
    mapping = mappings[0]
    if not _PRINTABLE.fullmatch(mapping) or "#" in mapping:
        raise RelayError(
            f"{where}: URL mapping {mapping!r} must be printable ASCII without spaces or '#'"
        )
    literal_part = _URI_VAR.sub("", mapping)
    if "{" in literal_part or "}" in literal_part:
        raise RelayError(
            f"{where}: URL mapping {mapping!r} may hold only {{uri.var.NAME}} placeholders"
        )
    for name in _URI_VAR.findall(mapping):
        if name not in names:
            raise RelayError(
                f"{where}: URL mapping {mapping!r} uses {{uri.var.{name}}} "
                "but the topic path has no such parameter"
            )
    return mapping


def _apply_mapping(endpoint: str, mapping: str, params: Mapping[str, str]) -> str:
    """``endpoint`` + ``mapping`` with its placeholders filled by encoded parameter values."""
    try:
        filled = _URI_VAR.sub(lambda m: quote(params[m[1]], safe=""), mapping)
    except KeyError as exc:
        raise RelayError(f"URL mapping {mapping!r} needs the path parameter {exc}") from None
    return _join(endpoint, filled)


def _join(endpoint: str, mapping: str) -> str:
    """``endpoint`` + ``mapping`` with one ``/`` between paths and queries joined by ``&``."""
    parts = urlsplit(endpoint)
    mapped_path, _, mapped_query = mapping.partition("?")
    path = parts.path
    if mapped_path:
        path = path.removesuffix("/") + "/" + mapped_path.removeprefix("/")
    url = f"{parts.scheme}://{parts.netloc}{path or '/'}"
    query = "&".join(q for q in (parts.query, mapped_query) if q)
    return f"{url}?{query}" if query else url


def _name(part: str) -> str:
    """The decoded name of a query's ``name=value`` part."""
    return unquote(part.partition("=")[0])


def _forwarded_query(raw: str, fixed: set[str]) -> tuple[str, tuple[str, ...]]:
    """The client's query without credential parameters or those named in ``fixed``, in safe
    encoded form, and the names of those dropped for ``fixed``."""
    kept, overridden = [], []
    for part in raw.split("&"):
        name = _name(part)
        if not part or name in CREDENTIAL_QUERY_PARAMETERS:
            continue
        if name in fixed:
            overridden.append(name)
            continue
        kept.append(_QUERY_REENCODE.sub(lambda m: quote(m[0], safe=""), part))
    return "&".join(kept), tuple(overridden)
