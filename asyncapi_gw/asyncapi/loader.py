"""Load, validate, import and export AsyncAPI documents.

The pipeline for a document: read it (:mod:`asyncapi_gw.documents`), check its declared version,
resolve its ``$ref``s under the reference policy, validate it against the official schema of its
own version, then the official parser's semantic rules, then the binding schemas; every problem
is located (file, line, column) in the source that wrote the offending node.  Importing then
decodes it into a :class:`StreamingAPI` with the codec of its major version
(:mod:`asyncapi_gw.asyncapi.v2`, :mod:`asyncapi_gw.asyncapi.v3`).
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

import attrs

from asyncapi_gw import documents, schema
from asyncapi_gw.asyncapi import convert, rules_v3, v2, v3
from asyncapi_gw.asyncapi.rules import check_rules
from asyncapi_gw.errors import (
    ConversionError,
    DocumentError,
    Problem,
    Severity,
    UnsupportedVersionError,
    ValidationError,
    json_excerpt,
)
from asyncapi_gw.model import PointOfView, StreamingAPI, thaw
from asyncapi_gw.pointers import escape_token, pointer_to, unescape_token

__all__ = [
    "DEFAULT_EXPORT_VERSION",
    "EXPORT_VERSIONS",
    "ImportResult",
    "ValidationReport",
    "convert_asyncapi",
    "dump_asyncapi",
    "export_asyncapi",
    "import_asyncapi",
    "load_asyncapi",
    "loads_asyncapi",
    "validate_document",
]

DEFAULT_EXPORT_VERSION = "2.6.0"
# The versions an API can be written as (and, once validated, imported from).
EXPORT_VERSIONS: tuple[str, ...] = (*schema.SUPPORTED_VERSIONS, *v3.VERSIONS)
# The model copies JSON data recursively (``model.freeze``): deeper documents are not imported,
# even leniently.  Deeper ones are not schema-valid anyway (the validator's own guard is 150).
_MAX_IMPORT_DEPTH = 200
_SCHEMA_RULE = "asyncapi-schema"  # the official JSON Schema's problems


@attrs.frozen(kw_only=True)
class ValidationReport:
    """The verdict on one document: every error and warning, located."""

    file: str | None
    asyncapi: str | None
    errors: tuple[Problem, ...]
    warnings: tuple[Problem, ...] = ()
    # False: the document declares an AsyncAPI version this package does not handle;
    # None: it declares no version (or cannot be read), so there is none to judge.
    supported: bool | None = True

    @property
    def valid(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of ``asyncapi-gw validate --format json``."""
        return {
            "file": self.file,
            "valid": self.valid,
            "supported": self.supported,
            "asyncapi": self.asyncapi,
            "errors": [p.as_dict() for p in self.errors],
            "warnings": [p.as_dict() for p in self.warnings],
        }


@attrs.frozen(kw_only=True)
class ImportResult:
    """An imported API, the warnings met on the way, and the document it was read from (pass it
    to :func:`export_asyncapi` as ``source_document`` to locate export problems in it)."""

    api: StreamingAPI
    warnings: tuple[Problem, ...] = ()
    document: documents.SourceDocument | None = None


@attrs.frozen(kw_only=True)
class _Analysis:
    document: documents.SourceDocument
    version: str
    resolved: Any  # schema.Resolved
    problems: tuple[Problem, ...]
    depth: int  # of the resolved data

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity is Severity.WARNING)


def _read(
    source: str | os.PathLike[str] | Mapping[str, Any] | documents.SourceDocument,
) -> documents.SourceDocument:
    if isinstance(source, documents.SourceDocument):
        return source
    if isinstance(source, Mapping):
        return documents.document_from_data(source)
    if isinstance(source, (str, os.PathLike)):
        return documents.read_document(source)
    message = f"an AsyncAPI document must be a mapping, not {type(source).__name__}"
    raise DocumentError(
        message, [Problem(pointer="", message=message, rule="document-not-mapping")]
    )


def _load_uri(uri: str) -> documents.SourceDocument:
    parts = urlsplit(uri)
    if parts.scheme != "file":
        message = f"cannot read {json_excerpt(uri)}: only local files are read, nothing is fetched"
        raise DocumentError(message, [Problem(pointer="", message=message, rule="asyncapi-ref")])
    return documents.read_document(unquote(parts.path))


