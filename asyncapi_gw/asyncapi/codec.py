"""What the AsyncAPI 2.x and 3.x codecs share: the parts of a document both families write alike.

- ``info.title``/``version``/``description`` -> name, version, description.
- context: the root extension ``x-asyncapi-gw-context``, else ``/`` + the title slug.
- throttling: the root extension ``x-asyncapi-gw-throttling``
  (``{events: N, per: second|minute|day, perPrincipal: M}``, ``perPrincipal`` optional).
- allow_encoded_slashes: the root extension ``x-asyncapi-gw-allow-encoded-slashes`` (a boolean;
  absent is false).
- endpoints: the server named ``production`` (else the first ``ws``/``wss`` server) and
  ``sandbox``; server variables expand to their defaults.  How a server spells its URL is the
  family's own (2.x ``url``, 3.x ``host`` + ``pathname``).
- WSO2's extensions: ``x-uri-mapping`` and ``x-scopes`` (a list, or an object such as
  ``{"0": "creator"}``) on operations, ``x-auth-type`` on channels, ``x-scopes-bindings`` in an
  oauth2 flow, and WSO2 Choreo Connect's ``x-wso2-disable-security: true`` on a channel, which
  opens the topic (auth type ``None``) whatever ``x-auth-type`` says.
- security schemes: oauth2, openIdConnect and http bearer are ``oauth2``; apiKey and httpApiKey
  are ``api_key``.  The flows' scopes are ``scopes`` in 2.x and ``availableScopes`` in 3.x.

Decoding collects :class:`~asyncapi_gw.errors.Problem` s in a :class:`Decoder`: what the model
cannot represent is a ``model-conversion`` error (a warning when decoding leniently, unless no API
can be built without it, such as a name), what it represents by a stated choice is a warning.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any

import attrs

from asyncapi_gw.errors import ConversionError, Problem, Severity, json_excerpt
from asyncapi_gw.model import (
    AuthKind,
    AuthType,
    Endpoint,
    PointOfView,
    SecurityScheme,
    StreamingAPI,
    Throttling,
    ThrottlingUnit,
    Topic,
    default_context,
    thaw,
)
from asyncapi_gw.pointers import pointer_to

__all__ = [
    "CONTEXT_EXTENSION",
    "DISABLE_SECURITY_EXTENSION",
    "ENCODED_SLASHES_EXTENSION",
    "THROTTLING_EXTENSION",
    "WSO2_PLACEHOLDER_AUTHORIZATION_URL",
    "Decoder",
    "auth_type",
    "build_api",
    "channel_opened",
    "encode_info",
    "encode_root_extensions",
    "encode_scheme",
    "encode_security",
    "endpoints",
    "expand_variables",
    "ignored_marker",
    "is_websocket",
    "mapping",
    "production_server_name",
    "scheme_kind",
    "security",
    "set_or_drop",
    "text",
    "x_scopes",
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
class Decoder:
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


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def build_api(
    data: Mapping[str, Any],
    decoder: Decoder,
    *,
    context: str | None,
    endpoints: tuple[Endpoint | None, Endpoint | None],
    topics: Callable[[], list[Topic]],
    security: Callable[[], list[SecurityScheme]],
    source: Mapping[str, Any] | None,
    base_uri: str | None,
    point_of_view: PointOfView | None = None,
) -> tuple[StreamingAPI, list[Problem]]:
    """The API of a decoded document, or :class:`ConversionError` with every problem."""
    info = mapping(data.get("info"))
    identified = _check_identity(data, decoder)
    name = text(info.get("title")) or ""
    version = text(info.get("version")) or ""
    if context is None:
        context = text(data.get(CONTEXT_EXTENSION)) or default_context(name)
    production, sandbox = endpoints
    # Decoded even when the API cannot be built, so that every problem is reported.
    parts = decoder.attempt(
        "/info",
        lambda: (topics(), security(), _throttling(data, decoder), _encoded_slashes(data, decoder)),
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
                description=text(info.get("description")),
                production_endpoint=production,
                sandbox_endpoint=sandbox,
                topics=parts[0],
                security=parts[1],
                throttling=parts[2],
                allow_encoded_slashes=parts[3],
                asyncapi_version=text(data.get("asyncapi")),
                point_of_view=point_of_view,
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


def _check_identity(data: Mapping[str, Any], decoder: Decoder) -> bool:
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


# --------------------------------------------------------------------------- servers


def expand_variables(template: str, variables: Mapping[str, Any]) -> str:
    """``template`` with each ``{name}`` replaced by the server variable's default (else the
    first of its ``enum``); ``ValueError`` names a variable without either."""

    def expand(match: re.Match[str]) -> str:
        variable = mapping(variables.get(match.group(1)))
        default = variable.get("default")
        if default is None and isinstance(variable.get("enum"), list) and variable["enum"]:
            default = variable["enum"][0]
        if not isinstance(default, str):
            raise ValueError(f"server variable {json_excerpt(match.group(1))} has no default value")
        return default

    return _VARIABLE.sub(expand, template)


def is_websocket(server: Mapping[str, Any]) -> bool:
    protocol = server.get("protocol")
    url = server.get("url")
    return protocol in ("ws", "wss") or (
        isinstance(url, str) and url.startswith(("ws://", "wss://"))
    )


def production_server_name(servers: Mapping[str, Any]) -> str | None:
    if isinstance(servers.get("production"), Mapping):
        return "production"
    for server_name, server in servers.items():
        if server_name != "sandbox" and isinstance(server, Mapping) and is_websocket(server):
            return str(server_name)
    return None


def endpoints(
    data: Mapping[str, Any],
    decoder: Decoder,
    url_of: Callable[[Mapping[str, Any]], str],
    field: str,
) -> tuple[Endpoint | None, Endpoint | None]:
    """The production and sandbox endpoints; ``url_of`` spells a server's URL and ``field``
    names the server field a problem points at."""
    servers = mapping(data.get("servers"))
    found: list[Endpoint | None] = []
    for server_name in (production_server_name(servers), "sandbox"):
        server = mapping(servers.get(server_name)) if server_name else {}
        if not server:
            found.append(None)
            continue
        pointer = pointer_to("servers", str(server_name), field)
        if not is_websocket(server):
            decoder.warn(
                pointer,
                f"server {json_excerpt(server_name)} uses protocol "
                f"{json_excerpt(server.get('protocol'))}, not ws or "
                "wss: the API has no such endpoint and cannot be served through it",
            )
            found.append(None)
            continue
        url = decoder.attempt(pointer, partial(url_of, server))
        found.append(None if url is None else decoder.attempt(pointer, partial(Endpoint, url=url)))
    return found[0], found[1]


# --------------------------------------------------------------------------- WSO2 extensions


def x_scopes(value: Any) -> tuple[str, ...]:
    """WSO2's ``x-scopes``: a list, or an object such as ``{"0": "creator"}``."""
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return tuple(s for s in value if isinstance(s, str))
    if isinstance(value, str):
        return (value,)
    return ()


