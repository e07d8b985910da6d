"""The vendored official AsyncAPI schemas and the offline registries built from them.

The schemas ship inside the wheel as ``asyncapi_gw/schemas``; an editable install or a plain
checkout finds them in the top-level ``schemas/`` folder.  Nothing here ever touches the network:
no registry has a retrieve hook, so a URI it was not built with fails.
"""

from __future__ import annotations

import functools
import json
import pathlib
from importlib import resources
from typing import Any

import referencing
import referencing.exceptions
from referencing.jsonschema import DRAFT7

from asyncapi_gw.errors import AsyncAPIGwError

__all__ = [
    "BINDING_KINDS",
    "SUPPORTED_VERSIONS",
    "VALIDATION_VERSIONS",
    "binding_schema_uri",
    "binding_versions",
    "bindings_registry",
    "bundled_schema",
    "document_registry",
    "document_schema_uri",
    "schema_root",
]

# The versions documents import from and export to.
SUPPORTED_VERSIONS: tuple[str, ...] = (
    "2.0.0",
    "2.1.0",
    "2.2.0",
    "2.3.0",
    "2.4.0",
    "2.5.0",
    "2.6.0",
)
# The versions whose official schema is bundled: documents of these versions validate.
VALIDATION_VERSIONS: tuple[str, ...] = (*SUPPORTED_VERSIONS, "3.0.0", "3.1.0")
BINDING_KINDS = frozenset({"server", "channel", "operation", "message"})

# The binding schemas reference the Schema Object and friends of this bundle.
_BINDINGS_BASE_VERSION = "3.0.0"
# Binding keys in a document that name a different folder of the bindings tree.
_PROTOCOL_FOLDERS = {"ws": "websockets"}
_MARKER = "2.6.0.json"
# Where a 3.x document must hold a Reference Object, and the object it must reference.  The
# official parser validates a resolved document against a copy of the schema that accepts, in
# these places, the referenced object its resolver put there (its ``prepareV3ResolvedSchema``).
_V3_REFERENCE_ONLY = (
    ("channel.json", ("properties", "servers", "items"), "server.json"),
    ("operation.json", ("properties", "channel"), "channel.json"),
    ("operation.json", ("properties", "messages", "items"), "messageObject.json"),
    ("operationReply.json", ("properties", "channel"), "channel.json"),
    ("operationReply.json", ("properties", "messages", "items"), "messageObject.json"),
)


def schema_root() -> pathlib.Path:
    """The folder holding the vendored schemas: the wheel's copy, else the checkout's."""
    packaged = resources.files("asyncapi_gw").joinpath("schemas")
    if isinstance(packaged, pathlib.Path) and (packaged / _MARKER).is_file():
        return packaged
    checkout = pathlib.Path(__file__).resolve().parents[2] / "schemas"
    if (checkout / _MARKER).is_file():
        return checkout
    raise AsyncAPIGwError(
        "the bundled AsyncAPI schemas are missing: neither the installed package nor the "
        "source checkout holds them; reinstall asyncapi-gw"
    )


@functools.cache
def _load(relative: str) -> Any:
    with (schema_root() / relative).open("rb") as file:
        return json.load(file)


def _inline(schemas: dict[str, Any]) -> referencing.Registry[Any]:
    """An offline registry of ``schemas`` (``$id`` -> a private copy) with every ``$ref`` inlined.

    Each ``{"$ref": "<uri>"}`` of the copies becomes ``{"$ref": <the target schema>}`` (shared,
    cycles kept as cycles), so validation never looks a URI up again.  Draft-07 ignores the
    siblings of ``$ref``; they are left alone.  The ``$id`` of the copies go too: they only
    scoped the URIs now replaced, and each costs a URI join whenever validation enters it.
    """
    copies: dict[str, Any] = json.loads(json.dumps(schemas))
    # A registry without a retrieve hook fails on every URI it does not hold: nothing is fetched.
    registry: referencing.Registry[Any] = referencing.Registry()
    registry = registry.with_resources(
        (uri, DRAFT7.create_resource(contents)) for uri, contents in copies.items()
    ).crawl()
    seen: set[int] = set()
    pending = [(contents, registry.resolver(uri)) for uri, contents in copies.items()]
    while pending:
        node, resolver = pending.pop()
        if id(node) in seen or not isinstance(node, dict):
            continue
        seen.add(id(node))
        resource = DRAFT7.create_resource(node)
        resolver = resolver.in_subresource(resource)
        ref = node.get("$ref")
        if isinstance(ref, str):
            try:
                target = resolver.lookup(ref)
            except referencing.exceptions.Unresolvable:
                # A few binding schemas name definitions of a version not vendored: such a
                # reference constrains nothing, as an unknown URI in a user's schema.
                continue
            node["$ref"] = target.contents
            pending.append((target.contents, target.resolver))
            continue
        pending.extend((sub.contents, resolver) for sub in resource.subresources())
    for contents in copies.values():
        contents.pop("$id", None)
    return registry


