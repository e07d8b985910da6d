"""Validation against the official schemas, offline, with every error as a :class:`Problem`.

Verdicts follow the official JS parser: draft-07 with the meta-schema embedded in each bundled
schema, all errors collected, formats checked as ``ajv-formats`` checks them except
``uri-reference`` (the parser drops it so that JSON pointers such as ``#/channels/~1a~1{b}``
pass).  A ``oneOf``/``anyOf`` failure is reported through the failures of its most plausible
branch instead of "is not valid under any of the given schemas".
"""

from __future__ import annotations

import collections
import contextvars
import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import attrs
import jsonschema
import jsonschema.exceptions
import jsonschema.validators
import referencing
import referencing.exceptions

from asyncapi_gw.errors import Problem, Severity, UnsupportedVersionError, json_excerpt
from asyncapi_gw.pointers import escape_token
from asyncapi_gw.schema.bundle import (
    BINDING_KINDS,
    SUPPORTED_VERSIONS,
    VALIDATION_VERSIONS,
    binding_schema_uri,
    binding_versions,
    bindings_registry,
    bundled_schema,
    document_registry,
    document_schema_uri,
)
from asyncapi_gw.schema.patterns import python_regex
from asyncapi_gw.schema.problems import extra_keys, problems_from_errors

__all__ = [
    "is_uri_reference",
    "misplaced_refs",
    "validate_asyncapi",
    "validate_binding",
    "validate_instance",
]

_SCHEMA_RULE = "asyncapi-schema"
_REF_PLACEMENT_RULE = "asyncapi-ref-placement"
_BINDING_RULE = "asyncapi-binding"
_INSTANCE_CACHE_SIZE = 4096
# jsonschema recurses a few generator frames per level of the instance; beyond this depth the
# default recursion limit (and a panic in the rpds extension it uses) is too close.
_MAX_DEPTH = 150

