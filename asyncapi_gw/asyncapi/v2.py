"""AsyncAPI 2.x documents <-> the streaming-API model.

Decoding reads a validated, ``$ref``-resolved document into a :class:`StreamingAPI`.  Encoding
writes an API back out: it starts from the imported source document (kept raw in the model, with
its ``$ref``s, unknown fields, extensions and key order) and rewrites only what differs between
the API and what the source decodes to, so an unchanged API exports to equal data.  An API
created from scratch is written from nothing.

Mapping (the README's "How documents map to APIs"; what 2.x and 3.x share is in
:mod:`asyncapi_gw.asyncapi.codec`):

- endpoints: a server's ``url`` with its variables expanded (``protocol`` prefixed when the url
  has no scheme).
- channels -> topics (``rooms/{id}`` and ``/rooms/{id}`` are one topic); ``publish`` is client ->
  backend and ``subscribe`` backend -> client, as AsyncAPI 2.x and WSO2 name them.  WSO2's
  ``x-uri-mapping`` and ``x-scopes`` on publish/subscribe, ``x-auth-type`` on the channel;
  Choreo Connect's ``x-wso2-disable-security`` elsewhere than on a channel (the root, an
  operation) is not read, with a warning.
- security: when the production server names security requirements, those schemes apply;
  otherwise every declared scheme does (WSO2 declares its schemes without server requirements).
  Scopes of an operation's ``security`` requirements count as its scopes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from asyncapi_gw.asyncapi.codec import (
    DISABLE_SECURITY_EXTENSION,
    Decoder,
    auth_type,
    build_api,
    channel_opened,
    encode_info,
    encode_root_extensions,
    encode_security,
    endpoints,
    expand_variables,
    ignored_marker,
    mapping,
    production_server_name,
    security,
    set_or_drop,
    text,
    x_scopes,
)
from asyncapi_gw.errors import Problem, json_excerpt
from asyncapi_gw.model import (
    AuthType,
    Endpoint,
    Operation,
    Parameter,
    SecurityScheme,
    StreamingAPI,
    Topic,
    TopicOperation,
    thaw,
)
from asyncapi_gw.pointers import pointer_to
from asyncapi_gw.schema import SUPPORTED_VERSIONS

__all__ = ["VERSION_FEATURE_RULE", "decode", "encode", "version_gaps"]

_SCOPES = "scopes"  # where a 2.x oauth2 flow lists its scopes


def decode(
    data: Mapping[str, Any],
    *,
    source: Mapping[str, Any] | None = None,
    context: str | None = None,
    lenient: bool = False,
    base_uri: str | None = None,
) -> tuple[StreamingAPI, list[Problem]]:
    """The API a resolved AsyncAPI 2.x document describes, and the problems met.

    ``data`` is the document with ``$ref``s resolved; ``source`` the raw document kept for
    lossless export (defaults to ``data``).  ``context`` overrides the document's context.
    Strict decoding raises :class:`ConversionError` listing every problem; lenient decoding
    leaves out what it cannot represent and returns the problems as warnings.
    """
    decoder = Decoder(lenient=lenient)
    return build_api(
        data,
        decoder,
        context=context,
        endpoints=endpoints(data, decoder, _server_url, "url"),
        topics=lambda: _topics(data, decoder),
        security=lambda: _security(data, decoder),
        source=source,
        base_uri=base_uri,
    )


def _server_url(server: Mapping[str, Any]) -> str:
    url = text(server.get("url"))
    if url is None:
        raise ValueError("the server has no url")
    url = expand_variables(url, mapping(server.get("variables")))
    protocol = text(server.get("protocol")) or ""
    if "://" not in url and protocol in ("ws", "wss"):
        url = f"{protocol}://{url}"
    return url


def _operation_security_scopes(operation: Mapping[str, Any]) -> tuple[str, ...]:
    requirements = operation.get("security")
    if not isinstance(requirements, list):
        return ()
    return tuple(
        s
        for requirement in requirements
        for scopes in mapping(requirement).values()
        if isinstance(scopes, list)
        for s in scopes
        if isinstance(s, str)
    )


def _operation(op: Operation, raw: Mapping[str, Any]) -> TopicOperation:
    message = raw.get("message")
    return TopicOperation(
        operation=op,
        description=text(raw.get("description")),
        summary=text(raw.get("summary")),
        operation_id=text(raw.get("operationId")),
        uri_mapping=text(raw.get("x-uri-mapping")),
        scopes=tuple(
            dict.fromkeys(x_scopes(raw.get("x-scopes")) + _operation_security_scopes(raw))
        ),
        message=message if isinstance(message, Mapping) else None,
    )


def _topic(name: str, channel: Mapping[str, Any], decoder: Decoder) -> Topic | None:
    pointer = pointer_to("channels", name)
    parameters = [
        Parameter(
            name=str(param_name),
            description=text(mapping(param).get("description")),
            schema=(
                mapping(param)["schema"]
                if isinstance(mapping(param).get("schema"), Mapping)
                else None
            ),
        )
        for param_name, param in mapping(channel.get("parameters")).items()
    ]
    ops = {
        op: _operation(op, channel[op.value])
        for op in Operation
        if isinstance(channel.get(op.value), Mapping)
    }
    for kind in Operation:
        if DISABLE_SECURITY_EXTENSION in mapping(channel.get(kind.value)):
            ignored_marker(f"{pointer}/{kind.value}/{DISABLE_SECURITY_EXTENSION}", decoder)
    bindings = channel.get("bindings")
    found = auth_type(channel.get("x-auth-type"), pointer + "/x-auth-type", decoder)
    if channel_opened(channel, pointer, decoder):
        if found not in (None, AuthType.NONE):
            decoder.warn(
                pointer + "/x-auth-type",
                f"x-auth-type {json_excerpt(channel['x-auth-type'])} is overridden by "
                f"{DISABLE_SECURITY_EXTENSION}: true; the topic is open",
            )
        found = AuthType.NONE
    result: Topic | None = decoder.attempt(
        pointer,
        lambda: Topic(
            name=name,
            description=text(channel.get("description")),
            publish=ops.get(Operation.PUBLISH),
            subscribe=ops.get(Operation.SUBSCRIBE),
            parameters=parameters,
            bindings=bindings if isinstance(bindings, Mapping) else {},
            auth_type=found,
        ),
    )
    return result


def _topics(data: Mapping[str, Any], decoder: Decoder) -> list[Topic]:
    if DISABLE_SECURITY_EXTENSION in data:
        ignored_marker(pointer_to(DISABLE_SECURITY_EXTENSION), decoder)
    topics: list[Topic] = []
    seen: dict[str, str] = {}
    for name, channel in mapping(data.get("channels")).items():
        if not isinstance(channel, Mapping):
            decoder.fail(
                pointer_to("channels", name), f"channel {json_excerpt(name)} could not be resolved"
            )
            continue
        topic = _topic(str(name), channel, decoder)
        if topic is None:
            continue
        if topic.path in seen:
            decoder.fail(
                pointer_to("channels", name),
                f"channels {json_excerpt(seen[topic.path])} and {json_excerpt(name)} denote the "
                "same topic",
            )
            continue
        seen[topic.path] = topic.name
        topics.append(topic)
    return topics


def _required_scheme_names(data: Mapping[str, Any]) -> list[str] | None:
    """Schemes named by the production server's security requirements, if it names any."""
    servers = mapping(data.get("servers"))
    name = production_server_name(servers)
    requirements = mapping(servers.get(name)).get("security") if name else None
    if not isinstance(requirements, list):
        return None
    return list(dict.fromkeys(str(k) for r in requirements for k in mapping(r)))


