"""WSO2 API Manager 4.x API projects: ``api.yaml`` plus ``Definitions/asyncapi.yaml``, to and
from a :class:`~asyncapi_gw.model.StreamingAPI`.  Pure: it reads and writes bytes in memory;
:mod:`asyncapi_gw.wso2.archive` moves them to and from folders and zips.

A project (what ``apictl export api`` writes and ``apictl import api`` reads) is

- ``api.yaml`` or ``api.json``: ``{type: api, version: v4.x.y, data: {...}}``, ``data`` being the
  Publisher's API object (name, version, context, type, endpointConfig, operations, scopes,
  securityScheme, policies, ...).  WSO2's importer reads ``api.yaml`` when both exist.
- ``Definitions/asyncapi.json`` or ``Definitions/asyncapi.yaml``: the AsyncAPI definition; the
  JSON one wins when both exist, and a project without either is refused with WSO2's own words,
  "Missing AsyncAPI definition file.".
- anything else (``Docs/``, ``Image/``, ``deployment_environments.yaml``, ``Conf/params.yaml``,
  ...), kept as it is.

Precedence, as WSO2's importer has it (``ImportUtils.importApi`` creates the API from ``data``,
then ``updateAsyncAPIDefinition`` replaces its operations by the definition's):

- from ``data``: name, version, context, endpoints (``endpointConfig``), which credentials the
  gateway accepts (``securityScheme``), the scopes with their descriptions and role bindings
  (``scopes``), the API's event quota (``apiThrottlingPolicy``);
- from the definition: the topics, their directions, URL mappings (``x-uri-mapping``), the scopes
  each requires (``x-scopes``) and their auth type (``x-auth-type``), messages and parameters.

Where both say something and differ, the import follows that precedence and reports a
``wso2-precedence`` warning naming both places.  On export, what the API did not change is
written back as it was read, so an unchanged import exports to equal data in both files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs

from asyncapi_gw import documents
from asyncapi_gw.asyncapi import (
    ImportResult,
    ValidationReport,
    export_asyncapi,
    import_asyncapi,
    validate_document,
)
from asyncapi_gw.asyncapi.codec import (
    CONTEXT_EXTENSION,
    THROTTLING_EXTENSION,
    Decoder,
    mapping,
    text,
)
from asyncapi_gw.errors import (
    ConversionError,
    DocumentError,
    Problem,
    Severity,
    UnsupportedVersionError,
    ValidationError,
    json_excerpt,
)
from asyncapi_gw.model import (
    AuthKind,
    AuthType,
    Endpoint,
    Operation,
    PointOfView,
    SecurityScheme,
    StreamingAPI,
    Throttling,
    ThrottlingUnit,
    Topic,
    freeze,
    thaw,
)
from asyncapi_gw.pointers import escape_token, pointer_to

__all__ = [
    "API_FILES",
    "DEFAULT_WSO2_VERSION",
    "DEFINITION_FILES",
    "Project",
    "ProjectFiles",
    "ProjectImport",
    "check_project",
    "decode_project",
    "definition_document",
    "encode_project",
    "missing_api_error",
    "wso2_version",
]

API_FILES = ("api.yaml", "api.json")  # the order WSO2's importer looks for them in
DEFINITION_FILES = ("Definitions/asyncapi.json", "Definitions/asyncapi.yaml")  # likewise
DEFAULT_WSO2_VERSION = "4.6.0"
_FIRST_V3_RELEASE = (4, 7)  # API-M 4.7 writes and reads AsyncAPI 3.0.0 definitions
_NOT_YET = {"SSE", "WEBSUB", "WEBHOOK", "ASYNC"}  # WSO2's other streaming API types
_VERSION = re.compile(r"v?(4)\.(\d+)(?:\.(\d+))?")
_POLICY = re.compile(r"(\d+)(K?)Per(Sec|Min|Day)")
_POLICY_UNITS = {
    "Sec": ThrottlingUnit.SECOND,
    "Min": ThrottlingUnit.MINUTE,
    "Day": ThrottlingUnit.DAY,
}
_UNLIMITED = "Unlimited"
_FOLDER_UNSAFE = re.compile(r"[^\w.\-]+")  # what a zip's folder name may not hold
# api.yaml's authType spellings (APIMappingUtil) <-> the definition's x-auth-type.
_AUTH_FROM_API_YAML = {
    "any": AuthType.ANY,
    "application & application user": AuthType.ANY,
    "application": AuthType.APPLICATION,
    "application user": AuthType.APPLICATION_USER,
    "application_user": AuthType.APPLICATION_USER,
    "none": AuthType.NONE,
}
_AUTH_TO_API_YAML = {
    AuthType.ANY: "Application & Application User",
    AuthType.APPLICATION: "Application",
    AuthType.APPLICATION_USER: "Application User",
    AuthType.NONE: "None",
}
_VERBS = {"PUBLISH": Operation.PUBLISH, "SUBSCRIBE": Operation.SUBSCRIBE}
_SECURITY = {"oauth2": AuthKind.OAUTH2, "api_key": AuthKind.API_KEY}
_SECURITY_MARKERS = {"oauth_basic_auth_api_key_mandatory", "mutualssl_mandatory"}
_SECURITY_NOT_ENFORCED = {"basic_auth", "mutualssl"}
_DEFAULT_HEADERS = {"authorizationHeader": "authorization", "apiKeyHeader": "apikey"}
# The fields api.yaml decides (the rest comes from the definition).
_API_YAML_FIELDS = (
    "name",
    "version",
    "context",
    "production_endpoint",
    "sandbox_endpoint",
    "security",
    "throttling",
)
# The rules that only ever warn: WSO2 imports such projects.
_WARNING_RULES = frozenset({"wso2-precedence", "wso2-not-enforced", "wso2-version"})
# What api.yaml alone says for a project: the definition keeps its own.
_DEFINITION_NEVER = ("context", "throttling")


@attrs.frozen(kw_only=True)
class ProjectFiles:
    """A project's files by path relative to its root (``api.yaml``,
    ``Definitions/asyncapi.yaml``, ...), the name it goes by in messages (its path), the folder
    a zip holds it in (``WebSocket-1.0.0``; empty when there is none) and, for a folder on disk,
    its ``file:`` URI (relative ``$ref``s of the definition resolve there)."""

    files: Mapping[str, bytes]
    name: str
    folder: str = ""
    directory: str | None = None


@attrs.frozen(kw_only=True)
class Project:
    """What an imported project holds besides the API: enough to write it back unchanged."""

    api_file: str
    api_data: Mapping[str, Any] = attrs.field(converter=freeze, hash=False)
    definition_file: str
    definition_api: StreamingAPI  # the definition alone
    imported: StreamingAPI  # the API as the project gave it
    others: Mapping[str, bytes] = attrs.field(factory=dict, hash=False)
    folder: str = ""

    @property
    def wso2_version(self) -> str:
        """The API Manager version api.yaml was written for (``4.1.0``), else the default."""
        found = _VERSION.fullmatch(str(self.api_data.get("version", "")))
        return _version_text(found) if found else DEFAULT_WSO2_VERSION


@attrs.frozen(kw_only=True)
class ProjectImport:
    """An imported project: the API, the warnings met, the two documents read (for locating
    problems) and the :class:`Project` to pass to :func:`encode_project`."""

    api: StreamingAPI
    warnings: tuple[Problem, ...] = ()
    document: documents.SourceDocument | None = None  # the definition
    api_document: documents.SourceDocument | None = None
    project: Project | None = None


def _version_text(found: re.Match[str]) -> str:
    return f"{found[1]}.{found[2]}.{found[3] or 0}"


def wso2_version(value: str) -> str:
    """``4.7``, ``4.7.0`` or ``v4.7.0`` as ``4.7.0``; :class:`UnsupportedVersionError` for what
    is not an API Manager 4.x version."""
    found = _VERSION.fullmatch(value.strip())
    if found is None:
        raise UnsupportedVersionError(
            f"WSO2 API Manager {json_excerpt(value)} is not supported: projects are written for "
            "API Manager 4.x (such as 4.2 or 4.7.0)"
        )
    return _version_text(found)


# ------------------------------------------------------------------------------------ reading


def _source(files: ProjectFiles, path: str) -> documents.SourceDocument:
    name = f"{files.name}/{files.folder}/{path}" if files.folder else f"{files.name}/{path}"
    uri = f"{files.directory.rstrip('/')}/{path}" if files.directory else None
    return documents.parse_document(files.files[path], name=name, uri=uri)


def missing_api_error(name: str, *, folder: bool = False) -> DocumentError:
    """What a project without api.yaml or api.json is, in WSO2's words; a folder without
    either is no project at all, and as unreadable as any other folder."""
    message = "Cannot find API definition. api.yaml or api.json should present"
    if folder:
        message = f"a folder, and no API project: {message}"
    rule = "document-unreadable" if folder else "wso2-missing-api"
    return DocumentError(
        f"{name}: {message}", [Problem(pointer="", message=message, rule=rule, file=name)]
    )


def _api_document(files: ProjectFiles) -> tuple[str, documents.SourceDocument]:
    for path in API_FILES:
        if path in files.files:
            return path, _source(files, path)
    if any(path.startswith("Meta-information/") for path in files.files):
        message = (
            "an API Manager 3.x project (Meta-information/api.yaml) is not supported: export "
            "the API from API Manager 4.x, or migrate the project with apictl first"
        )
        raise DocumentError(
            f"{files.name}: {message}",
            [Problem(pointer="", message=message, rule="wso2-api-type", file=files.name)],
        )
    raise missing_api_error(files.name)


def definition_document(files: ProjectFiles) -> tuple[str, documents.SourceDocument]:
    """The project's AsyncAPI definition, as WSO2's importer picks it, and its path."""
    for path in DEFINITION_FILES:
        if path in files.files:
            return path, _source(files, path)
    message = "Missing AsyncAPI definition file."
    raise DocumentError(
        f"{files.name}: {message} A project holds Definitions/asyncapi.yaml or "
        "Definitions/asyncapi.json",
        [Problem(pointer="", message=message, rule="wso2-missing-definition", file=files.name)],
    )


@attrs.frozen(kw_only=True)
class _Operation:
    pointer: str
    target: str
    verb: Operation
    auth_type: AuthType | None
    scopes: tuple[str, ...]
    uri_mapping: str | None
    throttling_policy: str | None


@attrs.frozen(kw_only=True)
class _Scope:
    pointer: str
    name: str
    description: str
    roles: str


@attrs.frozen(kw_only=True)
class _Meta:
    """What api.yaml's ``data`` says, checked."""

    name: str
    version: str
    context: str
    production: str | None
    sandbox: str | None
    has_endpoints: bool
    operations: tuple[_Operation, ...] | None
    scopes: tuple[_Scope, ...] | None
    security: tuple[str, ...] | None
    throttling_policy: str | None