@functools.cache
def _document_bundle(version: str, resolved: bool) -> Any:
    bundle = _load(f"{version}.json")
    if not resolved or not version.startswith("3."):
        return bundle
    bundle = json.loads(json.dumps(bundle))  # a private copy: the shipped one stays as it is
    base = f"http://asyncapi.com/definitions/{version}/"
    for owner, path, target in _V3_REFERENCE_ONLY:
        node = bundle["definitions"][base + owner]
        for key in path:
            node = node[key]
        node["$ref"] = base + target
    return bundle


def _bundle_schemas(version: str, resolved: bool) -> dict[str, Any]:
    bundle = _document_bundle(version, resolved)
    return {bundle["$id"]: bundle, **bundle.get("definitions", {})}


def bundled_schema(version: str, *, resolved: bool = True) -> Any:
    """The bundled single-file schema of an AsyncAPI ``version``.

    ``resolved`` gives the form a document with its ``$ref`` resolved is checked against: for
    3.x, the places where a Reference Object is required (an operation's ``channel`` and
    ``messages``, a reply's ``channel`` and ``messages``, a channel's ``servers``) accept the
    object referenced there instead, as in the official parser.  Otherwise, the schema as shipped.
    """
    return _document_bundle(version, resolved)


def document_schema_uri(version: str) -> str:
    """The ``$id`` of the bundled schema of an AsyncAPI ``version``."""
    return f"http://asyncapi.com/definitions/{version}/asyncapi.json"


@functools.cache
def document_registry(version: str, *, resolved: bool = True) -> referencing.Registry[Any]:
    """An offline registry of the bundled schema of ``version`` and its definitions, inlined
    (``resolved`` as for :func:`bundled_schema`).

    The bundle's own draft-07 meta-schema is registered too, so that it (and not a newer copy)
    decides, as in the official parser.
    """
    return _inline(_bundle_schemas(version, resolved))


def _protocol_folder(protocol: str) -> str:
    return _PROTOCOL_FOLDERS.get(protocol, protocol)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else -1 for part in version.split("."))


def _binding_paths() -> list[pathlib.Path]:
    return sorted((schema_root() / "bindings").glob("*/*/*.json"))


@functools.cache
def _binding_files() -> dict[tuple[str, str, str], str]:
    """(protocol folder, binding version, kind) -> the file's ``$id``."""
    files: dict[tuple[str, str, str], str] = {}
    for path in _binding_paths():
        if path.stem in BINDING_KINDS:
            contents = _load(path.relative_to(schema_root()).as_posix())
            files[path.parent.parent.name, path.parent.name, path.stem] = contents["$id"]
    return files


def binding_versions(protocol: str, kind: str) -> tuple[str, ...]:
    """The versions of a protocol's ``kind`` binding that have an official schema, oldest first."""
    folder = _protocol_folder(protocol)
    found = [v for (p, v, k) in _binding_files() if p == folder and k == kind]
    return tuple(sorted(found, key=_version_key))


def binding_schema_uri(protocol: str, kind: str, binding_version: str) -> str | None:
    """The ``$id`` of the official schema of a binding version, or ``None`` when there is none."""
    return _binding_files().get((_protocol_folder(protocol), binding_version, kind))


@functools.cache
def bindings_registry() -> referencing.Registry[Any]:
    """An offline registry of every binding schema and the definitions they use, inlined."""
    schemas = _bundle_schemas(_BINDINGS_BASE_VERSION, resolved=False)
    for path in _binding_paths():
        contents = _load(path.relative_to(schema_root()).as_posix())
        schemas[contents["$id"]] = contents
    return _inline(schemas)