# -- formats ---------------------------------------------------------------------------------
# The regular expressions of ajv-formats 2.1 ("full" mode), which the official parser uses.
_URI = re.compile(
    r"^(?:[a-z][a-z0-9+\-.]*:)(?:\/?\/(?:(?:[a-z0-9\-._~!$&'()*+,;=:]|%[0-9a-f]{2})*@)?"
    r"(?:\[(?:(?:(?:(?:[0-9a-f]{1,4}:){6}|::(?:[0-9a-f]{1,4}:){5}|(?:[0-9a-f]{1,4})?::"
    r"(?:[0-9a-f]{1,4}:){4}|(?:(?:[0-9a-f]{1,4}:){0,1}[0-9a-f]{1,4})?::(?:[0-9a-f]{1,4}:){3}|"
    r"(?:(?:[0-9a-f]{1,4}:){0,2}[0-9a-f]{1,4})?::(?:[0-9a-f]{1,4}:){2}|(?:(?:[0-9a-f]{1,4}:)"
    r"{0,3}[0-9a-f]{1,4})?::[0-9a-f]{1,4}:|(?:(?:[0-9a-f]{1,4}:){0,4}[0-9a-f]{1,4})?::)"
    r"(?:[0-9a-f]{1,4}:[0-9a-f]{1,4}|(?:(?:25[0-5]|2[0-4]\d|[01]?\d\d?)\.){3}(?:25[0-5]|"
    r"2[0-4]\d|[01]?\d\d?))|(?:(?:[0-9a-f]{1,4}:){0,5}[0-9a-f]{1,4})?::[0-9a-f]{1,4}|"
    r"(?:(?:[0-9a-f]{1,4}:){0,6}[0-9a-f]{1,4})?::)|[Vv][0-9a-f]+\.[a-z0-9\-._~!$&'()*+,;=:]+)"
    r"\]|(?:(?:25[0-5]|2[0-4]\d|[01]?\d\d?)\.){3}(?:25[0-5]|2[0-4]\d|[01]?\d\d?)|"
    r"(?:[a-z0-9\-._~!$&'()*+,;=]|%[0-9a-f]{2})*)(?::\d*)?(?:\/(?:[a-z0-9\-._~!$&'()*+,;=:@]|"
    r"%[0-9a-f]{2})*)*|\/(?:(?:[a-z0-9\-._~!$&'()*+,;=:@]|%[0-9a-f]{2})+(?:\/"
    r"(?:[a-z0-9\-._~!$&'()*+,;=:@]|%[0-9a-f]{2})*)*)?|(?:[a-z0-9\-._~!$&'()*+,;=:@]|"
    r"%[0-9a-f]{2})+(?:\/(?:[a-z0-9\-._~!$&'()*+,;=:@]|%[0-9a-f]{2})*)*)(?:\?"
    r"(?:[a-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9a-f]{2})*)?(?:#(?:[a-z0-9\-._~!$&'()*+,;=:@/?]|"
    r"%[0-9a-f]{2})*)?$",
    re.IGNORECASE,
)
# ajv-formats' "uri-reference": the scheme and the hierarchy part optional, and '"' allowed
# wherever the "uri" above allows "'" (but in the user information), as ajv-formats writes it.
_URI_REFERENCE = re.compile(
    _URI.pattern.replace(r"^(?:[a-z][a-z0-9+\-.]*:)(?:", r"^(?:[a-z][a-z0-9+\-.]*:)?(?:", 1)
    .replace(r"&'()*+,;=]", r"&'\"()*+,;=]")
    .replace(r"&'()*+,;=:@", r"&'\"()*+,;=:@")
    .replace(r")*)*)(?:\?", r")*)*)?(?:\?", 1),
    re.IGNORECASE,
)
_URI_TEMPLATE = re.compile(
    r"^(?:(?:[^\x00-\x20\"'<>%\\^`{|}]|%[0-9a-f]{2})|\{[+#./;?&=,!@|]?(?:[a-z0-9_]|"
    r"%[0-9a-f]{2})+(?::[1-9][0-9]{0,3}|\*)?(?:,(?:[a-z0-9_]|%[0-9a-f]{2})+"
    r"(?::[1-9][0-9]{0,3}|\*)?)*\})*$",
    re.IGNORECASE,
)
_EMAIL = re.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[a-z0-9]"
    r"(?:[a-z0-9-]*[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$",
    re.IGNORECASE,
)
_UNCHECKED_FORMATS = frozenset({"uri-reference", "iri-reference"})


def _is_uri(value: object) -> bool:
    return not isinstance(value, str) or (
        re.search(r"/|:", value) is not None and _URI.match(value) is not None
    )


def is_uri_reference(value: str) -> bool:
    """Whether ``value`` is an RFC 3986 URI reference as ajv-formats checks it (the official
    parser's rules check their input with it, though its schema check leaves the format out)."""
    return _URI_REFERENCE.match(value) is not None


def _is_uri_template(value: object) -> bool:
    return not isinstance(value, str) or _URI_TEMPLATE.match(value) is not None


def _is_email(value: object) -> bool:
    return not isinstance(value, str) or _EMAIL.match(value) is not None