def _security(data: Mapping[str, Any], decoder: Decoder) -> list[SecurityScheme]:
    declared = mapping(mapping(data.get("components")).get("securitySchemes"))
    required = _required_scheme_names(data)
    names = required if required is not None else list(declared)
    return security(
        ((name, mapping(declared.get(name))) for name in names),
        decoder,
        required=required is not None,
        scopes_key=_SCOPES,
    )


# --------------------------------------------------------------------------- encoding


def encode(
    api: StreamingAPI,
    *,
    version: str,
    baseline: StreamingAPI | None = None,
) -> dict[str, Any]:
    """The AsyncAPI ``version`` document for ``api``.

    ``baseline`` is what ``api.document`` decodes to; every part of the API equal to the
    baseline's is written exactly as the source had it.  Without a source document the whole
    document is written from the model.  The caller validates the result against ``version``.
    """
    if baseline is None or api.document is None:
        doc: dict[str, Any] = {"asyncapi": version, "info": {}}
        baseline = None
    else:
        doc = thaw(api.document)
        doc["asyncapi"] = version
    encode_info(doc, api, baseline)
    encode_root_extensions(doc, api, baseline)
    _encode_servers(doc, api, baseline)
    _encode_channels(doc, api, baseline)
    encode_security(doc, api, baseline, scopes_key=_SCOPES, prune=_drop_dangling_requirements)
    return doc


def _server(endpoint: Endpoint, existing: Any) -> dict[str, Any]:
    server = dict(existing) if isinstance(existing, Mapping) and "$ref" not in existing else {}
    server.pop("variables", None)
    server["url"] = endpoint.url
    server["protocol"] = "wss" if endpoint.secure else "ws"
    return {"url": server.pop("url"), "protocol": server.pop("protocol"), **server}


