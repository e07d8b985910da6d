"""AsyncAPI 2.x documents <-> the streaming-API model.

Decoding reads a validated, ``$ref``-resolved document into a :class:`StreamingAPI`.  Encoding
writes an API back out: it starts from the imported source document (kept raw in the model, with
its ``$ref``s, unknown fields, extensions and key order) and rewrites only what differs between
the API and what the source decodes to, so an unchanged API exports to equal data.  An API
created from scratch is written from nothing.

Mapping (the README's "How documents map to APIs"):

- ``info.title``/``version``/``description`` -> name, version, description.
- context: the root extension ``x-asyncapi-gw-context``, else ``/`` + the title slug.
- throttling: the root extension ``x-asyncapi-gw-throttling``
  (``{events: N, per: second|minute|day, perPrincipal: M}``, ``perPrincipal`` optional).
- allow_encoded_slashes: the root extension ``x-asyncapi-gw-allow-encoded-slashes`` (a boolean;
  absent is false).
- endpoints: the server named ``production`` (else the first ``ws``/``wss`` server) and ``sandbox``;
  server variables expand to their defaults.
- channels -> topics; WSO2's ``x-uri-mapping`` and ``x-scopes`` on publish/subscribe,
  ``x-auth-type`` on the channel; WSO2 Choreo Connect's ``x-wso2-disable-security: true`` on the
  channel makes the topic open (auth type ``None``) whatever ``x-auth-type`` says, as there.
  Elsewhere (the root, an operation) that marker is not read, with a warning.
- ``components.securitySchemes`` -> security: oauth2, openIdConnect and http bearer are
  ``oauth2``; apiKey and httpApiKey are ``api_key``.  When the production server names security
  requirements, those schemes apply; otherwise every declared scheme does (WSO2 declares its
  schemes without server requirements).  WSO2's ``x-scopes-bindings`` in a flow is kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import attrs

from asyncapi_gw.errors import ConversionError, Problem, Severity, json_excerpt
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
    thaw,
)
from asyncapi_gw.pointers import pointer_to
from asyncapi_gw.schema import SUPPORTED_VERSIONS

__all__ = [
    "CONTEXT_EXTENSION",
    "DISABLE_SECURITY_EXTENSION",
    "ENCODED_SLASHES_EXTENSION",
    "THROTTLING_EXTENSION",
    "VERSION_FEATURE_RULE",
    "WSO2_PLACEHOLDER_AUTHORIZATION_URL",
    "decode",
    "encode",
    "version_gaps",
]

CONTEXT_EXTENSION = "x-asyncapi-gw-context"
# WSO2 Choreo Connect's open-topic marker (a boolean).
DISABLE_SECURITY_EXTENSION = "x-wso2-disable-security"
THROTTLING_EXTENSION = "x-asyncapi-gw-throttling"
ENCODED_SLASHES_EXTENSION = "x-asyncapi-gw-allow-encoded-slashes"
# What WSO2 API Manager writes as the implicit flow's authorizationUrl of a new API.
WSO2_PLACEHOLDER_AUTHORIZATION_URL = "http://localhost:9999"

_AUTH_TYPES = {
    "any": AuthType.ANY,
    "application": AuthType.APPLICATION,
    "application_user": AuthType.APPLICATION_USER,
    "application user": AuthType.APPLICATION_USER,
    "application & application user": AuthType.ANY,
    "none": AuthType.NONE,
}
_OAUTH_TYPES = {"oauth2", "openIdConnect"}
_APIKEY_TYPES = {"apiKey", "httpApiKey"}
_VARIABLE = re.compile(r"\{([^{}]+)\}")


@attrs.define
class _Decoder:
    """Collects problems while decoding; strict decoding raises on the first batch."""

    lenient: bool
    problems: list[Problem] = attrs.Factory(list)

    def fail(
        self, pointer: str, message: str, rule: str = "model-conversion", *, fatal: bool = False
    ) -> None:
        """A part that cannot be represented; ``fatal`` when no API can be built without it
        (an error even when lenient)."""
        severity = Severity.WARNING if self.lenient and not fatal else Severity.ERROR
        self.problems.append(
            Problem(pointer=pointer, message=message, rule=rule, severity=severity)
        )

    def warn(self, pointer: str, message: str, rule: str = "model-conversion") -> None:
        self.problems.append(
            Problem(pointer=pointer, message=message, rule=rule, severity=Severity.WARNING)
        )

    def attempt(self, pointer: str, build: Callable[[], Any], *, fatal: bool = False) -> Any:
        """``build()``, or ``None`` with a problem when the model refuses the value."""
        try:
            return build()
        except (ValueError, TypeError) as exc:
            self.fail(pointer, str(exc), fatal=fatal)
            return None

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.ERROR]


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


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
    decoder = _Decoder(lenient=lenient)
    info = _mapping(data.get("info"))
    identified = _check_identity(data, decoder)
    name = _text(info.get("title")) or ""
    version = _text(info.get("version")) or ""
    if context is None:
        context = _text(data.get(CONTEXT_EXTENSION)) or default_context(name)
    production, sandbox = _endpoints(data, decoder)
    # Decoded even when the API cannot be built, so that every problem is reported.
    parts = decoder.attempt(
        "/info",
        lambda: (
            _topics(data, decoder),
            _security(data, decoder),
            _throttling(data, decoder),
            _encoded_slashes(data, decoder),
        ),
        fatal=True,
    )
    api = (
        None
        if not identified or parts is None
        else decoder.attempt(
            "/info",
            lambda: StreamingAPI(
                name=name,
                version=version,
                context=context,
                description=_text(info.get("description")),
                production_endpoint=production,
                sandbox_endpoint=sandbox,
                topics=parts[0],
                security=parts[1],
                throttling=parts[2],
                allow_encoded_slashes=parts[3],
                asyncapi_version=_text(data.get("asyncapi")),
                document=source if source is not None else data,
                base_uri=base_uri,
            ),
            fatal=True,
        )
    )
    if api is None or decoder.errors:
        raise ConversionError(
            "the document cannot be represented as a WebSocket API", decoder.problems
        )
    return api, decoder.problems


def _check_identity(data: Mapping[str, Any], decoder: _Decoder) -> bool:
    """Whether ``info`` gives a name and a version; a fatal problem for each that is missing or
    blank: no API can be built without them, however lenient the import."""
    info = data.get("info")
    found = True
    for field, need in (
        ("title", "a name"),
        ("version", "a version (it is part of the gateway path)"),
    ):
        value = info.get(field) if isinstance(info, Mapping) else None
        if isinstance(value, str) and value.strip():
            continue
        if not isinstance(info, Mapping):
            where, state = "", "is missing (the document has no info object)"
        elif field not in info:
            where, state = "/info", "is missing"
        elif isinstance(value, str):
            where, state = f"/info/{field}", "is empty"
        else:
            where, state = f"/info/{field}", f"is {json_excerpt(value)}, not text"
        decoder.fail(where, f"info.{field} {state}, and an API needs {need}", fatal=True)
        found = False
    return found


def _server_url(server: Mapping[str, Any]) -> str:
    url = _text(server.get("url"))
    if url is None:
        raise ValueError("the server has no url")
    variables = _mapping(server.get("variables"))

    def expand(match: re.Match[str]) -> str:
        variable = _mapping(variables.get(match.group(1)))
        default = variable.get("default")
        if default is None and isinstance(variable.get("enum"), list) and variable["enum"]:
            default = variable["enum"][0]
        if not isinstance(default, str):
            raise ValueError(f"server variable {match.group(1)!r} has no default value")
        return default

    url = _VARIABLE.sub(expand, url)
    protocol = _text(server.get("protocol")) or ""
    if "://" not in url and protocol in ("ws", "wss"):
        url = f"{protocol}://{url}"
    return url


def _is_websocket(server: Mapping[str, Any]) -> bool:
    protocol = server.get("protocol")
    url = server.get("url")
    return protocol in ("ws", "wss") or (
        isinstance(url, str) and url.startswith(("ws://", "wss://"))
    )


def _production_server_name(servers: Mapping[str, Any]) -> str | None:
    if isinstance(servers.get("production"), Mapping):
        return "production"
    for server_name, server in servers.items():
        if server_name != "sandbox" and isinstance(server, Mapping) and _is_websocket(server):
            return str(server_name)
    return None


def _endpoints(
    data: Mapping[str, Any], decoder: _Decoder
) -> tuple[Endpoint | None, Endpoint | None]:
    servers = _mapping(data.get("servers"))
    found: list[Endpoint | None] = []
    for server_name in (_production_server_name(servers), "sandbox"):
        server = _mapping(servers.get(server_name)) if server_name else {}
        if not server:
            found.append(None)
            continue
        pointer = pointer_to("servers", str(server_name), "url")
        if not _is_websocket(server):
            decoder.warn(
                pointer,
                f"server {json_excerpt(server_name)} uses protocol "
                f"{json_excerpt(server.get('protocol'))}, not ws or "
                "wss: the API has no such endpoint and cannot be served through it",
            )
            found.append(None)
            continue
        url = decoder.attempt(pointer, partial(_server_url, server))
        found.append(None if url is None else decoder.attempt(pointer, partial(Endpoint, url=url)))
    return found[0], found[1]


def _scopes(value: Any) -> tuple[str, ...]:
    """WSO2's ``x-scopes``: a list, or an object such as ``{"0": "creator"}``."""
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return tuple(s for s in value if isinstance(s, str))
    if isinstance(value, str):
        return (value,)
    return ()