def _is_regex(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        re.compile(python_regex(value))
    except (re.error, OverflowError, RecursionError):
        return False
    return True


def _format_checker() -> jsonschema.FormatChecker:
    known = jsonschema.Draft7Validator.FORMAT_CHECKER.checkers
    checker = jsonschema.FormatChecker(formats=())
    checker.checkers = {
        name: check for name, check in known.items() if name not in _UNCHECKED_FORMATS
    }
    for name, function in (
        ("uri", _is_uri),
        ("uri-template", _is_uri_template),
        ("email", _is_email),
        ("regex", _is_regex),
    ):
        checker.checks(name)(function)
    return checker


_FORMATS = _format_checker()

# -- validator classes -----------------------------------------------------------------------
_draft7_ref = jsonschema.Draft7Validator.VALIDATORS["$ref"]


@attrs.frozen
class _Memo:
    """What one validation call learns: the structure class of each container of the data
    (equal JSON, equal class) and the (class, schema) pairs found valid.  A sub-object that
    occurs many times (a shared message, the same small payload schema in every channel) is
    thus checked once per schema; invalid ones are checked each time, so errors are exact.
    """

    classes: dict[int, int]
    valid: set[tuple[int, int]] = attrs.field(factory=set)


_memo: contextvars.ContextVar[_Memo | None] = contextvars.ContextVar("_memo", default=None)


def _structure_classes(data: Any) -> tuple[dict[int, int], int]:
    """id(container) -> a number shared by the containers holding equal JSON (members in the
    same order); and the nesting depth of ``data`` (each shared container is visited once)."""
    classes: dict[int, int] = {}
    depths: dict[int, int] = {}
    interned: dict[object, int] = {}
    containers = (dict, list)
    scalars = (str, int, float)

    def parts(values: Iterable[Any]) -> Iterator[object]:
        for value in values:
            if isinstance(value, containers):
                # A child without a class is an ancestor: the data is cyclic; count it apart.
                yield ("c", classes.get(id(value), -1 - id(value)))
            elif value is None or isinstance(value, scalars):
                yield (type(value), value)
            else:
                yield ("x", id(value))

    pending: list[tuple[Any, bool]] = [(data, False)]
    while pending:
        node, children_done = pending.pop()
        if id(node) in classes or not isinstance(node, containers):
            continue
        values = node.values() if isinstance(node, dict) else node
        if not children_done:
            pending.append((node, True))
            pending.extend(
                (value, False)
                for value in values
                if isinstance(value, containers) and id(value) not in classes
            )
            continue
        key: object
        if isinstance(node, dict):
            key = ("o", tuple(node), tuple(parts(values)))
        else:
            key = ("a", tuple(parts(values)))
        classes[id(node)] = interned.setdefault(key, len(interned))
        # A cyclic child (an ancestor, still without a depth) counts as too deep.
        depths[id(node)] = 1 + max(
            (
                depths.get(id(value), _MAX_DEPTH)
                for value in values
                if isinstance(value, containers)
            ),
            default=0,
        )
    return classes, depths.get(id(data), 0)


def _ref(
    validator: Any, ref: Any, instance: Any, schema: Any
) -> Iterator[jsonschema.exceptions.ValidationError]:
    """``$ref``, either inlined by the bundle's registry (a schema) or a URI (a user schema)."""
    if not isinstance(ref, str):
        memo = _memo.get()
        kind = None if memo is None else memo.classes.get(id(instance))
        if memo is None or kind is None:
            yield from validator.descend(instance, ref)
            return
        key = (kind, id(ref))
        if key in memo.valid:
            return
        errors = list(validator.descend(instance, ref))
        if not errors:
            memo.valid.add(key)
        yield from errors
        return
    # A URI left in a user's resolved schema closes a cycle or was refused (and reported) when
    # the document was resolved: it constrains nothing here.
    try:
        errors = list(_draft7_ref(validator, ref, instance, schema))
    except referencing.exceptions.Unresolvable:
        return
    yield from errors


_draft7_pattern = jsonschema.Draft7Validator.VALIDATORS["pattern"]
_draft7_pattern_properties = jsonschema.Draft7Validator.VALIDATORS["patternProperties"]


def _pattern(
    validator: Any, pattern: Any, instance: Any, schema: Any
) -> Iterator[jsonschema.exceptions.ValidationError]:
    if isinstance(pattern, str):
        pattern = python_regex(pattern)
    yield from _draft7_pattern(validator, pattern, instance, schema)


def _pattern_properties(
    validator: Any, patterns: Any, instance: Any, schema: Any
) -> Iterator[jsonschema.exceptions.ValidationError]:
    if isinstance(patterns, dict):
        patterns = {python_regex(k) if isinstance(k, str) else k: v for k, v in patterns.items()}
    yield from _draft7_pattern_properties(validator, patterns, instance, schema)


# types-jsonschema leaves extend() untyped.
_Validator = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    jsonschema.Draft7Validator,
    validators={"$ref": _ref, "pattern": _pattern, "patternProperties": _pattern_properties},
)