def _encode_servers(doc: dict[str, Any], api: StreamingAPI, base: StreamingAPI | None) -> None:
    unchanged = base is not None and (api.production_endpoint, api.sandbox_endpoint) == (
        base.production_endpoint,
        base.sandbox_endpoint,
    )
    if unchanged:
        return
    servers = doc.setdefault("servers", {})
    production_name = (production_server_name(servers) if base else None) or "production"
    for name, endpoint, before in (
        (production_name, api.production_endpoint, base.production_endpoint if base else None),
        ("sandbox", api.sandbox_endpoint, base.sandbox_endpoint if base else None),
    ):
        if base is not None and endpoint == before:
            continue
        if endpoint is None:
            servers.pop(name, None)
        else:
            servers[name] = _server(endpoint, servers.get(name))
    if base is None and api.security:
        for server in servers.values():
            server["security"] = [{scheme.name: []} for scheme in api.security]
    if not servers:
        del doc["servers"]


def _encode_operation(
    op: TopicOperation, existing: Any, before: TopicOperation | None
) -> dict[str, Any]:
    out = dict(existing) if isinstance(existing, Mapping) else {}
    implied = set(_operation_security_scopes(out))
    for key, value in (
        ("summary", op.summary),
        ("description", op.description),
        ("operationId", op.operation_id),
        ("x-uri-mapping", op.uri_mapping),
    ):
        set_or_drop(out, key, value)
    x_scopes_written = [s for s in op.scopes if s not in implied]
    if before is None or op.scopes != before.scopes:
        set_or_drop(out, "x-scopes", x_scopes_written or None)
    if before is None or op.message != before.message:
        set_or_drop(out, "message", thaw(op.message) if op.message is not None else None)
    return out


def _encode_topic(topic: Topic, existing: Any, before: Topic | None) -> dict[str, Any]:
    if not isinstance(existing, Mapping) or "$ref" in existing:
        # A channel written as a $ref is written out whole once it changes.
        existing, before = {}, None
    out = dict(existing)
    set_or_drop(out, "description", topic.description)
    if before is None or topic.parameters != before.parameters:
        parameters = {}
        for param in topic.parameters:
            body: dict[str, Any] = {}
            if param.description is not None:
                body["description"] = param.description
            body["schema"] = thaw(param.schema) if param.schema is not None else {"type": "string"}
            parameters[param.name] = body
        set_or_drop(out, "parameters", parameters or None)
    for op_kind in Operation:
        op = topic.publish if op_kind is Operation.PUBLISH else topic.subscribe
        old = (
            None
            if before is None
            else (before.publish if op_kind is Operation.PUBLISH else before.subscribe)
        )
        if op is None:
            out.pop(op_kind.value, None)
        elif op != old:
            out[op_kind.value] = _encode_operation(op, out.get(op_kind.value), old)
    if before is None or topic.bindings != before.bindings:
        set_or_drop(out, "bindings", thaw(topic.bindings) or None)
    if before is None or topic.auth_type != before.auth_type:
        set_or_drop(out, "x-auth-type", topic.auth_type.value if topic.auth_type else None)
        if not topic.is_open:
            out.pop(DISABLE_SECURITY_EXTENSION, None)  # it would open the topic again
    return out


def _encode_channels(doc: dict[str, Any], api: StreamingAPI, base: StreamingAPI | None) -> None:
    if base is not None and api.topics == base.topics:
        return
    existing: dict[str, Any] = doc.get("channels") or {}
    spelled = {name: name for name in existing}  # the source's keys, as it wrote them
    before = {t.name: t for t in base.topics} if base else {}
    channels: dict[str, Any] = {}
    for topic in api.topics:
        old = before.get(topic.name)
        key = spelled.get(topic.name, topic.name)
        if old is not None and old == topic:
            channels[key] = existing[topic.name]
        else:
            channels[key] = _encode_topic(topic, existing.get(topic.name), old)
    doc["channels"] = channels


def _drop_dangling_requirements(doc: dict[str, Any], known: set[str]) -> None:
    for server in mapping(doc.get("servers")).values():
        if isinstance(server, dict) and isinstance(server.get("security"), list):
            server["security"] = [
                r for r in server["security"] if all(k in known for k in mapping(r))
            ]
            if not server["security"]:
                del server["security"]


# --------------------------------------------------------------------------- versions