def _operation_security_scopes(operation: Mapping[str, Any]) -> tuple[str, ...]:
    requirements = operation.get("security")
    if not isinstance(requirements, list):
        return ()
    return tuple(
        s
        for requirement in requirements
        for scopes in _mapping(requirement).values()
        if isinstance(scopes, list)
        for s in scopes
        if isinstance(s, str)
    )


def _operation(op: Operation, raw: Mapping[str, Any]) -> TopicOperation:
    message = raw.get("message")
    return TopicOperation(
        operation=op,
        description=_text(raw.get("description")),
        summary=_text(raw.get("summary")),
        operation_id=_text(raw.get("operationId")),
        uri_mapping=_text(raw.get("x-uri-mapping")),
        scopes=tuple(dict.fromkeys(_scopes(raw.get("x-scopes")) + _operation_security_scopes(raw))),
        message=message if isinstance(message, Mapping) else None,
    )


def _auth_type(value: Any, pointer: str, decoder: _Decoder) -> AuthType | None:
    if value is None:
        return None
    found = _AUTH_TYPES.get(value.strip().lower()) if isinstance(value, str) else None
    if found is None:
        decoder.fail(
            pointer,
            f"x-auth-type {json_excerpt(value)} is not one of Any, Application, "
            "Application_User, None",
        )
    return found