@functools.cache
def _document_validator(version: str, resolved: bool = True) -> Any:
    registry = document_registry(version, resolved=resolved)
    schema = registry.contents(document_schema_uri(version))
    return _Validator(schema, registry=registry, format_checker=_FORMATS)


# The `fast` extra: jsonschema-rs gives the verdict on a valid document about a hundred times
# faster.  Only "valid" is taken from it; any other answer is worked out again by jsonschema,
# which alone words the problems.  It must never pass what jsonschema refuses (a test checks
# that over every fixture and generated documents): its formats are ours, and the bundle's own
# draft-07 meta-schema is renamed so that jsonschema-rs cannot put its built-in copy in place.
try:
    import jsonschema_rs
except ImportError:  # pragma: no cover - the extra is not installed
    jsonschema_rs = None  # type: ignore[assignment]

_META_PREFIX = "http://json-schema.org/"


def _own_meta_schema(node: Any) -> Any:
    """``node`` with every ``$id``/``$ref`` of the bundled meta-schema renamed."""
    if isinstance(node, dict):
        return {
            key: (
                "urn:asyncapi-gw:bundled:" + value[len(_META_PREFIX) :]
                if key in ("$id", "$ref")
                and isinstance(value, str)
                and value.startswith(_META_PREFIX)
                else _own_meta_schema(value)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_own_meta_schema(value) for value in node]
    return node


@functools.cache
def _fast_document_validator(version: str) -> Any:
    """jsonschema-rs for the schema of ``version`` as shipped (the form of a document as
    written; a resolved 3.x document goes through :func:`_in_written_form` first)."""
    if jsonschema_rs is None:
        return None
    schema = _own_meta_schema(bundled_schema(version, resolved=False))
    schema["definitions"] = {
        (
            "urn:asyncapi-gw:bundled:" + key[len(_META_PREFIX) :]
            if key.startswith(_META_PREFIX)
            else key
        ): value
        for key, value in schema["definitions"].items()
    }
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    formats: dict[str, Callable[..., bool]] = {
        name: functools.partial(_FORMATS.conforms, format=name) for name in _FORMATS.checkers
    }
    return jsonschema_rs.Draft7Validator(schema, validate_formats=True, formats=formats)


def _fast_valid(validator: Any, data: Any) -> bool:
    """Whether jsonschema-rs finds ``data`` valid; ``False`` when it cannot tell."""
    try:
        return bool(validator.is_valid(data))
    except (ValueError, TypeError, OverflowError):
        return False


# A resolved 3.x document holds objects where the specification wants Reference Objects, and the
# schema's resolved form (see bundle.bundled_schema) accepts them there.  jsonschema-rs compiles
# that form ten times slower than the shipped one (it compiles a referenced definition anew at
# every place that references it), so the fast path checks the resolved document in the shipped
# form instead: each such object is put back as a reference when it is also in its own place in
# the document (a channel under ``channels``, a server under ``servers``, a message of a channel
# or of ``components``), where the shipped form checks it as that object anyway.
_PLACEHOLDER: dict[str, str] = {"$ref": "#"}


class _NotInPlaceError(Exception):
    """An object stands only where a reference belongs: the fast path cannot tell."""


def _in_written_form(data: Any) -> Any:
    """A resolved 3.x document with every object in a Reference-only place that is also in its
    own place written back as a reference; valid for the shipped schema exactly when ``data``
    is for the resolved form.  Raises :class:`_NotInPlaceError` for an object not in its place.
    """
    if not isinstance(data, dict):
        return data

    def values(node: Any, key: str) -> list[Any]:
        found = node.get(key) if isinstance(node, dict) else None
        return list(found.values()) if isinstance(found, dict) else []

    def objects(nodes: list[Any]) -> set[int]:
        return {id(node) for node in nodes if isinstance(node, dict) and "$ref" not in node}

    components = data.get("components")
    channels = values(data, "channels") + values(components, "channels")
    in_place = {
        "server": objects(values(data, "servers") + values(components, "servers")),
        "channel": objects(channels),
        "message": objects(
            [m for c in channels for m in values(c, "messages")] + values(components, "messages")
        ),
    }

    def reference(node: Any, kind: str) -> Any:
        if not isinstance(node, dict):
            return node  # refused by both forms
        if id(node) not in in_place[kind]:
            raise _NotInPlaceError
        return _PLACEHOLDER

    def references(node: dict[str, Any], key: str, kind: str) -> None:
        if isinstance(node.get(key), list):
            node[key] = [reference(item, kind) for item in node[key]]

    def channel(node: Any) -> Any:
        if not isinstance(node, dict) or "$ref" in node:
            return node
        node = dict(node)
        references(node, "servers", "server")
        return node

    def reply(node: Any) -> Any:
        if not isinstance(node, dict) or "$ref" in node:
            return node
        node = dict(node)
        if "channel" in node:
            node["channel"] = reference(node["channel"], "channel")
        references(node, "messages", "message")
        return node

    def operation(node: Any) -> Any:
        node = reply(node)
        if isinstance(node, dict) and "reply" in node:
            node["reply"] = reply(node["reply"])
        return node

    def each(node: Any, change: Callable[[Any], Any]) -> Any:
        return {k: change(v) for k, v in node.items()} if isinstance(node, dict) else node

    out = dict(data)
    for key, change in (("channels", channel), ("operations", operation)):
        if key in out:
            out[key] = each(out[key], change)
    if isinstance(components, dict):
        out["components"] = parts = dict(components)
        for key, change in (("channels", channel), ("operations", operation), ("replies", reply)):
            if key in parts:
                parts[key] = each(parts[key], change)
    return out


def _fast_resolved_valid(version: str, data: Any) -> bool:
    """Whether jsonschema-rs finds the resolved document ``data`` valid; ``False`` when it cannot
    tell.  The fast path of :func:`validate_asyncapi`."""
    validator = _fast_document_validator(version)
    if validator is None:
        return False
    if not version.startswith("3."):  # one form
        return _fast_valid(validator, data)
    try:
        return _fast_valid(validator, _in_written_form(data))
    except _NotInPlaceError:
        return False


@functools.cache
def _binding_validator(uri: str) -> Any:
    registry = bindings_registry()
    return _Validator(registry.contents(uri), registry=registry, format_checker=_FORMATS)


def _nesting(data: Any) -> int:
    """The nesting depth of ``data``, each shared container visited once; past ``_MAX_DEPTH``
    for cyclic data."""
    depths: dict[int, int] = {}
    pending: list[tuple[Any, bool]] = [(data, False)]
    while pending:
        node, children_done = pending.pop()
        if id(node) in depths or not isinstance(node, (dict, list)):
            continue
        children = [
            child
            for child in (node.values() if isinstance(node, dict) else node)
            if isinstance(child, (dict, list))
        ]
        if not children_done:
            pending.append((node, True))
            pending.extend((child, False) for child in children if id(child) not in depths)
            continue
        # A child without a depth yet is an ancestor: the data is cyclic.
        depths[id(node)] = 1 + max(
            (depths.get(id(child), _MAX_DEPTH) for child in children), default=0
        )
    return depths.get(id(data), 0)


def _too_deep(data: Any) -> bool:
    pending: list[tuple[Any, int]] = [(data, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > _MAX_DEPTH:
            return True
        children = node.values() if isinstance(node, dict) else node
        pending.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _too_deep_problems(pointer: str, rule: str, what: str) -> list[Problem]:
    return [
        Problem(
            pointer=pointer,
            rule=rule,
            message=f"{what} is nested more than {_MAX_DEPTH} levels deep: "
            "not validated against the schema",
        )
    ]


def _run(
    validator: Any,
    data: Any,
    *,
    pointer: str,
    rule: str,
    what: str,
    memoize: bool,
    fast: Callable[[Any], bool] | None = None,
    ignore: Callable[[jsonschema.exceptions.ValidationError], bool] | None = None,
    depth: int | None = None,
) -> list[Problem]:
    """``validator``'s verdict on ``data`` as problems; ``what`` names ``data`` in messages.

    ``memoize`` shares the verdicts of ``$ref`` targets between identical subtrees of ``data``;
    ``fast`` is a jsonschema-rs verdict on ``data`` for the same schema, trusted when true; the
    failures for which ``ignore`` is true explain nothing; ``depth``, when the caller knows it,
    is the nesting depth of ``data`` (as :func:`_nesting` counts).
    """
    classes = None
    if memoize:
        if (_nesting(data) if depth is None else depth) > _MAX_DEPTH:
            return _too_deep_problems(pointer, rule, what)
        if fast is not None and fast(data):
            return []
        classes, _ = _structure_classes(data)
    elif isinstance(data, (dict, list)) and _too_deep(data):
        return _too_deep_problems(pointer, rule, what)
    try:
        errors = _errors(validator, data, classes)
    except RecursionError:
        return [
            Problem(pointer=pointer, rule=rule, message=f"{what} is nested too deeply to validate")
        ]
    return problems_from_errors(errors, pointer=pointer, rule=rule, ignore=ignore)


def _errors(
    validator: Any, data: Any, classes: dict[int, int] | None
) -> list[jsonschema.exceptions.ValidationError]:
    """Every error of ``validator`` on ``data``; memoized when the structure ``classes`` of
    ``data`` are given (see :class:`_Memo`)."""
    token = _memo.set(_Memo(classes=classes)) if classes is not None else None
    try:
        return list(validator.iter_errors(data))
    finally:
        if token is not None:
            _memo.reset(token)


# -- public API ------------------------------------------------------------------------------
def validate_asyncapi(data: Any, version: str, *, depth: int | None = None) -> list[Problem]:
    """Every violation of the official schema of AsyncAPI ``version`` by ``data``, best first.

    ``data`` is a resolved document (no ``$ref`` left but those closing a cycle); ``depth`` is
    its nesting depth (each shared container counted once) when the caller has measured it.
    """
    _check_version(version)
    return _run(
        _document_validator(version),
        data,
        pointer="",
        rule=_SCHEMA_RULE,
        what="the document",
        memoize=True,
        fast=functools.partial(_fast_resolved_valid, version),
        ignore=_left_ref,
        depth=depth,
    )


def _left_ref(error: jsonschema.exceptions.ValidationError) -> bool:
    """Whether ``error`` is only a ``$ref`` left in place where the resolved document must hold
    an object: a reference that closes a cycle, or a broken one, reported when the document was
    resolved.  The official parser leaves these out of the resolved document's verdict too."""
    return error.validator == "additionalProperties" and extra_keys(error) == ["$ref"]


def _check_version(version: str) -> None:
    if version not in VALIDATION_VERSIONS:
        raise UnsupportedVersionError(
            f"AsyncAPI {version} is not supported; supported versions: "
            + ", ".join(VALIDATION_VERSIONS)
        )


def _ref_and_depth(data: Any) -> tuple[bool, int]:
    """Whether a mapping with a ``$ref`` member is anywhere in ``data``, and its nesting depth."""
    holds_ref, deepest = False, 0
    pending: list[tuple[Any, int]] = [(data, 1)]
    while pending:
        node, depth = pending.pop()
        deepest = max(deepest, depth)
        if isinstance(node, dict):
            holds_ref = holds_ref or "$ref" in node
            children: Iterable[Any] = node.values()
        else:
            children = node
        pending.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return holds_ref, deepest


def misplaced_refs(data: Any, version: str) -> list[Problem]:
    """Every Reference Object of an unresolved document where AsyncAPI ``version`` takes none.

    A place takes a Reference Object when the official schema accepts ``{"$ref": ...}`` there;
    elsewhere (a message example, a tag, ...) the schema refuses the ``$ref`` member as an
    unknown property.  As in the official parser, whose ``asyncapi-document-unresolved`` rule
    this is, those refusals are collected from every branch of a failed ``oneOf``/``anyOf``,
    and nothing else of the unresolved document is reported: the resolved one is validated
    with :func:`validate_asyncapi`.
    """
    _check_version(version)
    if not isinstance(data, (dict, list)):
        return []
    holds_ref, depth = _ref_and_depth(data)
    if not holds_ref or depth > _MAX_DEPTH:  # too deep: the resolved document says so
        return []
    fast = _fast_document_validator(version)
    if fast is not None and _fast_valid(fast, data):
        return []
    token = _memo.set(_Memo(classes=_structure_classes(data)[0]))
    try:
        errors = list(_document_validator(version, resolved=False).iter_errors(data))
    except RecursionError:  # reported when the resolved document is validated
        return []
    finally:
        _memo.reset(token)
    found: dict[str, Problem] = {}
    pending = errors[::-1]
    while pending:
        error = pending.pop()
        pending.extend(error.context[::-1])
        if error.validator == "additionalProperties" and "$ref" in extra_keys(error):
            pointer = "".join(f"/{escape_token(p)}" for p in error.absolute_path)
            found.setdefault(
                pointer,
                Problem(
                    pointer=pointer,
                    rule=_REF_PLACEMENT_RULE,
                    message=f"a Reference Object ($ref) is not allowed here in AsyncAPI {version}; "
                    "write the value out in place",
                ),
            )
    return list(found.values())


def validate_binding(binding: Any, *, protocol: str, kind: str, pointer: str) -> list[Problem]:
    """Violations of the official binding schema by one protocol's binding object.

    ``kind`` is ``server``, ``channel``, ``operation`` or ``message``.  The schema is the one of
    the binding's ``bindingVersion``; a protocol without an official schema of that kind gives no
    problems.  A binding that declares no version, or one without an official schema, is checked
    against the newest official version (the binding schemas assume the latest when the version
    is omitted); its problems are then warnings, as the version it was written for is not known,
    and an unknown version is itself a warning naming both versions.
    """
    if kind not in BINDING_KINDS:
        raise ValueError(f"unknown binding kind {kind!r}; expected one of {sorted(BINDING_KINDS)}")
    declared = binding.get("bindingVersion") if isinstance(binding, Mapping) else None
    if declared is not None and not isinstance(declared, str):
        return [
            Problem(
                pointer=f"{pointer}/bindingVersion",
                rule=_BINDING_RULE,
                message=f'{json_excerpt(declared)} is not of type "string"',
            )
        ]
    versions = binding_versions(protocol, kind)
    if not versions:
        return []
    used = declared if declared in versions else versions[-1]
    uri = binding_schema_uri(protocol, kind, used)
    problems = _run(
        _binding_validator(uri),
        binding,
        pointer=pointer,
        rule=_BINDING_RULE,
        what="the binding",
        memoize=True,
    )
    if used == declared:
        return problems
    version_pointer = f"{pointer}/bindingVersion"
    reason = (
        "the binding declares none"
        if declared is None
        else f"{json_excerpt(declared)} has no official schema"
    )
    if problems:
        # A binding written for an older official version says so: declaring it settles this.
        matched = next(
            (
                version
                for version in reversed(versions[:-1])
                if not _run(
                    _binding_validator(binding_schema_uri(protocol, kind, version)),
                    binding,
                    pointer=pointer,
                    rule=_BINDING_RULE,
                    what="the binding",
                    memoize=True,
                )
            ),
            None,
        )
        if matched is not None:
            reason += f'; it matches bindingVersion {matched}: declare bindingVersion: "{matched}"'
    problems = [
        attrs.evolve(
            p,
            severity=Severity.WARNING,
            message=f"{p.message} (checked against bindingVersion {used}, the newest: {reason})",
        )
        for p in problems
        if p.pointer != version_pointer  # the version itself is the warning below
    ]
    if declared is not None:
        problems.insert(
            0,
            Problem(
                pointer=version_pointer,
                rule=_BINDING_RULE,
                severity=Severity.WARNING,
                message=f"the {protocol} {kind} binding has no official schema for "
                f"bindingVersion {json_excerpt(declared)} (official: {', '.join(versions)}); it "
                f"is checked against {used}, the newest, and its problems are warnings",
            ),
        )
    return problems


@functools.cache
def _meta_validator() -> Any:
    registry = document_registry(SUPPORTED_VERSIONS[-1])
    meta = registry.contents("http://json-schema.org/draft-07/schema")
    return _Validator(meta, registry=registry, format_checker=_FORMATS)


# id(schema) -> (schema, its validator or why it cannot be used).  The schema is kept so that
# its id cannot be reused while the entry lives.
_instance_validators: collections.OrderedDict[int, tuple[Any, Any]] = collections.OrderedDict()


class _ContentCache:
    """Canonical JSON of a schema -> its validator, least recently used first out.

    Documents repeat equal inline schemas, and checking each against the meta-schema costs far
    more than spelling it out.  Entries and the keys' total size are bounded.
    """

    def __init__(self, *, entries: int, size: int) -> None:
        self._items: collections.OrderedDict[str, Any] = collections.OrderedDict()
        self._entries = entries
        self._size = size
        self._used = 0

    def get(self, key: str) -> Any:
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def put(self, key: str, value: Any) -> None:
        if len(key) > self._size // 16 or key in self._items:
            return
        self._items[key] = value
        self._used += len(key)
        while len(self._items) > self._entries or self._used > self._size:
            self._used -= len(self._items.popitem(last=False)[0])


_validators_by_content = _ContentCache(entries=_INSTANCE_CACHE_SIZE, size=8 * 1024 * 1024)


def _content_key(schema: Any) -> str | None:
    try:
        return json.dumps(schema, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        return None


def _instance_validator(schema: Any) -> Any:
    entry = _instance_validators.get(id(schema))
    if entry is not None and entry[0] is schema:
        _instance_validators.move_to_end(id(schema))
        return entry[1]
    key = _content_key(schema)
    compiled: Any = _validators_by_content.get(key) if key is not None else None
    if compiled is None:
        compiled = _compile_instance_validator(schema)
        if key is not None:
            _validators_by_content.put(key, compiled)
    _instance_validators[id(schema)] = (schema, compiled)
    if len(_instance_validators) > _INSTANCE_CACHE_SIZE:
        _instance_validators.popitem(last=False)
    return compiled


def _compile_instance_validator(schema: Any) -> Any:
    compiled: Any
    if not isinstance(schema, (dict, bool)):
        compiled = f"the schema {json_excerpt(schema)} is not a JSON Schema"
    elif isinstance(schema, dict) and _too_deep(schema):
        compiled = f"the schema is nested more than {_MAX_DEPTH} levels deep: not used"
    else:
        problems = problems_from_errors(_meta_validator().iter_errors(schema), pointer="", rule="")
        if problems:
            first = problems[0]
            where = f"at {first.pointer}, " if first.pointer else ""
            compiled = f"cannot check against an invalid schema: {where}{first.message}"
        else:
            registry = document_registry(SUPPORTED_VERSIONS[-1])
            compiled = _Validator(schema, registry=registry, format_checker=_FORMATS)
    return compiled


def validate_instance(instance: Any, schema: Any, *, pointer: str, rule: str) -> list[Problem]:
    """Violations of an AsyncAPI Schema Object by a value (a message example, a default).

    Keywords that are not draft-07's (``discriminator``, ``externalDocs``, ``deprecated``) are
    ignored; a ``$ref`` that cannot be resolved inside ``schema`` constrains nothing (it closes a
    cycle, or it was reported when the document was resolved).  A schema that is not valid
    draft-07 gives one problem instead of a verdict.
    """
    compiled = _instance_validator(schema)
    if isinstance(compiled, str):
        return [Problem(pointer=pointer, rule=rule, message=compiled)]
    return _run(compiled, instance, pointer=pointer, rule=rule, what="the value", memoize=False)