def _required(data: Mapping[str, Any], key: str, decoder: Decoder) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        decoder.fail(
            pointer_to("data", key),
            f"'{key}' is required: a non-empty string, not {json_excerpt(value)}",
            "wso2-api-field",
            fatal=True,
        )
        return ""
    return value


def _strings(value: Any, pointer: str, decoder: Decoder, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        decoder.fail(pointer, f"{what} must be a list of strings", "wso2-api-field")
        return ()
    return tuple(value)


def _read_meta(root: Any, decoder: Decoder) -> _Meta:
    """api.yaml checked: the shape, the required fields, verbs, auth types, scopes."""
    if not isinstance(root, Mapping):
        decoder.fail("", "api.yaml must be a mapping", "wso2-api-field", fatal=True)
        root = {}
    if root.get("type") != "api":
        decoder.fail(
            "/type",
            f"'type' must be \"api\" (an API project), not {json_excerpt(root.get('type'))}",
            "wso2-api-type",
            fatal=True,
        )
    stated = root.get("version")
    if not isinstance(stated, str) or not _VERSION.fullmatch(stated):
        decoder.warn(
            "/version",
            f"'version' {json_excerpt(stated)} is not an API Manager 4.x version (v4.x.y); "
            "read as a 4.x project",
            "wso2-version",
        )
    data = root.get("data")
    if not isinstance(data, Mapping):
        decoder.fail(
            "/data", "'data' (the API) is required: a mapping", "wso2-api-field", fatal=True
        )
        data = {}
    # WSO2's importer drops every space from both before it creates the API.
    name = _required(data, "name", decoder).replace(" ", "")
    version = _required(data, "version", decoder).replace(" ", "")
    context = _required(data, "context", decoder)
    kind = _required(data, "type", decoder)
    if kind and kind.upper() != "WS":
        why = "is not supported yet" if kind.upper() in _NOT_YET else "is not a WebSocket API"
        decoder.fail(
            "/data/type",
            f"API type {json_excerpt(kind)} {why}: only WS (WebSocket) APIs are",
            "wso2-api-type",
            fatal=True,
        )
    endpoints = data.get("endpointConfig")
    production = sandbox = None
    if endpoints is not None and not isinstance(endpoints, Mapping):
        decoder.fail("/data/endpointConfig", "'endpointConfig' must be a mapping", "wso2-api-field")
    elif isinstance(endpoints, Mapping):
        production = _endpoint(endpoints, "production_endpoints", decoder)
        sandbox = _endpoint(endpoints, "sandbox_endpoints", decoder)
    return _Meta(
        name=name,
        version=version,
        context=context,
        production=production,
        sandbox=sandbox,
        has_endpoints=isinstance(endpoints, Mapping),
        operations=_operations(data.get("operations"), decoder),
        scopes=_scopes(data.get("scopes"), decoder),
        security=(
            None
            if data.get("securityScheme") is None
            else _strings(
                data.get("securityScheme"), "/data/securityScheme", decoder, "'securityScheme'"
            )
        ),
        throttling_policy=text(data.get("apiThrottlingPolicy")),
    )


def _endpoint(config: Mapping[str, Any], key: str, decoder: Decoder) -> str | None:
    value = config.get(key)
    pointer = pointer_to("data", "endpointConfig", key)
    if isinstance(value, list):  # load-balanced or failover endpoints: the first one serves
        if len(value) > 1:
            decoder.warn(
                pointer,
                f"{len(value)} endpoints: the relay serves the first; load balancing and "
                "failover are not supported",
                "wso2-not-enforced",
            )
        value = value[0] if value else None
    if value is None:
        return None
    url = mapping(value).get("url")
    if not isinstance(url, str):
        decoder.fail(pointer + "/url", "an endpoint needs a 'url' string", "wso2-api-field")
        return None
    return url


def _operations(value: Any, decoder: Decoder) -> tuple[_Operation, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        decoder.fail("/data/operations", "'operations' must be a list", "wso2-api-field")
        return None
    found = []
    for index, raw in enumerate(value):
        pointer = pointer_to("data", "operations", index)
        op = mapping(raw)
        target, verb = op.get("target"), op.get("verb")
        if not isinstance(target, str) or not target:
            decoder.fail(
                pointer + "/target", "an operation needs a 'target' (its topic)", "wso2-api-field"
            )
            continue
        if not isinstance(verb, str) or verb.upper() not in _VERBS:
            decoder.fail(
                pointer + "/verb",
                f"verb {json_excerpt(verb)}: a WebSocket API's operations are PUBLISH or SUBSCRIBE",
                "wso2-verb",
            )
            continue
        auth = op.get("authType")
        auth_type = _AUTH_FROM_API_YAML.get(auth.strip().lower()) if isinstance(auth, str) else None
        if auth is not None and auth_type is None:
            decoder.fail(
                pointer + "/authType",
                f'authType {json_excerpt(auth)}: one of "Application & Application User", '
                '"Application", "Application User", "None"',
                "wso2-auth-type",
            )
        mapped = op.get("uriMapping")
        found.append(
            _Operation(
                pointer=pointer,
                target=target if target.startswith("/") else "/" + target,
                verb=_VERBS[verb.upper()],
                auth_type=auth_type,
                scopes=_strings(op.get("scopes"), pointer + "/scopes", decoder, "'scopes'"),
                uri_mapping=mapped if isinstance(mapped, str) and mapped else None,
                throttling_policy=text(op.get("throttlingPolicy")),
            )
        )
    return tuple(found)


def _scopes(value: Any, decoder: Decoder) -> tuple[_Scope, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        decoder.fail("/data/scopes", "'scopes' must be a list", "wso2-api-field")
        return None
    found = []
    for index, raw in enumerate(value):
        pointer = pointer_to("data", "scopes", index, "scope")
        scope = mapping(mapping(raw).get("scope"))
        name = scope.get("name")
        if not isinstance(name, str) or not name:
            decoder.fail(pointer + "/name", "a scope needs a 'name'", "wso2-api-field")
            continue
        roles = _strings(scope.get("bindings"), pointer + "/bindings", decoder, "'bindings'")
        found.append(
            _Scope(
                pointer=pointer,
                name=name,
                description=text(scope.get("description")) or "",
                roles=",".join(roles),
            )
        )
    return tuple(found)


def _located(doc: documents.SourceDocument, problem: Problem) -> Problem:
    position = doc.locate(problem.pointer)
    line, column = position if position is not None else (None, None)
    return attrs.evolve(problem, file=doc.name, line=line, column=column)


def _where(doc: documents.SourceDocument, pointer: str) -> str:
    position = doc.locate(pointer)
    at = f":{position[0]}:{position[1]}" if position else ""
    return f"{doc.name}{at} {pointer or '/'}"


def _channel_pointer(data: Any, topic: Topic) -> str:
    """Where the definition writes ``topic``: its channel (2.x by name, 3.x by address)."""
    channels = mapping(mapping(data).get("channels"))
    for key, channel in channels.items():
        address = mapping(channel).get("address")
        if key == topic.name or (isinstance(address, str) and address in (topic.name, topic.path)):
            return pointer_to("channels", key)
    return "/channels"


def decode_project(
    files: ProjectFiles,
    *,
    context: str | None = None,
    lenient: bool = False,
    point_of_view: PointOfView | None = None,
    allow_remote_refs: bool = False,
    allow_outside_refs: bool = False,
    ref_root: str | None = None,
) -> ProjectImport:
    """The API a project describes, by WSO2's precedence (see the module), with its warnings.

    api.yaml's own problems raise :class:`ValidationError` (what no API can be built without,
    :class:`ConversionError`, even when ``lenient``); the definition is imported as
    :func:`~asyncapi_gw.asyncapi.import_asyncapi` imports a document (``lenient`` and the
    ``$ref`` policy alike).  An AsyncAPI 3 definition reads as WSO2 API Manager reads it
    (``point_of_view`` :attr:`PointOfView.CLIENT`) unless ``point_of_view`` says otherwise.
    """
    api_file, api_doc = _api_document(files)
    decoder = Decoder(lenient=True)
    meta = _read_meta(api_doc.styled_data(), decoder)
    _raise_errors(decoder, api_doc, files.name, lenient=lenient)
    definition_file, definition_doc = definition_document(files)
    imported = import_asyncapi(
        definition_doc,
        lenient=lenient,
        point_of_view=point_of_view or PointOfView.CLIENT,
        allow_remote_refs=allow_remote_refs,
        allow_outside_refs=allow_outside_refs,
        ref_root=ref_root,
    )
    api = _overlay(imported, meta, decoder, api_doc, context)
    _raise_errors(decoder, api_doc, files.name, lenient=lenient)
    assert api is not None  # noqa: S101 - _raise_errors raised when it could not be built
    project = Project(
        api_file=api_file,
        api_data=api_doc.styled_data(),
        definition_file=definition_file,
        definition_api=imported.api,
        imported=api,
        others={
            path: data
            for path, data in files.files.items()
            if path not in API_FILES and path not in DEFINITION_FILES
        },
        folder=files.folder,
    )
    warnings = (
        *imported.warnings,
        *(_located(api_doc, p) for p in decoder.problems),
    )
    return ProjectImport(
        api=api,
        warnings=warnings,
        document=imported.document,
        api_document=api_doc,
        project=project,
    )


def _raise_errors(
    decoder: Decoder, api_doc: documents.SourceDocument, name: str, *, lenient: bool
) -> None:
    """The decoder is lenient: its errors are what no API can be built without; its other
    problems, but for the rules that only ever warn, are errors of a strict import."""
    located = [_located(api_doc, p) for p in decoder.problems]
    if decoder.errors:
        raise ConversionError(f"{name}: the project cannot be imported as a WebSocket API", located)
    if not lenient and any(p.rule not in _WARNING_RULES for p in located):
        raise ValidationError(
            f"{name}: api.yaml is not a valid WebSocket API", [_as_error(p) for p in located]
        )


def _overlay(
    imported: ImportResult,
    meta: _Meta,
    decoder: Decoder,
    api_doc: documents.SourceDocument,
    context: str | None,
) -> StreamingAPI | None:
    """The definition's API with what api.yaml decides, and a warning for each difference."""
    base = imported.api
    definition = imported.document
    assert definition is not None  # noqa: S101 - import_asyncapi always gives its document

    def differs(pointer: str, what: str, ours: object, theirs: object, there: str) -> None:
        decoder.warn(
            pointer,
            f"api.yaml gives {what} {json_excerpt(ours)}, the definition "
            f"{json_excerpt(theirs)} ({_where(definition, there)}); WSO2 uses api.yaml's",
            "wso2-precedence",
        )

    if meta.name != base.name:
        differs("/data/name", "the name", meta.name, base.name, "/info/title")
    if meta.version != base.version:
        differs("/data/version", "the version", meta.version, base.version, "/info/version")
    production, sandbox = base.production_endpoint, base.sandbox_endpoint
    if meta.has_endpoints:
        production = _endpoint_value(meta.production, "production_endpoints", decoder)
        sandbox = _endpoint_value(meta.sandbox, "sandbox_endpoints", decoder)
        for key, ours, theirs in (
            ("production_endpoints", production, base.production_endpoint),
            ("sandbox_endpoints", sandbox, base.sandbox_endpoint),
        ):
            # A definition without the server says nothing (API Manager generates only the
            # production one): no difference.
            if theirs is not None and _endpoint_key(ours) != _endpoint_key(theirs):
                differs(
                    pointer_to("data", "endpointConfig", key),
                    f"the {key.split('_')[0]} endpoint",
                    ours.url if ours else None,
                    theirs.url if theirs else None,
                    "/servers",
                )
    _compare_operations(base, meta, decoder, definition)
    security = _security(base, meta, decoder, definition)
    api: StreamingAPI | None = decoder.attempt(
        "/data/context",
        lambda: attrs.evolve(
            base,
            name=meta.name,
            version=meta.version,
            context=context or meta.context,
            production_endpoint=production,
            sandbox_endpoint=sandbox,
            security=security,
            throttling=_throttling(meta.throttling_policy, base.throttling, decoder),
        ),
        fatal=True,
    )
    return api


def _endpoint_key(endpoint: Endpoint | None) -> str | None:
    """An endpoint's URL for comparing: ``ws://h:1`` and ``ws://h:1/`` are one backend (WSO2
    4.7 writes a server's ``pathname`` as ``/`` for a URL without a path)."""
    if endpoint is None:
        return None
    scheme, sep, rest = endpoint.url.partition("://")
    return (
        f"{scheme}{sep}{rest[:-1]}" if rest.endswith("/") and rest.count("/") == 1 else endpoint.url
    )


def _endpoint_value(url: str | None, key: str, decoder: Decoder) -> Endpoint | None:
    if url is None:
        return None
    endpoint: Endpoint | None = decoder.attempt(
        pointer_to("data", "endpointConfig", key, "url"), lambda: Endpoint(url=url)
    )
    return endpoint


def _compare_operations(
    base: StreamingAPI, meta: _Meta, decoder: Decoder, definition: documents.SourceDocument
) -> None:
    """A warning for each operation api.yaml and the definition do not agree on."""
    if meta.operations is None:
        return
    theirs = {
        (op.operation, topic.path): (topic, op) for topic in base.topics for op in topic.operations
    }
    listed = set()
    policies = set()
    for op in meta.operations:
        key = (op.verb, op.target)
        listed.add(key)
        if op.throttling_policy not in (None, "", _UNLIMITED):
            policies.add(op.throttling_policy)
        if key not in theirs:
            decoder.warn(
                op.pointer,
                f"operation {op.verb.name} {op.target} is not in the definition "
                f"({definition.name}); WSO2 takes the topics from the definition: it is left out",
                "wso2-precedence",
            )
            continue
        topic, side = theirs[key]
        there = _channel_pointer(definition.data, topic)
        if op.uri_mapping != side.uri_mapping:
            decoder.warn(
                op.pointer + "/uriMapping",
                f"uriMapping {json_excerpt(op.uri_mapping)} differs from the definition's "
                f"x-uri-mapping {json_excerpt(side.uri_mapping)} ({_where(definition, there)}); "
                "WSO2 uses the definition's",
                "wso2-precedence",
            )
        if set(op.scopes) != set(side.scopes):
            decoder.warn(
                op.pointer + "/scopes",
                f"scopes {json_excerpt(list(op.scopes))} differ from the definition's x-scopes "
                f"{json_excerpt(list(side.scopes))} ({_where(definition, there)}); WSO2 uses "
                "the definition's",
                "wso2-precedence",
            )
        ours_auth, their_auth = op.auth_type or AuthType.ANY, topic.auth_type or AuthType.ANY
        if ours_auth is not their_auth:
            decoder.warn(
                op.pointer + "/authType",
                f"authType {json_excerpt(_AUTH_TO_API_YAML[ours_auth])} differs from the "
                f"definition's x-auth-type {json_excerpt(their_auth.value)} "
                f"({_where(definition, there)}); WSO2 uses the definition's",
                "wso2-precedence",
            )
    for (verb, path), (topic, _side) in theirs.items():
        if (verb, path) not in listed:
            there = _where(definition, _channel_pointer(definition.data, topic))
            decoder.warn(
                "/data/operations",
                f"the definition's {verb.name} {path} ({there}) is not among api.yaml's "
                "operations; WSO2 takes the topics from the definition",
                "wso2-precedence",
            )
    if policies:
        decoder.warn(
            "/data/operations",
            f"per-operation throttling policies ({', '.join(sorted(policies))}) are kept in "
            "api.yaml but not enforced: the relay's quota is per API",
            "wso2-not-enforced",
        )


def _security(
    base: StreamingAPI, meta: _Meta, decoder: Decoder, definition: documents.SourceDocument
) -> tuple[SecurityScheme, ...]:
    """``securityScheme`` decides which credentials count (absent or empty: ``oauth2``,
    WSO2's default); api.yaml's ``scopes`` give the oauth2 scopes and their role bindings."""
    names = meta.security or ("oauth2",)
    kinds = []
    for index, name in enumerate(names):
        if name in _SECURITY:
            kinds.append(_SECURITY[name])
        elif name in _SECURITY_NOT_ENFORCED:
            decoder.warn(
                pointer_to("data", "securityScheme", index),
                f"{json_excerpt(name)} is kept but not enforced: the relay accepts oauth2 "
                "(bearer JWT) and api_key credentials",
                "wso2-not-enforced",
            )
        elif name not in _SECURITY_MARKERS:
            decoder.fail(
                pointer_to("data", "securityScheme", index),
                f"unknown security scheme {json_excerpt(name)}; WSO2 knows oauth2, api_key, "
                "basic_auth, mutualssl and their *_mandatory markers",
                "wso2-security-scheme",
            )
    schemes = []
    for kind in dict.fromkeys(kinds):
        found = next((s for s in base.security if s.kind is kind), None)
        scheme = found or SecurityScheme(
            name="oauth2" if kind is AuthKind.OAUTH2 else "api_key", kind=kind
        )
        if kind is AuthKind.OAUTH2 and meta.scopes is not None:
            scheme = _scoped(scheme, meta.scopes, decoder, definition)
        schemes.append(scheme)
    declared = {s.name for s in meta.scopes or ()}
    for op in meta.operations or ():
        for index, scope in enumerate(op.scopes):
            if meta.scopes is not None and scope not in declared:
                decoder.fail(
                    pointer_to(*op.pointer.split("/")[1:], "scopes", index),
                    f"scope {json_excerpt(scope)} is not among the API's scopes (/data/scopes)",
                    "wso2-scope-undefined",
                )
    return tuple(schemes)


def _scoped(
    scheme: SecurityScheme,
    scopes: tuple[_Scope, ...],
    decoder: Decoder,
    definition: documents.SourceDocument,
) -> SecurityScheme:
    ours = {s.name: s for s in scopes}
    where = _where(definition, pointer_to("components", "securitySchemes", scheme.name))
    for name in scheme.scopes:
        if name not in ours:
            decoder.warn(
                "/data/scopes",
                f"the definition's scope {json_excerpt(name)} ({where}) is not among api.yaml's "
                "scopes; WSO2 uses api.yaml's",
                "wso2-precedence",
            )
    for scope in scopes:
        if scope.name not in scheme.scopes:
            continue
        if scope.description != scheme.scopes[
            scope.name
        ] or scope.roles != scheme.scope_bindings.get(scope.name, ""):
            decoder.warn(
                scope.pointer,
                f"scope {json_excerpt(scope.name)}: description {json_excerpt(scope.description)} "
                f"and roles {json_excerpt(scope.roles)} differ from the definition's "
                f"{json_excerpt(scheme.scopes[scope.name])} and "
                f"{json_excerpt(scheme.scope_bindings.get(scope.name, ''))} ({where}); WSO2 uses "
                "api.yaml's",
                "wso2-precedence",
            )
    return attrs.evolve(
        scheme,
        scopes={s.name: s.description for s in scopes},
        scope_bindings={s.name: s.roles for s in scopes if s.roles},
    )


def _throttling(
    policy: str | None, stated: Throttling | None, decoder: Decoder
) -> Throttling | None:
    """``apiThrottlingPolicy``: WSO2's named API policies (``50KPerMin``: 50,000 events a
    minute; ``Unlimited``: none) become the API's event quota; other names are WSO2's own."""
    if policy is None:
        return stated
    if policy == _UNLIMITED:
        return None
    found = _POLICY.fullmatch(policy)
    if found is None:
        decoder.warn(
            "/data/apiThrottlingPolicy",
            f"policy {json_excerpt(policy)} is defined in API Manager, not in the project: kept, "
            "not enforced",
            "wso2-not-enforced",
        )
        return stated
    events = int(found[1]) * (1000 if found[2] else 1)
    quota: Throttling | None = decoder.attempt(
        "/data/apiThrottlingPolicy",
        lambda: Throttling(events=events, unit=_POLICY_UNITS[found[3]]),
    )
    return quota


def _policy_name(throttling: Throttling | None) -> str | None:
    """The WSO2 policy name for a quota, when it has one of that shape."""
    if throttling is None:
        return _UNLIMITED
    if throttling.per_principal is not None:
        return None
    unit = {v: k for k, v in _POLICY_UNITS.items()}[throttling.unit]
    thousands, rest = divmod(throttling.events, 1000)
    return f"{thousands}KPer{unit}" if not rest else f"{throttling.events}Per{unit}"


# ------------------------------------------------------------------------------------ checking


def check_project(
    files: ProjectFiles,
    *,
    allow_remote_refs: bool = False,
    allow_outside_refs: bool = False,
    ref_root: str | None = None,
) -> ValidationReport:
    """The verdict on a project: api.yaml's problems (required fields, verbs, auth types,
    scopes that exist, operations whose topics the definition has), then the definition's as
    :func:`~asyncapi_gw.asyncapi.validate_document` gives them, each with its own file."""
    _api_file, api_doc = _api_document(files)
    decoder = Decoder(lenient=True)
    meta = _read_meta(api_doc.styled_data(), decoder)
    # Strict rules of api.yaml are errors here: the lenient decoder made them warnings.
    problems = [_as_error(p) for p in decoder.problems]
    _definition_file, definition_doc = definition_document(files)
    report = validate_document(
        definition_doc,
        allow_remote_refs=allow_remote_refs,
        allow_outside_refs=allow_outside_refs,
        ref_root=ref_root,
    )
    definition_problems: list[Problem] = []
    if report.valid and not any(p.severity is Severity.ERROR for p in problems):
        compare = Decoder(lenient=True)
        try:
            imported = import_asyncapi(
                definition_doc,
                lenient=True,
                point_of_view=PointOfView.CLIENT,
                allow_remote_refs=allow_remote_refs,
                allow_outside_refs=allow_outside_refs,
                ref_root=ref_root,
            )
        except ConversionError as exc:  # located in the definition already
            definition_problems = [_as_error(p) for p in exc.problems]
        else:
            _overlay(imported, meta, compare, api_doc, None)
            problems.extend(_as_error(p) for p in compare.problems if p not in decoder.problems)
    located = [*(_located(api_doc, p) for p in problems), *definition_problems]
    return ValidationReport(
        file=files.name,
        asyncapi=report.asyncapi,
        errors=(*[p for p in located if p.severity is Severity.ERROR], *report.errors),
        warnings=(*[p for p in located if p.severity is Severity.WARNING], *report.warnings),
        supported=report.supported,
    )


def _as_error(problem: Problem) -> Problem:
    if problem.rule in _WARNING_RULES:
        return problem
    return attrs.evolve(problem, severity=Severity.ERROR)


# ------------------------------------------------------------------------------------ writing


def encode_project(
    api: StreamingAPI,
    *,
    source: Project | None = None,
    version: str | None = None,
    lenient: bool = False,
    warnings: list[Problem] | None = None,
    allow_remote_refs: bool = False,
    allow_outside_refs: bool = False,
    ref_root: str | None = None,
) -> ProjectFiles:
    """``api`` as a project for WSO2 API Manager ``version`` (``4.0.0``-``4.7.0``).

    The definition is AsyncAPI 2.x for API Manager 4.6 and earlier (the source project's own 2.x
    version, else 2.0.0, what they generate) and 3.0.0 from 4.7 on, its operations written as
    API Manager 4.7 reads them (``send`` = clients publish).  Without ``version``, a source
    project is written for the version it was written for, with its definition's own AsyncAPI
    version; a new project for :data:`DEFAULT_WSO2_VERSION`.  ``source``
    (:attr:`ProjectImport.project`) is the project ``api`` was imported from: what the API did
    not change is written as it was read.  Export problems raise as
    :func:`~asyncapi_gw.asyncapi.export_asyncapi` raises them (``lenient``: warnings).
    """
    target = wso2_version(version) if version else None
    release = tuple(int(part) for part in (target or _default_version(source)).split(".")[:2])
    definition_api = _definition_api(api, source)
    current = definition_api.asyncapi_version or ""
    if target is None and source is not None:
        asyncapi_version, reading = current or None, None
    elif release >= _FIRST_V3_RELEASE:
        asyncapi_version, reading = "3.0.0", PointOfView.CLIENT
    else:
        keep = source is not None and current.startswith("2.")
        asyncapi_version, reading = (current if keep else "2.0.0"), None
    definition = _without_our_extensions(
        source,
        export_asyncapi(
            definition_api,
            asyncapi_version=asyncapi_version,
            point_of_view=reading,
            lenient=lenient,
            warnings=warnings,
            allow_remote_refs=allow_remote_refs,
            allow_outside_refs=allow_outside_refs,
            ref_root=ref_root,
        ),
    )
    if asyncapi_version == "3.0.0" and not current.startswith("3."):
        _wso2_channel_keys(definition)  # converted from 2.x: keyed as API Manager 4.7 keys them
    api_file = source.api_file if source else API_FILES[0]
    definition_file = source.definition_file if source else DEFINITION_FILES[1]
    if str(definition.get("asyncapi", "")).startswith("3.") and warnings is not None:
        # Located in the project written: a path relative to its root.
        warnings.extend(
            attrs.evolve(p, file=definition_file) for p in _unreadable_references(definition)
        )
    api_data = _api_yaml(api, source, target or _default_version(source), warnings)
    files = {
        api_file: _dump(api_data, api_file),
        definition_file: _dump(definition, definition_file),
        **(dict(source.others) if source else {}),
    }
    return ProjectFiles(
        files=files,
        name=api.name,
        folder=(
            source.folder
            if source and source.folder
            else _FOLDER_UNSAFE.sub("_", f"{api.name}-{api.version}")
        ),
    )


def _without_our_extensions(source: Project | None, definition: dict[str, Any]) -> dict[str, Any]:
    """The definition without the extensions that say what api.yaml says (the context, the
    quota), unless the source definition had them."""
    had = source.definition_api.document if source else None
    for key in (CONTEXT_EXTENSION, THROTTLING_EXTENSION):
        if had is None or key not in had:
            definition.pop(key, None)
    return definition


def _wso2_channel_keys(definition: dict[str, Any]) -> None:
    """Channels keyed ``/topic`` (a 2.x document's names) keyed ``topic`` instead, as API
    Manager 4.7 writes them: its importer takes the text after ``#/channels/`` of an operation's
    reference as the channel's key, without JSON pointer unescaping, so ``#/channels/~1topic``
    finds nothing.  Every reference into a renamed channel follows it."""
    channels = definition.get("channels")
    if not isinstance(channels, dict):
        return
    renamed: dict[str, str] = {}
    for key in list(channels):
        new = key.lstrip("/")
        if key != new and new and new not in channels and new not in renamed.values():
            renamed[key] = new
    if not renamed:
        return
    definition["channels"] = {renamed.get(key, key): value for key, value in channels.items()}
    prefixes = {
        f"#/channels/{escape_token(old)}": f"#/channels/{escape_token(new)}"
        for old, new in renamed.items()
    }

    def follow(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                for old, new in prefixes.items():
                    if ref == old or ref.startswith(old + "/"):
                        node["$ref"] = new + ref[len(old) :]
                        break
            for value in node.values():
                follow(value)
        elif isinstance(node, list):
            for value in node:
                follow(value)

    follow(definition)


def _unreadable_references(definition: dict[str, Any]) -> list[Problem]:
    """A warning for each operation whose channel reference API Manager 4.7 cannot follow: a
    channel key with ``/`` inside, escaped ``~1`` as JSON pointers require, which 4.7's
    importer does not unescape (it then leaves the operation out)."""
    found = []
    for name, op in mapping(definition.get("operations")).items():
        ref = mapping(mapping(op).get("channel")).get("$ref")
        if isinstance(ref, str) and ref.startswith("#/channels/") and "~" in ref:
            found.append(
                Problem(
                    pointer=pointer_to("operations", name, "channel", "$ref"),
                    message=f"API Manager 4.7 reads the reference {json_excerpt(ref)} without "
                    "JSON pointer unescaping and would leave this operation out; a topic with "
                    "'/' inside its name imports into 4.7 only after editing the reference to "
                    "WSO2's unescaped spelling (which the AsyncAPI schema refuses)",
                    rule="wso2-reference",
                    severity=Severity.WARNING,
                )
            )
    return found


def _default_version(source: Project | None) -> str:
    return source.wso2_version if source else DEFAULT_WSO2_VERSION


def _dump(data: Any, path: str) -> bytes:
    fmt = "json" if path.endswith(".json") else "yaml"
    return documents.dump_document(data, fmt).encode("utf-8")


def _definition_api(api: StreamingAPI, source: Project | None) -> StreamingAPI:
    """What the definition says: api.yaml's fields as the definition had them, unless the API
    changed them (then both files get the change)."""
    if source is None:
        return api
    kept = {
        field: getattr(source.definition_api, field)
        for field in _API_YAML_FIELDS
        if field in _DEFINITION_NEVER or getattr(api, field) == getattr(source.imported, field)
    }
    return attrs.evolve(api, **kept)


def _api_yaml(
    api: StreamingAPI, source: Project | None, version: str, warnings: list[Problem] | None
) -> dict[str, Any]:
    before = source.imported if source else None
    root: dict[str, Any] = thaw(source.api_data) if source else {"type": "api"}
    if source is None or version != source.wso2_version:
        root["version"] = f"v{version}"
    data = root.get("data")
    if not isinstance(data, dict):
        data = root["data"] = {}
    if before is None:
        data.update(provider="admin", lifeCycleStatus="CREATED", type="WS")

    def changed(field: str) -> bool:
        return before is None or getattr(api, field) != getattr(before, field)

    for field in ("name", "version", "context"):
        if changed(field):
            data[field] = getattr(api, field)
    if before is None and api.description:
        data["description"] = api.description
    if changed("production_endpoint") or changed("sandbox_endpoint"):
        _write_endpoints(data, api)
    if changed("security"):
        _write_security(data, api)
    if changed("throttling"):
        name = _policy_name(api.throttling)
        if name is None:
            if warnings is not None:
                warnings.append(
                    Problem(
                        pointer="/data/apiThrottlingPolicy",
                        message="a per-principal quota has no WSO2 policy name; set "
                        "apiThrottlingPolicy to a policy defined in API Manager",
                        rule="wso2-not-enforced",
                        severity=Severity.WARNING,
                        file=source.api_file if source else API_FILES[0],
                    )
                )
        else:
            data["apiThrottlingPolicy"] = name
    if before is None or api.topics != before.topics or changed("security"):
        data["operations"] = _write_operations(api, data.get("operations"))
    return root


def _write_endpoints(data: dict[str, Any], api: StreamingAPI) -> None:
    config = data.get("endpointConfig")
    if not isinstance(config, dict):
        config = data["endpointConfig"] = {"endpoint_type": "ws"}
    for key, endpoint in (
        ("production_endpoints", api.production_endpoint),
        ("sandbox_endpoints", api.sandbox_endpoint),
    ):
        if endpoint is None:
            config.pop(key, None)
        else:
            entry = config.get(key)
            config[key] = {**(entry if isinstance(entry, dict) else {}), "url": endpoint.url}


def _write_security(data: dict[str, Any], api: StreamingAPI) -> None:
    stated = data.get("securityScheme")
    others = (
        [s for s in stated if not isinstance(s, str) or s not in _SECURITY]
        if isinstance(stated, list)
        else []
    )
    data["securityScheme"] = [
        *(name for name, kind in _SECURITY.items() if kind in api.auth_kinds),
        *others,
    ]
    oauth2 = next((s for s in api.security if s.kind is AuthKind.OAUTH2), None)
    if oauth2 is None:
        return
    stated_scopes = data.get("scopes")
    kept = {
        name: entry
        for entry in (stated_scopes if isinstance(stated_scopes, list) else [])
        if isinstance(name := mapping(mapping(entry).get("scope")).get("name"), str)
    }
    scopes = []
    for name, description in oauth2.scopes.items():
        entry = kept.get(name)
        entry = entry if isinstance(entry, dict) else {"scope": {}, "shared": False}
        scope = entry.get("scope")
        if not isinstance(scope, dict):
            scope = entry["scope"] = {}
        roles = oauth2.scope_bindings.get(name, "")
        scope.update(
            name=name,
            displayName=scope.get("displayName", name),
            description=description,
            bindings=[r.strip() for r in roles.split(",") if r.strip()],
        )
        scopes.append(entry)
    data["scopes"] = scopes


def _write_operations(api: StreamingAPI, stated: Any) -> list[dict[str, Any]]:
    kept = {
        (op["verb"], op["target"]): op
        for op in (stated if isinstance(stated, list) else [])
        if isinstance(op, dict)
        and isinstance(op.get("verb"), str)
        and isinstance(op.get("target"), str)
    }
    out = []
    for topic in api.topics:
        for side in topic.operations:
            verb = side.operation.name
            op = dict(kept.get((verb, topic.name)) or kept.get((verb, topic.path)) or {})
            op.update(
                target=topic.name,
                verb=verb,
                authType=_AUTH_TO_API_YAML[topic.auth_type or AuthType.ANY],
                throttlingPolicy=op.get("throttlingPolicy", _UNLIMITED),
                scopes=list(side.scopes),
            )
            if side.uri_mapping:
                op["uriMapping"] = side.uri_mapping
            else:
                op.pop("uriMapping", None)
            out.append(op)
    return out