# What each 2.x version added that an older one cannot express, from the official schemas:
# (object kind, member) -> the version that introduced the member.  Other differences between
# the 2.x schemas are descriptions, examples, binding names (bindings objects accept any
# protocol) and places where a $ref became allowed ($refs are resolved before validation).
_INTRODUCED: dict[tuple[str, str], str] = {
    ("Message Example Object", "name"): "2.1.0",
    ("Message Example Object", "summary"): "2.1.0",
    ("Channel Item Object", "servers"): "2.2.0",
    ("Components Object", "servers"): "2.3.0",
    ("Components Object", "channels"): "2.3.0",
    ("Components Object", "serverVariables"): "2.4.0",
    ("Message Object", "messageId"): "2.4.0",
    ("Message Trait Object", "messageId"): "2.4.0",
    ("Operation Object", "security"): "2.4.0",
    ("Operation Trait Object", "security"): "2.4.0",
    ("Server Object", "tags"): "2.5.0",
}
# Security scheme types added by 2.1.0 (SASL).
_SASL_TYPES = frozenset({"plain", "scramSha256", "scramSha512", "gssapi"})
_SASL_SINCE = "2.1.0"
_SCHEME = "Security Scheme Object"
VERSION_FEATURE_RULE = "asyncapi-version-feature"


_Path = tuple[str, ...]


def _objects(data: Mapping[str, Any]) -> list[tuple[str, _Path, Mapping[str, Any]]]:
    """(kind, path, object) of every object a later 2.x version extended, components first (and
    traits before what uses them), so that an object shared through a ``$ref`` is met first
    where it is defined."""
    seen: set[tuple[str, int]] = set()
    found: list[tuple[str, _Path, Mapping[str, Any]]] = []

    def add(kind: str, path: _Path, node: Any) -> bool:
        if not isinstance(node, Mapping) or (kind, id(node)) in seen:
            return False
        seen.add((kind, id(node)))
        found.append((kind, path, node))
        return True

    def traits(kind: str, node: Mapping[str, Any], path: _Path) -> None:
        items = node.get("traits")
        if isinstance(items, list):
            for i, trait in enumerate(items):
                add(kind, (*path, "traits", str(i)), trait)

    def message(node: Any, path: _Path) -> None:
        if isinstance(node, Mapping) and isinstance(node.get("oneOf"), list):
            for i, item in enumerate(node["oneOf"]):
                message(item, (*path, "oneOf", str(i)))
            return
        if not add("Message Object", path, node):
            return
        traits("Message Trait Object", node, path)
        examples = node.get("examples")
        if isinstance(examples, list):
            for i, example in enumerate(examples):
                add("Message Example Object", (*path, "examples", str(i)), example)

    def channel(node: Any, path: _Path) -> None:
        if not add("Channel Item Object", path, node):
            return
        for op in ("publish", "subscribe"):
            operation = node.get(op)
            if add("Operation Object", (*path, op), operation):
                traits("Operation Trait Object", operation, (*path, op))
                message(operation.get("message"), (*path, op, "message"))

    components = mapping(data.get("components"))
    add("Components Object", ("components",), components)
    for kind, key in (
        ("Message Trait Object", "messageTraits"),
        ("Operation Trait Object", "operationTraits"),
        ("Server Object", "servers"),
        (_SCHEME, "securitySchemes"),
    ):
        for name, node in mapping(components.get(key)).items():
            add(kind, ("components", key, name), node)
    for name, node in mapping(components.get("messages")).items():
        message(node, ("components", "messages", name))
    for name, node in mapping(components.get("channels")).items():
        channel(node, ("components", "channels", name))
    for name, node in mapping(data.get("servers")).items():
        add("Server Object", ("servers", name), node)
    for name, node in mapping(data.get("channels")).items():
        channel(node, ("channels", name))
    return found


def version_gaps(data: Mapping[str, Any], version: str) -> list[Problem]:
    """What ``data`` (a resolved 2.x document) uses that AsyncAPI ``version`` lacks: one problem
    per use, pointing at the member (or, for a SASL security scheme, the scheme) to leave out,
    naming the feature and the version that introduced it."""

    def later(since: str) -> bool:
        return SUPPORTED_VERSIONS.index(since) > SUPPORTED_VERSIONS.index(version)

    problems: list[Problem] = []

    def gap(path: _Path, feature: str, since: str) -> None:
        problems.append(
            Problem(
                pointer=pointer_to(*path),
                rule=VERSION_FEATURE_RULE,
                message=f"{feature} was introduced in AsyncAPI {since}; "
                f"AsyncAPI {version} cannot express it",
            )
        )

    for kind, path, node in _objects(data):
        if kind == _SCHEME:
            kind_name = node.get("type")
            if isinstance(kind_name, str) and kind_name in _SASL_TYPES and later(_SASL_SINCE):
                gap(path, f"security scheme type {json_excerpt(kind_name)}", _SASL_SINCE)
            continue
        for member in node:
            since = _INTRODUCED.get((kind, member))
            if since is not None and later(since):
                gap((*path, member), f"{json_excerpt(member)} ({kind})", since)
    return problems