def auth_type(value: Any, pointer: str, decoder: Decoder) -> AuthType | None:
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


def ignored_marker(pointer: str, decoder: Decoder) -> None:
    decoder.warn(
        pointer,
        f"{DISABLE_SECURITY_EXTENSION} is read on channels only: here it is ignored, and "
        "security applies as if it were absent",
    )


def channel_opened(channel: Mapping[str, Any], pointer: str, decoder: Decoder) -> bool:
    """Whether Choreo Connect's marker on ``channel`` opens its topic."""
    value = channel.get(DISABLE_SECURITY_EXTENSION, False)
    if not isinstance(value, bool):
        decoder.fail(
            f"{pointer}/{DISABLE_SECURITY_EXTENSION}",
            f"{DISABLE_SECURITY_EXTENSION} is true or false, not {json_excerpt(value)}",
        )
        return False
    return value


# --------------------------------------------------------------------------- security


def _flows_scopes(flows: Mapping[str, Any], key: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for flow in flows.values():
        for scope, words in mapping(mapping(flow).get(key)).items():
            merged.setdefault(str(scope), words if isinstance(words, str) else str(words))
    return merged


def scheme_kind(scheme: Mapping[str, Any]) -> AuthKind | None:
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


def security(
    schemes: Iterable[tuple[str, Mapping[str, Any]]],
    decoder: Decoder,
    *,
    required: bool,
    scopes_key: str,
) -> list[SecurityScheme]:
    """The schemes the gateway enforces, from ``(name, scheme object)`` pairs.

    ``required``: the production server names them, so one the gateway cannot enforce is a
    problem; otherwise (every declared scheme) such a scheme is left out.
    """
    found: list[SecurityScheme] = []
    for name, raw in schemes:
        kind = scheme_kind(raw)
        if kind is None:
            if required:
                decoder.fail(
                    pointer_to("components", "securitySchemes", name),
                    f"security scheme {json_excerpt(name)} of type "
                    f"{json_excerpt(raw.get('type'))} cannot be enforced "
                    "by the gateway (supported: oauth2, openIdConnect, http bearer, apiKey, "
                    "httpApiKey)",
                )
            continue
        flows = mapping(raw.get("flows"))
        found.append(
            SecurityScheme(
                name=name,
                kind=kind,
                scopes=_flows_scopes(flows, scopes_key),
                scope_bindings=_flows_scopes(flows, "x-scopes-bindings"),
                description=text(raw.get("description")),
            )
        )
    return found


def _throttling(data: Mapping[str, Any], decoder: Decoder) -> Throttling | None:
    raw = data.get(THROTTLING_EXTENSION)
    if raw is None:
        return None
    raw = mapping(raw)
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


def _encoded_slashes(data: Mapping[str, Any], decoder: Decoder) -> bool:
    raw = data.get(ENCODED_SLASHES_EXTENSION, False)
    if not isinstance(raw, bool):
        decoder.fail(pointer_to(ENCODED_SLASHES_EXTENSION), "must be true or false")
        return False
    return raw


# --------------------------------------------------------------------------- encoding


def set_or_drop(target: dict[str, Any], key: str, value: Any) -> None:
    """``target[key] = value``, or no ``key`` at all when ``value`` is ``None``."""
    if value is None:
        target.pop(key, None)
    else:
        target[key] = value


def encode_info(doc: dict[str, Any], api: StreamingAPI, base: StreamingAPI | None) -> None:
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
        set_or_drop(info, "description", api.description)


def encode_root_extensions(
    doc: dict[str, Any], api: StreamingAPI, base: StreamingAPI | None
) -> None:
    # What the document gives as the context: its extension, else the (new) title's slug.
    stated = doc.get(CONTEXT_EXTENSION, default_context(api.name))
    if base is None or stated != api.context:
        doc[CONTEXT_EXTENSION] = api.context
    if base is None or api.throttling != base.throttling:
        throttling = api.throttling
        set_or_drop(
            doc,
            THROTTLING_EXTENSION,
            None if throttling is None else _encode_throttling(throttling),
        )
    if base is None or api.allow_encoded_slashes != base.allow_encoded_slashes:
        set_or_drop(doc, ENCODED_SLASHES_EXTENSION, True if api.allow_encoded_slashes else None)


def _encode_throttling(throttling: Throttling) -> dict[str, Any]:
    out: dict[str, Any] = {"events": throttling.events, "per": throttling.unit.value}
    if throttling.per_principal is not None:
        out["perPrincipal"] = throttling.per_principal
    return out


def encode_scheme(scheme: SecurityScheme, existing: Any, *, scopes_key: str) -> dict[str, Any]:
    """``scheme`` as a Security Scheme Object, keeping what ``existing`` says beyond it."""
    out = dict(existing) if isinstance(existing, Mapping) and "$ref" not in existing else {}
    if scheme.kind is AuthKind.API_KEY:
        if out.get("type") not in _APIKEY_TYPES:
            out = {"type": "httpApiKey", "name": "apikey", "in": "header"}
    else:
        if scheme_kind(out) is not AuthKind.OAUTH2 or out.get("type") != "oauth2":
            out = {"type": "oauth2"}
        flows = dict(mapping(out.get("flows"))) or {
            "implicit": {"authorizationUrl": WSO2_PLACEHOLDER_AUTHORIZATION_URL}
        }
        first = next(iter(flows))
        for flow_name in flows:
            flow = dict(mapping(flows[flow_name]))
            flow[scopes_key] = thaw(scheme.scopes) if flow_name == first else {}
            if scheme.scope_bindings and flow_name == first:
                flow["x-scopes-bindings"] = thaw(scheme.scope_bindings)
            else:
                flow.pop("x-scopes-bindings", None)
            flows[flow_name] = flow
        out["flows"] = flows
    set_or_drop(out, "description", scheme.description)
    return out


def encode_security(
    doc: dict[str, Any],
    api: StreamingAPI,
    base: StreamingAPI | None,
    *,
    scopes_key: str,
    prune: Callable[[dict[str, Any], set[str]], None],
) -> None:
    """``components.securitySchemes`` for ``api``; ``prune(doc, known)`` then drops the
    security requirements that name a scheme no longer declared."""
    if base is not None and api.security == base.security:
        return
    components = doc.setdefault("components", {})
    declared: dict[str, Any] = components.setdefault("securitySchemes", {})
    before = {s.name: s for s in base.security} if base else {}
    for name in set(before) - {s.name for s in api.security}:
        declared.pop(name, None)
    for scheme in api.security:
        if before.get(scheme.name) != scheme:
            declared[scheme.name] = encode_scheme(
                scheme, declared.get(scheme.name), scopes_key=scopes_key
            )
    if not declared:
        del components["securitySchemes"]
    if not components:
        del doc["components"]
    prune(doc, {s.name for s in api.security} | set(declared))