def _disabled_security(channel: Mapping[str, Any], pointer: str, decoder: _Decoder) -> bool:
    """Whether Choreo Connect's marker opens the channel; it is read on channels only."""
    for kind in Operation:
        operation = channel.get(kind.value)
        if isinstance(operation, Mapping) and DISABLE_SECURITY_EXTENSION in operation:
            _ignored_marker(f"{pointer}/{kind.value}/{DISABLE_SECURITY_EXTENSION}", decoder)
    value = channel.get(DISABLE_SECURITY_EXTENSION, False)
    if not isinstance(value, bool):
        decoder.fail(
            f"{pointer}/{DISABLE_SECURITY_EXTENSION}",
            f"{DISABLE_SECURITY_EXTENSION} is true or false, not {json_excerpt(value)}",
        )
        return False
    return value


def _ignored_marker(pointer: str, decoder: _Decoder) -> None:
    decoder.warn(
        pointer,
        f"{DISABLE_SECURITY_EXTENSION} is read on channels only: here it is ignored, and "
        "security applies as if it were absent",
    )


def _topic(name: str, channel: Mapping[str, Any], decoder: _Decoder) -> Topic | None:
    pointer = pointer_to("channels", name)
    parameters = [
        Parameter(
            name=str(param_name),
            description=_text(_mapping(param).get("description")),
            schema=(
                _mapping(param)["schema"]
                if isinstance(_mapping(param).get("schema"), Mapping)
                else None
            ),
        )
        for param_name, param in _mapping(channel.get("parameters")).items()
    ]
    ops = {
        op: _operation(op, channel[op.value])
        for op in Operation
        if isinstance(channel.get(op.value), Mapping)
    }
    bindings = channel.get("bindings")
    auth_type = _auth_type(channel.get("x-auth-type"), pointer + "/x-auth-type", decoder)
    if _disabled_security(channel, pointer, decoder):
        if auth_type not in (None, AuthType.NONE):
            decoder.warn(
                pointer + "/x-auth-type",
                f"x-auth-type {json_excerpt(channel['x-auth-type'])} is overridden by "
                f"{DISABLE_SECURITY_EXTENSION}: true; the topic is open",
            )
        auth_type = AuthType.NONE
    result: Topic | None = decoder.attempt(
        pointer,
        lambda: Topic(
            name=name,
            description=_text(channel.get("description")),
            publish=ops.get(Operation.PUBLISH),
            subscribe=ops.get(Operation.SUBSCRIBE),
            parameters=parameters,
            bindings=bindings if isinstance(bindings, Mapping) else {},
            auth_type=auth_type,
        ),
    )
    return result