def _version(doc: documents.SourceDocument) -> str:
    data = doc.data
    if not isinstance(data, Mapping):
        raise DocumentError(
            "an AsyncAPI document must be a mapping at its root",
            [
                _locate(
                    doc,
                    Problem(
                        pointer="",
                        message="the document root is not a mapping",
                        rule="document-not-mapping",
                    ),
                )
            ],
        )
    declared = data.get("asyncapi")
    if isinstance(declared, str) and declared in schema.VALIDATION_VERSIONS:
        return declared
    supported = ", ".join(schema.VALIDATION_VERSIONS)
    if isinstance(declared, str):
        release = declared.partition("-")[0]
        if release != declared and release in schema.VALIDATION_VERSIONS:
            # A pre-release (2.0.0-rc1, -rc2) differs from its release; the official parser
            # refuses it as well.
            message = (
                f"AsyncAPI {json_excerpt(declared)} is a pre-release of {release}: "
                "pre-releases are not supported (nor by the official parser); declare a "
                f"released version: {supported}"
            )
        else:
            message = (
                f"AsyncAPI version {json_excerpt(declared)} is not supported; "
                f"supported: {supported}"
            )
        raise UnsupportedVersionError(
            f"{doc.name or 'the document'}: {message}",
            [_locate(doc, Problem(pointer="/asyncapi", message=message, rule="asyncapi-version"))],
        )
    if "asyncapi" not in data:
        pointer, message = "", "'asyncapi' is missing: a document declares its AsyncAPI version"
    else:
        pointer = "/asyncapi"
        message = f"'asyncapi' must be a version such as '2.6.0', not {json_excerpt(declared)}"
    raise ValidationError(
        f"{doc.name or 'the document'} is not an AsyncAPI document: {message}",
        [_locate(doc, Problem(pointer=pointer, message=message, rule="asyncapi-version"))],
    )


def _locate(doc: documents.SourceDocument, problem: Problem, pointer: str | None = None) -> Problem:
    """``problem`` with the file, line and column of ``pointer`` (its own) in ``doc``."""
    position = doc.locate(problem.pointer if pointer is None else pointer)
    line, column = position if position is not None else (None, None)
    return attrs.evolve(problem, line=line, column=column, file=doc.name)


def _locate_resolved(resolved: Any, problem: Problem) -> Problem:
    """``problem`` located where the resolved node it points at was written."""
    origin, pointer = resolved.origin(problem.pointer)
    return _locate(origin, problem, pointer)