def _topics(data: Mapping[str, Any], decoder: _Decoder) -> list[Topic]:
    if DISABLE_SECURITY_EXTENSION in data:
        _ignored_marker(pointer_to(DISABLE_SECURITY_EXTENSION), decoder)
    topics: list[Topic] = []
    seen: dict[str, str] = {}
    for name, channel in _mapping(data.get("channels")).items():
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


def _flows_scopes(flows: Mapping[str, Any], key: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for flow in flows.values():
        for scope, text in _mapping(_mapping(flow).get(key)).items():
            merged.setdefault(str(scope), text if isinstance(text, str) else str(text))
    return merged


def _scheme_kind(scheme: Mapping[str, Any]) -> AuthKind | None:
    kind = scheme.get("type")
    if not isinstance(kind, str):
        return None
    if kind in _OAUTH_TYPES or (
        kind == "http" and str(scheme.get("scheme", "")).lower() == "bearer"
    ):
        return AuthKind.OAUTH2
    if kind in _APIKEY_TYPES:
        return AuthKind.API_KEY
    return None


def _required_scheme_names(data: Mapping[str, Any]) -> list[str] | None:
    """Schemes named by the production server's security requirements, if it names any."""
    servers = _mapping(data.get("servers"))
    name = _production_server_name(servers)
    requirements = _mapping(servers.get(name)).get("security") if name else None
    if not isinstance(requirements, list):
        return None
    return list(dict.fromkeys(str(k) for r in requirements for k in _mapping(r)))


def _security(data: Mapping[str, Any], decoder: _Decoder) -> list[SecurityScheme]:
    declared = _mapping(_mapping(data.get("components")).get("securitySchemes"))
    required = _required_scheme_names(data)
    schemes: list[SecurityScheme] = []
    for name in required if required is not None else list(declared):
        raw = _mapping(declared.get(name))
        kind = _scheme_kind(raw)
        if kind is None:
            if required is not None:
                decoder.fail(
                    pointer_to("components", "securitySchemes", name),
                    f"security scheme {json_excerpt(name)} of type {json_excerpt(raw.get('type'))} "
                    "cannot be enforced "
                    "by the gateway (supported: oauth2, openIdConnect, http bearer, apiKey, "
                    "httpApiKey)",
                )
            continue
        flows = _mapping(raw.get("flows"))
        schemes.append(
            SecurityScheme(
                name=name,
                kind=kind,
                scopes=_flows_scopes(flows, "scopes"),
                scope_bindings=_flows_scopes(flows, "x-scopes-bindings"),
                description=_text(raw.get("description")),
            )
        )
    return schemes


def _throttling(data: Mapping[str, Any], decoder: _Decoder) -> Throttling | None:
    raw = data.get(THROTTLING_EXTENSION)
    if raw is None:
        return None
    raw = _mapping(raw)
    pointer = pointer_to(THROTTLING_EXTENSION)
    try:
        unit = ThrottlingUnit(raw.get("per", "minute"))
    except ValueError:
        decoder.fail(pointer + "/per", "throttling 'per' must be second, minute or day")
        return None
    events: Any = raw.get("events")
    per_principal: Any = raw.get("perPrincipal")
    result: Throttling | None = decoder.attempt(
        pointer, lambda: Throttling(events=events, unit=unit, per_principal=per_principal)
    )
    return result


def _encoded_slashes(data: Mapping[str, Any], decoder: _Decoder) -> bool:
    raw = data.get(ENCODED_SLASHES_EXTENSION, False)
    if not isinstance(raw, bool):
        decoder.fail(pointer_to(ENCODED_SLASHES_EXTENSION), "must be true or false")
        return False
    return raw


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
    _encode_info(doc, api, baseline)
    _encode_root_extensions(doc, api, baseline)
    _encode_servers(doc, api, baseline)
    _encode_channels(doc, api, baseline)
    _encode_security(doc, api, baseline)
    return doc


def _set(target: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        target.pop(key, None)
    else:
        target[key] = value


def _encode_info(doc: dict[str, Any], api: StreamingAPI, base: StreamingAPI | None) -> None:
    if base is not None and (api.name, api.version, api.description) == (
        base.name,
        base.version,
        base.description,
    ):
        return
    info = doc.setdefault("info", {})
    if base is None or api.name != base.name:
        info["title"] = api.name
    if base is None or api.version != base.version:
        info["version"] = api.version
    if base is None or api.description != base.description:
        _set(info, "description", api.description)


def _encode_root_extensions(
    doc: dict[str, Any], api: StreamingAPI, base: StreamingAPI | None
) -> None:
    # What the document gives as the context: its extension, else the (new) title's slug.
    stated = doc.get(CONTEXT_EXTENSION, default_context(api.name))
    if base is None or stated != api.context:
        doc[CONTEXT_EXTENSION] = api.context
    if base is None or api.throttling != base.throttling:
        throttling = api.throttling
        _set(
            doc,
            THROTTLING_EXTENSION,
            None if throttling is None else _encode_throttling(throttling),
        )
    if base is None or api.allow_encoded_slashes != base.allow_encoded_slashes:
        _set(doc, ENCODED_SLASHES_EXTENSION, True if api.allow_encoded_slashes else None)


def _encode_throttling(throttling: Throttling) -> dict[str, Any]:
    out: dict[str, Any] = {"events": throttling.events, "per": throttling.unit.value}
    if throttling.per_principal is not None:
        out["perPrincipal"] = throttling.per_principal
    return out


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
    production_name = (_production_server_name(servers) if base else None) or "production"
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
        _set(out, key, value)
    x_scopes = [s for s in op.scopes if s not in implied]
    if before is None or op.scopes != before.scopes:
        _set(out, "x-scopes", x_scopes or None)
    if before is None or op.message != before.message:
        _set(out, "message", thaw(op.message) if op.message is not None else None)
    return out


def _encode_topic(topic: Topic, existing: Any, before: Topic | None) -> dict[str, Any]:
    if not isinstance(existing, Mapping) or "$ref" in existing:
        # A channel written as a $ref is written out whole once it changes.
        existing, before = {}, None
    out = dict(existing)
    _set(out, "description", topic.description)
    if before is None or topic.parameters != before.parameters:
        parameters = {}
        for param in topic.parameters:
            body: dict[str, Any] = {}
            if param.description is not None:
                body["description"] = param.description
            body["schema"] = thaw(param.schema) if param.schema is not None else {"type": "string"}
            parameters[param.name] = body
        _set(out, "parameters", parameters or None)
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
        _set(out, "bindings", thaw(topic.bindings) or None)
    if before is None or topic.auth_type != before.auth_type:
        _set(out, "x-auth-type", topic.auth_type.value if topic.auth_type else None)
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


def _encode_scheme(scheme: SecurityScheme, existing: Any) -> dict[str, Any]:
    out = dict(existing) if isinstance(existing, Mapping) and "$ref" not in existing else {}
    if scheme.kind is AuthKind.API_KEY:
        if out.get("type") not in _APIKEY_TYPES:
            out = {"type": "httpApiKey", "name": "apikey", "in": "header"}
    else:
        if _scheme_kind(out) is not AuthKind.OAUTH2 or out.get("type") != "oauth2":
            out = {"type": "oauth2"}
        flows = dict(_mapping(out.get("flows"))) or {
            "implicit": {"authorizationUrl": WSO2_PLACEHOLDER_AUTHORIZATION_URL}
        }
        first = next(iter(flows))
        for flow_name in flows:
            flow = dict(_mapping(flows[flow_name]))
            flow["scopes"] = thaw(scheme.scopes) if flow_name == first else {}
            if scheme.scope_bindings and flow_name == first:
                flow["x-scopes-bindings"] = thaw(scheme.scope_bindings)
            else:
                flow.pop("x-scopes-bindings", None)
            flows[flow_name] = flow
        out["flows"] = flows
    _set(out, "description", scheme.description)
    return out


def _encode_security(doc: dict[str, Any], api: StreamingAPI, base: StreamingAPI | None) -> None:
    if base is not None and api.security == base.security:
        return
    components = doc.setdefault("components", {})
    declared: dict[str, Any] = components.setdefault("securitySchemes", {})
    before = {s.name: s for s in base.security} if base else {}
    for name in set(before) - {s.name for s in api.security}:
        declared.pop(name, None)
    for scheme in api.security:
        if before.get(scheme.name) != scheme:
            declared[scheme.name] = _encode_scheme(scheme, declared.get(scheme.name))
    if not declared:
        del components["securitySchemes"]
    if not components:
        del doc["components"]
    _drop_dangling_requirements(doc, {s.name for s in api.security} | set(declared))


def _drop_dangling_requirements(doc: dict[str, Any], known: set[str]) -> None:
    for server in _mapping(doc.get("servers")).values():
        if isinstance(server, dict) and isinstance(server.get("security"), list):
            server["security"] = [
                r for r in server["security"] if all(k in known for k in _mapping(r))
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

    components = _mapping(data.get("components"))
    add("Components Object", ("components",), components)
    for kind, key in (
        ("Message Trait Object", "messageTraits"),
        ("Operation Trait Object", "operationTraits"),
        ("Server Object", "servers"),
        (_SCHEME, "securitySchemes"),
    ):
        for name, node in _mapping(components.get(key)).items():
            add(kind, ("components", key, name), node)
    for name, node in _mapping(components.get("messages")).items():
        message(node, ("components", "messages", name))
    for name, node in _mapping(components.get("channels")).items():
        channel(node, ("components", "channels", name))
    for name, node in _mapping(data.get("servers")).items():
        add("Server Object", ("servers", name), node)
    for name, node in _mapping(data.get("channels")).items():
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