def _binding_sites(data: Mapping[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """Every bindings object as (kind, pointer, object)."""

    def messages(message: Any, *where: str) -> Iterator[tuple[str, str, Any]]:
        if not isinstance(message, Mapping):
            return
        if isinstance(message.get("oneOf"), list):
            for i, item in enumerate(message["oneOf"]):
                yield from messages(item, *where, "oneOf", str(i))
        elif isinstance(message.get("bindings"), Mapping):
            yield "message", pointer_to(*where, "bindings"), message["bindings"]

    for name, server in _items(data.get("servers")):
        if isinstance(server.get("bindings"), Mapping):
            yield "server", pointer_to("servers", name, "bindings"), server["bindings"]
    for name, channel in _items(data.get("channels")):
        if isinstance(channel.get("bindings"), Mapping):
            yield "channel", pointer_to("channels", name, "bindings"), channel["bindings"]
        for op in ("publish", "subscribe"):
            operation = channel.get(op)
            if not isinstance(operation, Mapping):
                continue
            if isinstance(operation.get("bindings"), Mapping):
                where = pointer_to("channels", name, op, "bindings")
                yield "operation", where, operation["bindings"]
            yield from messages(operation.get("message"), "channels", name, op, "message")
    components = data.get("components")
    if isinstance(components, Mapping):
        for name, message in _items(components.get("messages")):
            yield from messages(message, "components", "messages", name)
        for kind in ("server", "channel", "operation", "message"):
            for name, bindings in _items(components.get(f"{kind}Bindings")):
                yield kind, pointer_to("components", f"{kind}Bindings", name), bindings


def _items(value: Any) -> Iterator[tuple[str, Mapping[str, Any]]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(item, Mapping):
                yield str(key), item


def _check_bindings(data: Mapping[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    for kind, pointer, bindings in _binding_sites(data):
        for protocol, binding in bindings.items():
            problems.extend(
                schema.validate_binding(
                    binding,
                    protocol=str(protocol),
                    kind=kind,
                    pointer=f"{pointer}/{escape_token(protocol)}",
                )
            )
    return problems


def _measure(data: Any, max_nodes: int) -> tuple[int, int]:
    """Depth and node count of resolved data as if every shared node were copied (the way
    validation and the model walk it); each shared node is visited once, counts stop past
    ``max_nodes``.  ``(-1, -1)`` when the data contains a cycle."""
    sizes: dict[int, tuple[int, int]] = {}
    entered: set[int] = set()
    pending: list[Any] = [data]
    while pending:
        node = pending[-1]
        if id(node) in sizes:
            pending.pop()
            continue
        children = [
            child
            for child in (node.values() if isinstance(node, dict) else node)
            if isinstance(child, (dict, list))
        ]
        if id(node) not in entered:
            entered.add(id(node))
            if any(id(child) in entered and id(child) not in sizes for child in children):
                return -1, -1  # a node contains itself
            pending.extend(child for child in children if id(child) not in entered)
            continue
        pending.pop()
        depth, count = 1, 1 + len(node)
        for child in children:
            child_depth, child_count = sizes.get(id(child), (0, 0))
            depth = max(depth, child_depth + 1)
            count = min(count + child_count - 1, max_nodes + 1)
        sizes[id(node)] = (depth, count)
    return sizes.get(id(data), (0, 1))


def _check_expansion(doc: documents.SourceDocument, data: Any) -> int:
    """The depth of resolved data; references that expand it past the reading limits (a
    ``$ref`` bomb, or references chained deeper than a file may nest) raise DocumentError."""
    limits = documents.DEFAULT_LIMITS
    depth, count = _measure(data, limits.max_nodes)
    if depth < 0:
        # The resolver closes a cycle at the $ref it meets again, but not one that re-enters
        # a node being copied from below, through a $ref to one of that node's ancestors.
        message = (
            "a $ref leads to a mapping or list that contains the reference itself "
            "(a cycle through an ancestor); the document cannot be resolved"
        )
        raise DocumentError(
            f"cannot read {doc.name or 'the document'}: {message}",
            [Problem(pointer="", message=message, rule="asyncapi-ref", file=doc.name)],
        )
    if depth > limits.max_depth:
        rule, message = "document-too-deep", f"nested deeper than the limit of {limits.max_depth}"
    elif count > limits.max_nodes:
        rule, message = "document-too-large", f"more than the limit of {limits.max_nodes} nodes"
    else:
        return depth
    message = f"with its aliases and $refs expanded, the document is {message}"
    raise DocumentError(
        f"cannot read {doc.name or 'the document'}: {message}",
        [Problem(pointer="", message=message, rule=rule, file=doc.name)],
    )


def _analyse(
    doc: documents.SourceDocument,
    *,
    allow_remote_refs: bool,
    allow_outside_refs: bool,
    ref_root: RefRoot = None,
) -> _Analysis:
    version = _version(doc)
    resolved = schema.resolve_refs(
        doc,
        load=_load_uri,
        allow_remote=allow_remote_refs,
        allow_outside=allow_outside_refs,
        ref_root=ref_root,
    )
    depth = _check_expansion(doc, resolved.data)
    # A misplaced $ref is a fault of the document as written, before resolution; so are those the
    # official 3.x rules find in the root file as written.
    written = schema.misplaced_refs(doc.data, version)
    found = schema.validate_asyncapi(resolved.data, version, depth=depth)
    if version in schema.SUPPORTED_VERSIONS:
        found.extend([*check_rules(resolved.data), *_check_bindings(resolved.data)])
    else:  # 3.x: its schema checks the bindings itself, by their bindingVersion
        found.extend(rules_v3.check_rules(resolved.data))
        written.extend(rules_v3.check_written(doc.data))
    misplaced = sorted(
        (_locate(doc, p) for p in written), key=lambda p: (p.line or 0, p.column or 0)
    )
    problems = (
        *_once_where_written(doc, resolved, resolved.problems),
        *misplaced,
        *_once_where_written(doc, resolved, found),
    )
    return _Analysis(
        document=doc, version=version, resolved=resolved, problems=problems, depth=depth
    )


def _once_where_written(
    doc: documents.SourceDocument, resolved: Any, problems: Iterable[Problem]
) -> tuple[Problem, ...]:
    """``problems`` located where the nodes they point at are written, each once.

    A node used in several places (a component, a part of another file reached through
    ``$ref``s) is validated at each, and its problems found once per use: they are one
    problem, at the node's own pointer (in its own file), saying how many places use it.
    A definition under ``components`` is not a use.
    """
    found: dict[tuple[object, ...], tuple[Problem, set[str]]] = {}
    for problem in problems:
        origin, pointer = resolved.origin(problem.pointer)
        key = (id(origin), pointer, problem.rule, problem.message, problem.severity)
        entry = found.get(key)
        if entry is None:
            located = _locate(origin, attrs.evolve(problem, pointer=pointer))
            found[key] = entry = (located, set())
        if not (
            origin is doc and problem.pointer == pointer and pointer.startswith("/components/")
        ):
            entry[1].add(problem.pointer)
    return tuple(
        attrs.evolve(problem, message=f"{problem.message} (used in {len(uses)} places)")
        if len(uses) > 1
        else problem
        for problem, uses in found.values()
    )


RefRoot = str | os.PathLike[str] | None


def validate_document(
    source: str | os.PathLike[str] | Mapping[str, Any] | documents.SourceDocument,
    *,
    allow_remote_refs: bool = False,
    allow_outside_refs: bool = False,
    ref_root: RefRoot = None,
) -> ValidationReport:
    """Validate a document without importing it.

    A document that cannot be read raises :class:`DocumentError`.  A version that is missing or
    not supported is reported as an error of the report (``asyncapi-version``), like every
    schema and rule problem, with ``supported`` ``None`` or ``False``.  ``ref_root``: a folder
    under which relative ``$ref``s may lead besides the document's own (see
    :func:`~asyncapi_gw.schema.resolve_refs`).
    """
    doc = _read(source)
    try:
        analysis = _analyse(
            doc,
            allow_remote_refs=allow_remote_refs,
            allow_outside_refs=allow_outside_refs,
            ref_root=ref_root,
        )
    except UnsupportedVersionError as exc:
        return ValidationReport(
            file=doc.name, asyncapi=doc.data["asyncapi"], errors=exc.problems, supported=False
        )
    except ValidationError as exc:  # no version declared
        return ValidationReport(file=doc.name, asyncapi=None, errors=exc.problems, supported=None)
    return ValidationReport(
        file=doc.name,
        asyncapi=analysis.version,
        errors=analysis.errors,
        warnings=analysis.warnings,
    )


def import_asyncapi(
    source: str | os.PathLike[str] | Mapping[str, Any] | documents.SourceDocument,
    *,
    context: str | None = None,
    lenient: bool = False,
    point_of_view: PointOfView | None = None,
    allow_remote_refs: bool = False,
    allow_outside_refs: bool = False,
    ref_root: RefRoot = None,
) -> ImportResult:
    """Import a document as an API, with the warnings met on the way.

    Invalid documents raise :class:`ValidationError` unless ``lenient``, which imports what can
    be represented and returns every problem as a located warning.  What no API can be built
    without (a name, a version) raises :class:`ConversionError` even then; its ``problems`` are
    the warnings followed by the errors that stopped the import.  ``point_of_view`` says how the
    ``send`` and ``receive`` operations of an AsyncAPI 3 document read (``None``: WSO2 API
    Manager's documents are recognised and read its way, with a warning; others are read as the
    specification says); 2.x documents have no such choice.
    """
    doc = _read(source)
    analysis = _analyse(
        doc,
        allow_remote_refs=allow_remote_refs,
        allow_outside_refs=allow_outside_refs,
        ref_root=ref_root,
    )
    name = doc.name or "the document"
    if analysis.errors and not lenient:
        message = f"{name} is not a valid AsyncAPI {analysis.version} document"
        spelled = v3.wso2_spelled_channels(doc.data) if analysis.version in v3.VERSIONS else []
        if spelled:
            message += (
                f"; its operations reference channel {json_excerpt(spelled[0])} in WSO2 API "
                "Manager's spelling, which a lenient import reads as WSO2 meant it "
                "(lenient=True, CLI: --lenient)"
            )
        raise ValidationError(message, analysis.errors)
    warnings = [attrs.evolve(p, severity=Severity.WARNING) for p in analysis.problems]
    if analysis.depth > _MAX_IMPORT_DEPTH:
        message = (
            f"the document is nested {analysis.depth} levels deep; at most "
            f"{_MAX_IMPORT_DEPTH} can be imported"
        )
        raise ConversionError(
            f"{name} cannot be imported: {message}",
            [
                *warnings,
                Problem(pointer="", message=message, rule="document-too-deep", file=doc.name),
            ],
        )
    data = analysis.resolved.data
    try:
        api, problems = _decode(
            data,
            analysis.version,
            source=doc.styled_data(),
            context=context,
            lenient=lenient,
            base_uri=doc.uri,
            point_of_view=point_of_view,
        )
    except ConversionError as exc:
        located = [_locate_resolved(analysis.resolved, p) for p in exc.problems]
        fatal = [p for p in located if p.severity is Severity.ERROR]
        if lenient:
            # One sentence: why no API could be built, even from what can be represented.
            reason = "; ".join(dict.fromkeys(p.message for p in fatal))
            message = f"{name} cannot be imported, even leniently: {reason}"
        else:
            message = (
                f"{name} is valid AsyncAPI {analysis.version} but cannot be represented "
                "as a WebSocket API"
            )
        raise ConversionError(message, [*warnings, *located]) from None
    warnings.extend(_locate_resolved(analysis.resolved, p) for p in problems)
    if context is None and api.document is not None:
        _remember_baseline(api.document, api, data)
    return ImportResult(api=api, warnings=tuple(warnings), document=doc)


def _decode(
    data: Mapping[str, Any],
    version: str | None,
    *,
    source: Mapping[str, Any],
    context: str | None = None,
    lenient: bool,
    base_uri: str | None,
    point_of_view: PointOfView | None,
) -> tuple[StreamingAPI, list[Problem]]:
    """The API of a resolved document, by the codec of its major version."""
    if version in v3.VERSIONS:
        return v3.decode(
            data,
            source=source,
            context=context,
            lenient=lenient,
            base_uri=base_uri,
            point_of_view=point_of_view,
        )
    return v2.decode(data, source=source, context=context, lenient=lenient, base_uri=base_uri)


def load_asyncapi(
    source: str | os.PathLike[str] | Mapping[str, Any] | documents.SourceDocument,
    *,
    context: str | None = None,
    lenient: bool = False,
    point_of_view: PointOfView | None = None,
    allow_remote_refs: bool = False,
    allow_outside_refs: bool = False,
    ref_root: RefRoot = None,
) -> StreamingAPI:
    """The API described by a file path or a mapping (see :func:`import_asyncapi`)."""
    return import_asyncapi(
        source,
        context=context,
        lenient=lenient,
        point_of_view=point_of_view,
        allow_remote_refs=allow_remote_refs,
        allow_outside_refs=allow_outside_refs,
        ref_root=ref_root,
    ).api


def loads_asyncapi(
    text: str | bytes,
    *,
    context: str | None = None,
    lenient: bool = False,
    point_of_view: PointOfView | None = None,
) -> StreamingAPI:
    """The API described by YAML or JSON text."""
    return load_asyncapi(
        documents.parse_document(text),
        context=context,
        lenient=lenient,
        point_of_view=point_of_view,
    )


# What a source document decodes to, and its resolved data, by the document's id.
_baselines: dict[int, tuple[Mapping[str, Any], StreamingAPI, Mapping[str, Any]]] = {}
_BASELINE_CACHE = 64


def _remember_baseline(
    source: Mapping[str, Any], baseline: StreamingAPI, resolved: Mapping[str, Any]
) -> None:
    """Note what a source document decodes to, so that its export needs no second pass."""
    if len(_baselines) >= _BASELINE_CACHE:
        _baselines.pop(next(iter(_baselines)))
    _baselines[id(source)] = (source, baseline, resolved)


def _resolve_source(
    source: Mapping[str, Any],
    base_uri: str | None,
    *,
    allow_remote_refs: bool,
    allow_outside_refs: bool,
    ref_root: RefRoot,
) -> schema.Resolved:
    """A source document (living at ``base_uri``) with its ``$ref``s resolved under the policy."""
    return schema.resolve_refs(
        attrs.evolve(documents.document_from_data(source), uri=base_uri),
        load=_load_uri,
        allow_remote=allow_remote_refs,
        allow_outside=allow_outside_refs,
        ref_root=ref_root,
    )


def _baseline(
    api: StreamingAPI, *, allow_remote_refs: bool, allow_outside_refs: bool, ref_root: RefRoot
) -> tuple[StreamingAPI, Mapping[str, Any]] | None:
    """What the API's source document decodes to (read from the API's point of view), and
    the source resolved, so that export rewrites only changes."""
    source = api.document
    if source is None:
        return None
    cached = _baselines.get(id(source))
    if cached is not None and cached[0] is source:
        return cached[1], cached[2]
    resolved = _resolve_source(
        source,
        api.base_uri,
        allow_remote_refs=allow_remote_refs,
        allow_outside_refs=allow_outside_refs,
        ref_root=ref_root,
    )
    try:
        baseline, _ = _decode(
            resolved.data,
            api.asyncapi_version,
            source=source,
            lenient=True,
            base_uri=None,
            point_of_view=api.point_of_view,
        )
    except ConversionError:
        return None
    _remember_baseline(source, baseline, resolved.data)
    return baseline, resolved.data


def _family(version: str | None) -> str | None:
    return None if version is None else version.partition(".")[0]


def _converted(
    api: StreamingAPI,
    source: Mapping[str, Any],
    version: str,
    *,
    point_of_view: PointOfView | None,
    lossy: bool,
    source_document: documents.SourceDocument | None,
    policy: Mapping[str, Any],
) -> tuple[StreamingAPI, Mapping[str, Any], list[Problem]]:
    """``api`` with its source (of the other major version) converted to ``version`` as by
    :func:`convert_asyncapi`, that conversion resolved, and the conversion's warnings:
    exported against them, what the API did not change is written as the conversion writes
    it.  A 3.x target is written from ``point_of_view`` (by default the application's); a 3.x
    source is read as the API reads it.  What the target cannot hold raises the conversion's
    :class:`ConversionError`, located in ``source_document``, unless ``lossy``.  ``policy`` is
    the ``$ref`` policy of the export."""
    pov = (
        point_of_view or PointOfView.APPLICATION
        if version in v3.VERSIONS
        else api.point_of_view or PointOfView.APPLICATION
    )
    # other files are followed only when the policy lets the source reach every one
    reachable = not _resolve_source(source, api.base_uri, **policy).problems

    def located(problem: Problem) -> Problem:
        return problem if source_document is None else _locate(source_document, problem)

    try:
        result = convert.convert_document(
            thaw(source),
            version,
            point_of_view=pov.value,
            lossy=lossy,
            lookup=_documents_lookup() if reachable else None,
            base_uri=api.base_uri,
        )
    except ConversionError as exc:
        raise ConversionError(exc.message, [located(p) for p in exc.problems]) from None
    warnings = [located(p) for p in result.warnings]
    converted = attrs.evolve(
        api,
        document=result.data,
        asyncapi_version=version,
        point_of_view=pov if version in v3.VERSIONS else None,
    )
    return converted, _resolve_source(result.data, api.base_uri, **policy).data, warnings


def _encode(
    api: StreamingAPI,
    version: str,
    *,
    point_of_view: PointOfView | None,
    lossy: bool,
    source_document: documents.SourceDocument | None,
    allow_remote_refs: bool,
    allow_outside_refs: bool,
    ref_root: RefRoot,
) -> tuple[dict[str, Any], list[Problem]]:
    """The document of ``api`` in ``version`` by the codec of its major version, and what it
    could not write.  A source of the other major version is converted first (see
    :func:`_converted`)."""
    policy: dict[str, Any] = {
        "allow_remote_refs": allow_remote_refs,
        "allow_outside_refs": allow_outside_refs,
        "ref_root": ref_root,
    }
    problems: list[Problem] = []
    source = api.document
    found = _baseline(api, **policy) if source is not None else None
    cross = _family(api.asyncapi_version) != _family(version)
    if source is not None and found is not None and cross:
        # the baseline stays what the API was imported as: what the API left unchanged is
        # written as the converted source has it
        api, converted, problems = _converted(
            api,
            source,
            version,
            point_of_view=point_of_view,
            lossy=lossy,
            source_document=source_document,
            policy=policy,
        )
        found = attrs.evolve(found[0], point_of_view=api.point_of_view), converted
    baseline, resolved = found if found is not None else (None, None)
    if version in v3.VERSIONS:
        out, unwritten = v3.encode(
            api, version=version, baseline=baseline, resolved=resolved, point_of_view=point_of_view
        )
        return out, problems + unwritten
    return v2.encode(api, version=version, baseline=baseline), problems


def _remove(data: Any, pointer: str) -> None:
    """Delete the mapping member at ``pointer`` (not the root) from ``data``, if it is there."""
    *path, last = [unescape_token(t) for t in pointer.split("/")[1:]]
    node = data
    for key in path:
        if isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        elif isinstance(node, dict):
            node = node.get(key)
        else:
            return
    if isinstance(node, dict):
        node.pop(last, None)


def _export_errors(analysis: _Analysis, version: str) -> list[Problem]:
    """The errors of an exported document: each feature that ``version`` lacks, named with
    the version that introduced it, instead of the schema errors it causes; then any other
    error (schema errors that remain with those features left out, rules, references)."""
    gaps = (
        v2.version_gaps(analysis.resolved.data, version)
        if version in schema.SUPPORTED_VERSIONS
        else []
    )
    if not gaps:
        return list(analysis.errors)
    without = copy.deepcopy(analysis.resolved.data)
    for gap in gaps:
        _remove(without, gap.pointer)
    remaining = [
        _locate_resolved(analysis.resolved, p) for p in schema.validate_asyncapi(without, version)
    ]
    others = [p for p in analysis.errors if p.rule != _SCHEMA_RULE]
    return [*(_locate_resolved(analysis.resolved, p) for p in gaps), *remaining, *others]


def _in_source(
    analysis: _Analysis, source: documents.SourceDocument | None, problem: Problem
) -> Problem:
    """An export problem located in the document the API was imported from: the output's own
    nodes are that document's (the export rewrites only what changed)."""
    origin, pointer = analysis.resolved.origin(problem.pointer)
    if origin is not analysis.document:
        return problem  # in another file, located there already
    if source is None:
        return problem
    return _locate(source, problem, pointer)


def export_asyncapi(
    api: StreamingAPI,
    *,
    asyncapi_version: str | None = None,
    point_of_view: PointOfView | None = None,
    lenient: bool = False,
    warnings: list[Problem] | None = None,
    allow_remote_refs: bool = False,
    allow_outside_refs: bool = False,
    ref_root: RefRoot = None,
    source_document: documents.SourceDocument | None = None,
) -> dict[str, Any]:
    """The AsyncAPI document of ``api`` as plain data.

    The version defaults to the one the API was imported from, else 2.6.0.  The result is
    validated against that version's official schema; what the target version cannot express
    raises :class:`ConversionError` naming each feature, where it is and the version that
    introduced it, rather than being dropped.  ``lenient`` (for APIs imported leniently from
    invalid documents) writes the document anyway and adds its problems, as warnings, to
    ``warnings``.  The ``$ref`` policy is the one of :func:`import_asyncapi`: kept ``$ref``s are
    followed to validate the result.  ``source_document`` (:attr:`ImportResult.document`) is the
    document the API was imported from: problems are located (file, line, column) in it.

    ``point_of_view`` is how an AsyncAPI 3 document writes ``send`` and ``receive``: by default
    as the source was read, else from the application's side (the specification's);
    :attr:`PointOfView.CLIENT` writes what WSO2 API Manager 4.7 reads.  It does not apply to 2.x.
    A source of the other major version is converted to ``version`` as by
    :func:`convert_asyncapi` (from ``point_of_view`` for a 3.x target) and the API written on
    top of it: unchanged, the result is the conversion's.  What the target cannot hold raises
    the conversion's :class:`ConversionError`; ``lenient`` drops it with a warning instead.
    """
    version = asyncapi_version or api.asyncapi_version or DEFAULT_EXPORT_VERSION
    if version not in EXPORT_VERSIONS:
        raise UnsupportedVersionError(
            f"cannot export AsyncAPI {version}; supported: {', '.join(EXPORT_VERSIONS)}"
        )
    policy: dict[str, Any] = {
        "allow_remote_refs": allow_remote_refs,
        "allow_outside_refs": allow_outside_refs,
        "ref_root": ref_root,
    }
    out, unwritten = _encode(
        api,
        version,
        point_of_view=point_of_view,
        lossy=lenient,
        source_document=source_document,
        **policy,
    )
    doc = attrs.evolve(documents.document_from_data(out), uri=api.base_uri)
    analysis = _analyse(doc, **policy)
    if warnings is not None:
        warnings.extend(
            _in_source(analysis, source_document, p)
            for p in (*unwritten, *analysis.warnings)
            if p.severity is Severity.WARNING
        )
    errors = [
        _in_source(analysis, source_document, p)
        for p in (
            *(p for p in unwritten if p.severity is Severity.ERROR),
            *(_export_errors(analysis, version) if analysis.errors else ()),
        )
    ]
    if not errors:
        return out
    if lenient:
        if warnings is not None:
            warnings.extend(attrs.evolve(p, severity=Severity.WARNING) for p in errors)
        return out
    gaps = sum(p.rule == v2.VERSION_FEATURE_RULE for p in errors)
    why = f": it uses {gaps} feature{'s' * (gaps != 1)} introduced later" if gaps else ""
    raise ConversionError(
        f"API {json_excerpt(api.name)} cannot be written as AsyncAPI {version}{why}", errors
    )


def dump_asyncapi(
    api: StreamingAPI,
    *,
    asyncapi_version: str | None = None,
    point_of_view: PointOfView | None = None,
    fmt: str = "yaml",
    lenient: bool = False,
    warnings: list[Problem] | None = None,
    allow_remote_refs: bool = False,
    allow_outside_refs: bool = False,
    ref_root: RefRoot = None,
    source_document: documents.SourceDocument | None = None,
) -> str:
    """The AsyncAPI document of ``api`` as YAML or JSON text (see :func:`export_asyncapi`)."""
    data = export_asyncapi(
        api,
        asyncapi_version=asyncapi_version,
        point_of_view=point_of_view,
        lenient=lenient,
        warnings=warnings,
        allow_remote_refs=allow_remote_refs,
        allow_outside_refs=allow_outside_refs,
        ref_root=ref_root,
        source_document=source_document,
    )
    return documents.dump_document(data, fmt)


# -- document conversion (2.x <-> 3.x) --------------------------------------------------------


def _documents_lookup() -> convert.Lookup:
    """Follows a ``$ref`` to another file (already permitted by the reference policy)."""
    cache: dict[str, documents.SourceDocument] = {}

    def lookup(base: str, ref: str) -> tuple[str, Any]:
        target = urljoin(base, ref)
        uri, fragment = urldefrag(target)
        doc = cache.get(uri)
        if doc is None:
            try:
                doc = cache[uri] = _load_uri(uri)
            except DocumentError as error:
                raise ConversionError(error.message, error.problems) from None
        node = schema.node_at(doc.data, unquote(fragment))
        if node is schema.NOWHERE:
            message = f"$ref {ref!r}: {fragment!r} is not a JSON pointer to a node of {uri}"
            raise ConversionError(
                message, [Problem(pointer="", message=message, rule="asyncapi-ref")]
            )
        return target, node

    return lookup


# Problems that make a document unreadable as AsyncAPI; the semantic rules' problems (an example
# that does not match its schema, ...) do not stop a conversion: they become warnings.
_STRUCTURAL_RULES = frozenset(
    {"asyncapi-schema", "asyncapi-ref", "asyncapi-ref-placement", "asyncapi-version"}
)


def _check_source(
    doc: documents.SourceDocument,
    *,
    allow_remote_refs: bool,
    allow_outside_refs: bool,
    ref_root: RefRoot,
) -> list[Problem]:
    """The semantic problems of a document to convert, as warnings; ValidationError when it
    breaks its version's schema or a reference cannot be resolved."""
    declared = doc.data.get("asyncapi") if isinstance(doc.data, Mapping) else None
    problems = _analyse(
        doc,
        allow_remote_refs=allow_remote_refs,
        allow_outside_refs=allow_outside_refs,
        ref_root=ref_root,
    ).problems
    errors = [p for p in problems if p.severity is Severity.ERROR and p.rule in _STRUCTURAL_RULES]
    if errors:
        raise ValidationError(
            f"{doc.name or 'the document'} is not a valid AsyncAPI {declared} document", errors
        )
    return [attrs.evolve(p, severity=Severity.WARNING) for p in problems]


_REFUSED = re.compile(
    r"""property ["']([^"']+)["'] is not allowed here|["']([^"']+)["'] does """
    r"not match any of the regexes"
)


def _drop_refused(data: dict[str, Any], problems: tuple[Problem, ...]) -> list[str]:
    """Delete each member a schema problem says is not allowed; the pointers deleted."""
    dropped = []
    for problem in problems:
        names = {a or b for a, b in _REFUSED.findall(problem.message)}
        pointer = problem.pointer
        if " is not allowed here" in problem.message:
            pointer = pointer.rsplit("/", 1)[0]
        node = schema.node_at(data, pointer)
        for name in sorted(names):
            if isinstance(node, dict) and name in node:
                del node[name]
                dropped.append(f"{pointer}/{escape_token(name)}")
    return dropped


def convert_asyncapi(
    source: str | os.PathLike[str] | Mapping[str, Any] | documents.SourceDocument,
    to: str,
    *,
    point_of_view: PointOfView | str = PointOfView.APPLICATION,
    lossy: bool = False,
    allow_remote_refs: bool = False,
    allow_outside_refs: bool = False,
    ref_root: RefRoot = None,
) -> convert.Conversion:
    """An AsyncAPI 2.0 to 2.6 or 3.0 to 3.1 document written as AsyncAPI ``to``, as plain data.

    The source must be valid against its version's schema with every ``$ref`` resolved; the
    semantic rules' problems (an example that does not match its schema, ...) are returned as
    warnings. See :mod:`asyncapi_gw.asyncapi.convert` for what maps to what. What the target
    cannot hold
    raises :class:`ConversionError` whose problems locate each field in the source (file, line,
    column), unless ``lossy``, which drops it with a warning. The result is validated against
    the target's official schema when this package validates that version; ``$ref``s to other
    files are followed under the reference policy of :func:`import_asyncapi` (``ref_root``
    included).  ``point_of_view`` is a :class:`PointOfView` or its value, as for
    :func:`export_asyncapi`.
    """
    if isinstance(point_of_view, PointOfView):
        point_of_view = point_of_view.value
    doc = _read(source)
    policy: dict[str, Any] = {
        "allow_remote_refs": allow_remote_refs,
        "allow_outside_refs": allow_outside_refs,
        "ref_root": ref_root,
    }
    found = _check_source(doc, **policy)
    try:
        result = convert.convert_document(
            doc.data,
            to,
            point_of_view=point_of_view,
            lossy=lossy,
            lookup=_documents_lookup(),
            base_uri=doc.uri,
        )
    except ConversionError as exc:
        raise ConversionError(exc.message, [_locate(doc, p) for p in exc.problems]) from None
    warnings = [*found, *(_locate(doc, p) for p in result.warnings)]
    if to not in schema.VALIDATION_VERSIONS:
        return attrs.evolve(result, warnings=tuple(warnings))
    data = result.data
    for _ in range(8):  # each pass drops the members the schema refused at one level
        out = attrs.evolve(
            documents.document_from_data(
                data, name=f"{doc.name or 'the document'} as AsyncAPI {to}"
            ),
            uri=doc.uri,
        )
        errors = tuple(p for p in _analyse(out, **policy).errors if p.rule in _STRUCTURAL_RULES)
        if not errors:
            break
        dropped = _drop_refused(data, errors) if lossy else []
        if not dropped:
            raise ConversionError(
                f"{doc.name or 'the document'} cannot be written as AsyncAPI {to}: its schema "
                "refuses these parts of the result, which later versions hold (pointers into "
                "the result; --lossy drops them)",
                errors,
            )
        warnings.extend(
            Problem(
                pointer=p,
                rule="asyncapi-conversion",
                severity=Severity.WARNING,
                message=f"dropped: AsyncAPI {to} has no place for it (pointer into the result)",
            )
            for p in dropped
        )
    return convert.Conversion(data=data, warnings=tuple(warnings))
