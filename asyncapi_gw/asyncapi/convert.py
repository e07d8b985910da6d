"""Document-level conversion between AsyncAPI 2.x and 3.x: plain data in, plain data out.

No model is involved: every field of the source is either written where the target version
keeps it, carried in a documented extension that the reverse conversion restores, or refused
with a :class:`~asyncapi_gw.errors.ConversionError` naming the field, where it is and the
version that would hold it (``lossy=True`` drops such fields instead, one warning each).

Naming follows the official ``@asyncapi/converter`` so that outputs look familiar: a channel's
id is its ``x-channelId`` or its 2.x key (the address), an operation's id its ``operationId`` or
``<channelId>.<publish|subscribe>``, a message's key its ``messageId`` or
``<operation>.message[.<index>]``.

Point of view: 3.x operations are written from the application's side, so 2.x ``publish``
(clients send to the API) becomes ``receive`` and ``subscribe`` becomes ``send``
(``point_of_view="application"``, the official converter's default); ``"client"`` writes the
opposite (WSO2 API Manager 4.7's reading).

The extensions (``FIELD`` is the name of the field carried):

``x-asyncapi-gw-v2-FIELD``
    in a 3.x document, a 2.x field that 3.x lacks: ``messageId`` (components messages and
    traits), ``schemaFormat`` (message traits), ``operationId`` (operation traits),
    ``deprecated`` (channels), ``schema`` (a parameter's schema beyond ``enum``, ``default`` and
    ``examples``; ``null`` when the parameter had none), ``url`` (a server url that
    ``host``/``pathname``/``protocol`` do not spell back) and, in a binding, the
    ``bindingVersion`` it declared and the fields its newer version dropped.
``x-asyncapi-gw-v3-FIELD``
    in a 2.x document, a 3.x field that 2.x lacks: ``title``, ``summary``, ``tags`` and
    ``externalDocs`` where 2.x has none, ``address`` (``null``: a channel without one),
    ``tags`` and ``externalDocs`` of ``components``.
``x-asyncapi-gw-v2-ref`` / ``x-asyncapi-gw-v3-ref``
    an object that a ``$ref`` of the source led to, converted and written in place because the
    target version would read the referenced object differently; the reverse conversion puts
    the ``$ref`` back when the object is unchanged.

``$ref`` are kept wherever the target allows them: references into ``components`` (converted in
place), references to objects that read the same in both versions (schemas, correlation ids,
server variables, tags, external docs, and any object the conversion leaves unchanged, in this
file or another). Relative references stay relative to the source document's folder.
"""

from __future__ import annotations

import copy
import functools
import json
import posixpath
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar, cast
from urllib.parse import urldefrag, urljoin, urlsplit

import attrs

from asyncapi_gw import schema
from asyncapi_gw.errors import ConversionError, Problem, Severity, json_excerpt
from asyncapi_gw.pointers import escape_token, pointer_to, unescape_token
from asyncapi_gw.schema.bundle import binding_schema_uri, binding_versions, bindings_registry

__all__ = [
    "POINTS_OF_VIEW",
    "V2_VERSIONS",
    "V3_VERSIONS",
    "Conversion",
    "Lookup",
    "convert_document",
]

V2_VERSIONS: tuple[str, ...] = ("2.0.0", "2.1.0", "2.2.0", "2.3.0", "2.4.0", "2.5.0", "2.6.0")
V3_VERSIONS: tuple[str, ...] = ("3.0.0", "3.1.0")
POINTS_OF_VIEW: tuple[str, ...] = ("application", "client")

RULE = "asyncapi-conversion"
V2 = "x-asyncapi-gw-v2-"
V3 = "x-asyncapi-gw-v3-"

# (protocol, binding kind) -> the bindingVersions the 3.x schemas accept, newest first; a protocol
# the schemas name without constraint (ws operations, amqp1, ...) is absent: anything goes.
_BINDINGS_3_0: dict[tuple[str, str], tuple[str, ...]] = {
    **{("mqtt", k): ("0.2.0",) for k in ("server", "operation", "message")},
    **{
        ("kafka", k): ("0.5.0", "0.4.0", "0.3.0")
        for k in ("server", "channel", "operation", "message")
    },
    **{("jms", k): ("0.0.1",) for k in ("server", "channel", "message")},
    **{("ibmmq", k): ("0.1.0",) for k in ("server", "channel", "message")},
    **{("solace", k): ("0.4.0", "0.3.0", "0.2.0") for k in ("server", "operation")},
    **{("pulsar", k): ("0.1.0",) for k in ("server", "channel")},
    ("ws", "channel"): ("0.1.0",),
    **{("amqp", k): ("0.3.0",) for k in ("channel", "operation", "message")},
    **{("anypointmq", k): ("0.0.1",) for k in ("channel", "message")},
    **{("sns", k): ("0.1.0",) for k in ("channel", "operation")},
    **{("sqs", k): ("0.2.0",) for k in ("channel", "operation")},
    **{("googlepubsub", k): ("0.2.0",) for k in ("channel", "message")},
    **{("http", k): ("0.3.0", "0.2.0") for k in ("operation", "message")},
    ("nats", "operation"): ("0.1.0",),
}
_BINDINGS_3_1 = {
    **_BINDINGS_3_0,
    ("ros2", "server"): ("0.1.0",),
    ("ros2", "operation"): ("0.1.0",),
}
BINDING_VERSIONS: dict[str, dict[tuple[str, str], tuple[str, ...]]] = {
    "3.0.0": _BINDINGS_3_0,
    "3.1.0": _BINDINGS_3_1,
}

# Where a document's objects are, by kind: the pointer patterns ("*" any key) of each kind the
# conversion rewrites; any other place holds an object that reads the same in both versions.
_KINDS_2: dict[tuple[str, ...], str] = {
    ("servers", "*"): "server",
    ("channels", "*"): "channel",
    ("channels", "*", "parameters", "*"): "parameter",
    ("channels", "*", "publish", "message"): "message",
    ("channels", "*", "subscribe", "message"): "message",
    ("channels", "*", "publish", "message", "oneOf", "*"): "message",
    ("channels", "*", "subscribe", "message", "oneOf", "*"): "message",
    ("components", "servers", "*"): "server",
    ("components", "channels", "*"): "channel",
    ("components", "messages", "*"): "message",
    ("components", "parameters", "*"): "parameter",
    ("components", "securitySchemes", "*"): "securityScheme",
    ("components", "messageTraits", "*"): "messageTrait",
    ("components", "operationTraits", "*"): "operationTrait",
    **{
        ("components", f"{k}Bindings", "*"): f"{k}Bindings"
        for k in ("server", "channel", "operation", "message")
    },
}
_KINDS_3 = {
    **{key: kind for key, kind in _KINDS_2.items() if key[0] == "components"},
    ("servers", "*"): "server",
    ("channels", "*"): "channel",
    ("channels", "*", "parameters", "*"): "parameter",
    ("channels", "*", "messages", "*"): "message",
    ("operations", "*"): "operation",
    ("components", "operations", "*"): "operation",
}
_NEUTRAL = frozenset({"schema", "correlationId", "serverVariable", "tag", "externalDocs"})
_FLOWS = ("implicit", "password", "clientCredentials", "authorizationCode")
_SCOPED = frozenset({"oauth2", "openIdConnect"})

Lookup = Callable[[str, str], tuple[str, Any]]
"""``lookup(base_uri, ref)``: the URI of the document a ``$ref`` written at ``base_uri`` leads
to, and the node it names; raises :class:`ConversionError` when it cannot be followed."""


@attrs.frozen(kw_only=True)
class Conversion:
    """A converted document and the warnings met (fields dropped with ``lossy``)."""

    data: dict[str, Any]
    warnings: tuple[Problem, ...] = ()


def _major(version: object) -> int | None:
    if version in V2_VERSIONS:
        return 2
    if version in V3_VERSIONS:
        return 3
    return None


def _is_ref(node: object) -> bool:
    return isinstance(node, dict) and isinstance(node.get("$ref"), str)


def _items(node: object) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        yield from node.items()


def _order(obj: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """``obj`` with ``keys`` first, in that order, then its other members in theirs."""
    out = {key: obj[key] for key in keys if key in obj}
    out.update((key, value) for key, value in obj.items() if key not in out)
    return out


def _kind_at(tokens: list[str], kinds: Mapping[tuple[str, ...], str]) -> str | None:
    for pattern, kind in kinds.items():
        if len(pattern) == len(tokens) and all(
            p in ("*", t) for p, t in zip(pattern, tokens, strict=True)
        ):
            return kind
    return None


def _relative(target: str, root: str) -> str:
    """``target`` (absolute) written relative to the document at ``root`` when both are files."""
    t, r = urlsplit(target), urlsplit(root)
    if t.scheme != r.scheme or t.netloc != r.netloc or t.scheme not in ("file", ""):
        return target
    path, fragment = urldefrag(target)
    rel = posixpath.relpath(urlsplit(path).path, posixpath.dirname(r.path))
    if path == urldefrag(root)[0]:
        rel = ""
    return rel + (f"#{fragment}" if fragment else "")


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _object_of(kind: str) -> Callable[[_Method], _Method]:
    """A converter method of one ``kind`` of object, ``(node, pointer, base, **options)``: a
    ``$ref`` is followed (:meth:`_Converter.referenced`), an object carrying the reference it was
    converted from is restored (:meth:`_Converter.restored`), a value that is not an object is
    left as it is; the method itself converts an object."""

    def decorate(method: _Method) -> _Method:
        @functools.wraps(method)
        def convert(self: _Converter, node: Any, pointer: str, base: str, **options: Any) -> Any:
            again = getattr(self, method.__name__)
            if _is_ref(node):
                return self.referenced(node, kind, pointer, base, again)
            if isinstance(node, dict) and f"{self.restore}ref" in node:
                return self.restored(node, pointer, base, again)
            if not isinstance(node, dict):
                return node
            return method(self, node, pointer, base, **options)

        return cast(_Method, convert)

    return decorate


class _Converter:
    """State shared by both directions: problems, warnings, references, source positions."""

    def __init__(
        self,
        source: dict[str, Any],
        *,
        target: str,
        lossy: bool,
        point_of_view: str,
        lookup: Lookup | None,
        base_uri: str | None,
    ) -> None:
        self.source = source
        self.target = target
        self.lossy = lossy
        self.application = point_of_view == "application"
        self.lookup = lookup
        self.root_uri = base_uri or ""
        self.errors: list[Problem] = []
        self.warnings: list[Problem] = []
        self.moves: dict[str, str] = {}  # local pointer prefix in the source -> in the target
        self.kinds: Mapping[tuple[str, ...], str] = {}
        self.carry = V2
        self.restore = V3

    # -- problems ------------------------------------------------------------------------------
    def refuse(self, pointer: str, what: str, holder: str) -> None:
        """``what`` at ``pointer`` has no place in the target: an error, or a warning if lossy."""
        if self.lossy:
            self.warnings.append(
                Problem(
                    pointer=pointer,
                    rule=RULE,
                    severity=Severity.WARNING,
                    message=f"dropped {what}: AsyncAPI {self.target} cannot express it "
                    f"({holder} can)",
                )
            )
        else:
            self.errors.append(
                Problem(
                    pointer=pointer,
                    rule=RULE,
                    message=f"{what} cannot be written in AsyncAPI {self.target} ({holder} can); "
                    "convert with lossy=True (CLI: --lossy) to drop it",
                )
            )

    # -- references ----------------------------------------------------------------------------
    def follow(self, base: str, ref: str, pointer: str) -> tuple[str, Any] | None:
        """(URI with fragment, node) a reference leads to, or None (an error is recorded)."""
        target = urljoin(base, ref) if base else ref
        doc, fragment = urldefrag(target)
        if not doc or doc == urldefrag(self.root_uri)[0]:
            node = schema.node_at(self.source, fragment)
            if node is not schema.NOWHERE:
                return target, node
        elif self.lookup is not None:
            try:
                return self.lookup(base, ref)
            except ConversionError as error:
                self.errors.extend(
                    attrs.evolve(p, pointer=pointer)
                    for p in error.problems
                    or [Problem(pointer=pointer, rule=RULE, message=error.message)]
                )
                return None
        self.errors.append(
            Problem(
                pointer=pointer,
                rule=RULE,
                message=f"$ref {ref!r} cannot be followed: it does not lead to a node"
                + ("" if self.lookup is not None or not doc else " (the document has no location)"),
            )
        )
        return None

    def rebase(self, node: Any, base: str) -> Any:
        """``node`` (written in the document at ``base``) with its relative ``$ref`` values
        written relative to the root document instead (a copy when any is rewritten)."""
        if base == self.root_uri or not base:
            return node
        if isinstance(node, list):
            return [self.rebase(item, base) for item in node]
        if not isinstance(node, dict):
            return node
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                out[key] = _relative(urljoin(base, value), self.root_uri)
            else:
                out[key] = self.rebase(value, base)
        return out

    def referenced(
        self,
        node: dict[str, Any],
        kind: str,
        pointer: str,
        base: str,
        convert: Callable[[Any, str, str], Any],
    ) -> Any:
        """A ``$ref`` of ``kind`` in the source: kept when the target allows it, else replaced
        by the converted object it leads to, with the reference carried."""
        ref = node["$ref"]
        if ref.startswith("#") and base == self.root_uri:
            tokens = [unescape_token(t) for t in ref[1:].split("/")[1:]]
            if kind in _NEUTRAL or _kind_at(tokens, self.kinds) == kind:
                return dict(node)  # converted where it lives; moved paths fixed at the end
        found = self.follow(base, ref, pointer)
        if found is None:
            return dict(node)
        uri, target = found
        converted = convert(target, pointer, urldefrag(uri)[0] or base)
        written = _relative(uri, self.root_uri) if base != self.root_uri else ref
        if kind in _NEUTRAL or converted == self.rebase(target, urldefrag(uri)[0] or base):
            return {"$ref": written}
        if isinstance(converted, dict):
            converted[f"{self.carry}ref"] = written
        return converted

    def restored(self, node: Any, pointer: str, base: str, convert: Callable[..., Any]) -> Any:
        """An object carrying the ``$ref`` it was converted from: the ``$ref`` again when the
        object is unchanged, else the object (a warning says the reference was not restored)."""
        key = f"{self.restore}ref"
        ref = node.get(key)
        rest = {k: v for k, v in node.items() if k != key}
        converted = convert(rest, pointer, base)
        if not isinstance(ref, str):
            return converted
        found = self.follow(self.root_uri, ref, pointer + "/" + escape_token(key))
        if found is not None and self.rebase(found[1], urldefrag(found[0])[0]) == converted:
            return {"$ref": ref}
        self.warnings.append(
            Problem(
                pointer=pointer,
                rule=RULE,
                severity=Severity.WARNING,
                message=f"the object was changed since it was converted from $ref {ref!r}: it is "
                "written in place",
            )
        )
        return converted

    def fix_refs(self, node: Any) -> None:
        """Rewrite local references whose target moved (the longest moved prefix wins)."""
        if not self.moves:
            return
        pending = [node]
        while pending:
            current = pending.pop()
            if isinstance(current, list):
                pending.extend(current)
                continue
            if not isinstance(current, dict) or isinstance(current, _Written):
                continue
            ref = current.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/"):
                current["$ref"] = self.moved(ref)
            pending.extend(v for k, v in current.items() if k != "$ref")

    def moved(self, ref: str) -> str:
        """``ref`` with its longest prefix that moved replaced by where it went."""
        end = len(ref)
        while end > 1:
            target = self.moves.get(ref[:end])
            if target is not None:
                return target + ref[end:]
            end = ref.rfind("/", 0, end)
        return ref

    # -- bindings ------------------------------------------------------------------------------
    def bindings(self, node: Any, kind: str, pointer: str, base: str) -> Any:
        if not isinstance(node, dict):
            return node
        if _is_ref(node):
            return self.referenced(
                node, f"{kind}Bindings", pointer, base, lambda t, p, b: self.bindings(t, kind, p, b)
            )
        out: dict[str, Any] = {}
        for protocol, binding in node.items():
            here = f"{pointer}/{escape_token(protocol)}"
            if protocol.startswith("x-") or not isinstance(binding, dict):
                out[protocol] = binding
                continue
            if f"{self.restore}ref" in binding:
                converted = self.restored(
                    binding, here, base, functools.partial(self.binding, protocol, kind)
                )
            elif _is_ref(binding):
                converted = self.referenced(
                    binding,
                    f"binding:{protocol}:{kind}",
                    here,
                    base,
                    functools.partial(self.binding, protocol, kind),
                )
            else:
                converted = self.binding(protocol, kind, binding, here, base)
            if converted is not None:
                out[protocol] = converted
        return out

    def binding(self, protocol: str, kind: str, binding: Any, pointer: str, base: str) -> Any:
        raise NotImplementedError

    def run(self) -> dict[str, Any]:
        raise NotImplementedError


def _newest_valid(protocol: str, kind: str, binding: dict[str, Any]) -> str | None:
    """The newest official version of a binding whose schema accepts ``binding``."""
    for version in reversed(binding_versions(protocol, kind)):
        candidate = {**binding, "bindingVersion": version}
        if not schema.validate_binding(candidate, protocol=protocol, kind=kind, pointer=""):
            return version
    return None


def _binding_fields(protocol: str, kind: str, version: str) -> set[str] | None:
    uri = binding_schema_uri(protocol, kind, version)
    if uri is None:
        return None
    found = bindings_registry().contents(uri)
    properties = found.get("properties") if isinstance(found, dict) else None
    return set(properties) if isinstance(properties, dict) else None


# ---------------------------------------------------------------------------------------------
# 2.x -> 3.x


class _Upgrade(_Converter):
    def __init__(self, source: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(source, **kwargs)
        self.kinds = _KINDS_2
        self.carry, self.restore = V2, V3

    def run(self) -> dict[str, Any]:
        src = self.source
        out: dict[str, Any] = {}
        for key, value in src.items():
            if key in ("asyncapi", "tags", "externalDocs", "channels", "servers", "components"):
                continue
            out[key] = value
        out["asyncapi"] = self.target
        info = dict(out.get("info") or {})
        for key in ("tags", "externalDocs"):
            if key in src:
                info[key] = copy.deepcopy(src[key])
                self.moves[f"#/{key}"] = f"#/info/{key}"
        out["info"] = _order(
            info,
            (
                "title",
                "version",
                "description",
                "termsOfService",
                "contact",
                "license",
                "tags",
                "externalDocs",
            ),
        )
        if isinstance(src.get("servers"), dict):
            out["servers"] = {
                name: self.server(server, pointer_to("servers", name), self.root_uri)
                for name, server in src["servers"].items()
            }
        operations: dict[str, Any] = {}
        if isinstance(src.get("channels"), dict):
            out["channels"] = self.channels(src["channels"], ("channels",), operations)
        if operations:
            out["operations"] = operations
        if isinstance(src.get("components"), dict):
            out["components"] = self.components(src["components"])
        self.fix_refs(out)
        return _order(
            out,
            (
                "asyncapi",
                "id",
                "info",
                "defaultContentType",
                "servers",
                "channels",
                "operations",
                "components",
            ),
        )

    # -- servers -------------------------------------------------------------------------------
    @_object_of("server")
    def server(self, server: Any, pointer: str, base: str) -> Any:
        out = self.restore_fields(server, pointer)
        url = out.pop("url", None)
        if isinstance(url, str):
            host, pathname = _split_url(url)
            out["host"] = host
            if pathname is not None:
                out["pathname"] = pathname
            if _url_of(host, out.get("pathname"), out.get("protocol")) != url:
                out[f"{V2}url"] = url
        if "security" in out:
            out["security"] = self.security(out["security"], f"{pointer}/security", base)
        if "bindings" in out:
            out["bindings"] = self.bindings(out["bindings"], "server", f"{pointer}/bindings", base)
        return _order(
            out,
            (
                "host",
                "pathname",
                "protocol",
                "protocolVersion",
                "title",
                "summary",
                "description",
                "variables",
                "security",
                "tags",
                "externalDocs",
                "bindings",
            ),
        )

    def restore_fields(self, obj: dict[str, Any], pointer: str) -> dict[str, Any]:
        """A copy of ``obj`` with the 3.x fields a downgrade carried put back."""
        out: dict[str, Any] = {}
        for key, value in obj.items():
            if key.startswith(V3) and key != f"{V3}ref":
                out[key[len(V3) :]] = value
            else:
                out[key] = value
        return out

    # -- security ------------------------------------------------------------------------------
    @_object_of("securityScheme")
    def scheme(self, node: Any, pointer: str, base: str) -> Any:
        out = copy.deepcopy(node)
        flows = out.get("flows")
        if isinstance(flows, dict):
            for name in _FLOWS:
                flow = flows.get(name)
                if isinstance(flow, dict) and "scopes" in flow:
                    flows[name] = {
                        ("availableScopes" if k == "scopes" else k): v for k, v in flow.items()
                    }
        return out

    def security(self, requirements: Any, pointer: str, base: str) -> Any:
        if not isinstance(requirements, list):
            return requirements
        schemes = (self.source.get("components") or {}).get("securitySchemes") or {}
        out: list[Any] = []
        for index, requirement in enumerate(requirements):
            here = f"{pointer}/{index}"
            if not isinstance(requirement, dict):
                continue
            if len(requirement) != 1:
                self.refuse(
                    here,
                    "a security requirement naming several schemes (all required)"
                    if requirement
                    else "an empty security requirement (security optional)",
                    "AsyncAPI 2.x",
                )
                if not requirement:
                    continue
            name, scopes = next(iter(requirement.items()))
            ref = _target_ref("components", "securitySchemes", name)
            if not scopes:
                out.append(ref)
                continue
            found = schemes.get(name)
            if isinstance(found, dict) and isinstance(found.get("$ref"), str):
                hit = self.follow(self.root_uri, found["$ref"], here)
                found = hit[1] if hit else None
            if not isinstance(found, dict) or found.get("type") not in _SCOPED:
                self.refuse(
                    f"{here}/{escape_token(name)}",
                    f"scopes of the {json_excerpt(name)} scheme, which is not "
                    "oauth2 or openIdConnect",
                    "AsyncAPI 2.x",
                )
                out.append(ref)
                continue
            out.append({**self.scheme(found, here, base), "scopes": list(scopes)})
        return out

    # -- channels and operations ---------------------------------------------------------------
    def channels(
        self, channels: dict[str, Any], where: tuple[str, ...], operations: dict[str, Any]
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        in_components = where[0] == "components"
        for address, channel in channels.items():
            old = pointer_to(*where, address)
            ident = _channel_id(channel, address)
            new = pointer_to(*where, ident)
            self.moves["#" + old] = "#" + new
            body = channel
            if _is_ref(channel):
                ref = channel["$ref"]
                prefix = "#/components/channels/"
                if ref.startswith(prefix) and not in_components:
                    out[ident] = dict(channel)
                    target = schema.node_at(self.source, ref[1:])
                    if isinstance(target, dict):
                        self.channel_operations(
                            target,
                            _channel_id(target, unescape_token(ref[len(prefix) :])),
                            ("components", "channels"),
                            operations,
                            old=ref[1:],
                            ref_only=True,
                        )
                    continue
                found = self.follow(self.root_uri, ref, old)
                if found is None:
                    out[ident] = dict(channel)
                    continue
                body = self.rebase(found[1], urldefrag(found[0])[0])
            if not isinstance(body, dict):
                out[ident] = body
                continue
            out[ident] = self.channel(
                body, address=address, ident=ident, old=old, where=where, operations=operations
            )
        return out

    def channel(
        self,
        channel: dict[str, Any],
        *,
        address: str,
        ident: str,
        old: str,
        where: tuple[str, ...],
        operations: dict[str, Any],
    ) -> dict[str, Any]:
        base = self.root_uri
        out = self.restore_fields(channel, old)
        out.pop("publish", None)
        out.pop("subscribe", None)
        if "address" not in out:
            out["address"] = address
        if "deprecated" in out:
            out[f"{V2}deprecated"] = out.pop("deprecated")
        if isinstance(out.get("servers"), list):
            out["servers"] = [
                _target_ref("servers", name) if isinstance(name, str) else name
                for name in out["servers"]
            ]
        if isinstance(out.get("parameters"), dict):
            out["parameters"] = {
                name: self.parameter(p, f"{old}/parameters/{escape_token(name)}", base)
                for name, p in out["parameters"].items()
            }
        if "bindings" in out:
            out["bindings"] = self.bindings(out["bindings"], "channel", f"{old}/bindings", base)
        messages = self.channel_operations(channel, ident, where, operations, old=old)
        if messages:
            out["messages"] = messages
        return _order(
            out,
            (
                "address",
                "messages",
                "title",
                "summary",
                "description",
                "servers",
                "parameters",
                "tags",
                "externalDocs",
                "bindings",
            ),
        )

    def channel_operations(
        self,
        channel: dict[str, Any],
        ident: str,
        where: tuple[str, ...],
        operations: dict[str, Any],
        *,
        old: str,
        ref_only: bool = False,
    ) -> dict[str, Any]:
        messages: dict[str, Any] = {}
        written: list[dict[str, Any]] = []
        in_components = where[0] == "components"
        for kind in ("publish", "subscribe"):
            operation = channel.get(kind)
            if not isinstance(operation, dict):
                continue
            op_pointer = f"{old}/{kind}"
            op_id = operation.get("operationId")
            if not isinstance(op_id, str):
                op_id = f"{ident}.{kind}"
            if ref_only:
                operations[op_id] = _target_ref("components", "operations", op_id)
                continue
            home = ("components", "operations") if in_components else ("operations",)
            self.moves["#" + op_pointer] = "#" + pointer_to(*home, op_id)
            receive = (kind == "publish") == self.application
            out: dict[str, Any] = {
                "action": "receive" if receive else "send",
                "channel": _target_ref(*where, ident),
            }
            for key, value in operation.items():
                if key in ("operationId", "message"):
                    continue
                out[key] = value
            out = self.restore_fields(out, op_pointer)
            if "security" in out:
                out["security"] = self.security(
                    out["security"], f"{op_pointer}/security", self.root_uri
                )
            if "bindings" in out:
                out["bindings"] = self.bindings(
                    out["bindings"], "operation", f"{op_pointer}/bindings", self.root_uri
                )
            if isinstance(out.get("traits"), list):
                out["traits"] = [
                    self.operation_trait(t, f"{op_pointer}/traits/{i}", self.root_uri)
                    for i, t in enumerate(out["traits"])
                ]
            message = operation.get("message")
            if message is not None:
                refs = self.operation_messages(
                    message, op_id, f"{op_pointer}/message", (*where, ident), messages
                )
                out["messages"] = refs
            operations[op_id] = _order(
                out,
                (
                    "action",
                    "channel",
                    "title",
                    "summary",
                    "description",
                    "security",
                    "tags",
                    "externalDocs",
                    "bindings",
                    "traits",
                    "messages",
                    "reply",
                ),
            )
            written.append(operations[op_id])
        for operation in written:
            # 3.x reads an operation without messages as one of any of its channel's messages
            if messages and "messages" not in operation:
                operation["messages"] = []
        return messages

    def operation_messages(
        self,
        message: Any,
        op_id: str,
        pointer: str,
        channel: tuple[str, ...],
        messages: dict[str, Any],
    ) -> list[Any]:
        entries = message.get("oneOf") if isinstance(message, dict) else None
        items = list(enumerate(entries)) if isinstance(entries, list) else [(None, message)]
        kind = op_id.rsplit(".", 1)[-1]
        refs = []
        for index, item in items:
            here = pointer if index is None else f"{pointer}/oneOf/{index}"
            key = self.message_id(item, here)
            derived = f"{kind}.message" if index is None else f"{kind}.message.{index}"
            # A messageId equal to the derived key is carried: converting back omits that key.
            converted = self.message(
                item, here, self.root_uri, channel_key=None if key == derived else key
            )
            key = key or derived
            while key in messages and messages[key] != converted:
                key += "_"
            messages[key] = converted
            self.moves["#" + here] = "#" + pointer_to(*channel, "messages", key)
            refs.append(_target_ref(*channel, "messages", key))
        return refs

    def message_id(self, message: Any, pointer: str) -> str | None:
        node = message
        if _is_ref(message):
            found = self.follow(self.root_uri, message["$ref"], pointer)
            node = found[1] if found else None
        if isinstance(node, dict):
            for key in ("messageId", f"{V2}messageId"):
                if isinstance(node.get(key), str):
                    return str(node[key])
        return None

    # -- messages, traits, parameters ----------------------------------------------------------
    @_object_of("message")
    def message(
        self, message: Any, pointer: str, base: str, *, channel_key: str | None = None
    ) -> Any:
        out = self.restore_fields(message, pointer)
        message_id = out.pop("messageId", None)
        if message_id is not None and message_id != channel_key:
            out[f"{V2}messageId"] = message_id
        if "schemaFormat" in out:
            if "payload" in out:
                out["payload"] = {"schemaFormat": out.pop("schemaFormat"), "schema": out["payload"]}
            else:
                out[f"{V2}schemaFormat"] = out.pop("schemaFormat")
        if isinstance(out.get("traits"), list):
            out["traits"] = [
                self.message_trait(t, f"{pointer}/traits/{i}", base)
                for i, t in enumerate(out["traits"])
            ]
        if "bindings" in out:
            out["bindings"] = self.bindings(out["bindings"], "message", f"{pointer}/bindings", base)
        return self.rebase(out, base)

    @_object_of("messageTrait")
    def message_trait(self, trait: Any, pointer: str, base: str) -> Any:
        out = self.restore_fields(trait, pointer)
        for key in ("messageId", "schemaFormat"):
            if key in out:
                out[f"{V2}{key}"] = out.pop(key)
        if "bindings" in out:
            out["bindings"] = self.bindings(out["bindings"], "message", f"{pointer}/bindings", base)
        return self.rebase(out, base)

    @_object_of("operationTrait")
    def operation_trait(self, trait: Any, pointer: str, base: str) -> Any:
        out = self.restore_fields(trait, pointer)
        if "operationId" in out:
            out[f"{V2}operationId"] = out.pop("operationId")
        if "security" in out:
            out["security"] = self.security(out["security"], f"{pointer}/security", base)
        if "bindings" in out:
            out["bindings"] = self.bindings(
                out["bindings"], "operation", f"{pointer}/bindings", base
            )
        return self.rebase(out, base)

    @_object_of("parameter")
    def parameter(self, parameter: Any, pointer: str, base: str) -> Any:
        out: dict[str, Any] = {}
        if "description" in parameter:
            out["description"] = parameter["description"]
        found = parameter.get("schema")
        values: Any = found
        if isinstance(found, dict) and isinstance(found.get("$ref"), str):
            hit = self.follow(base, found["$ref"], f"{pointer}/schema")
            values = hit[1] if hit else None
        if isinstance(values, dict):
            if "enum" in values:
                out["enum"] = values["enum"]
            elif "const" in values:
                out["enum"] = [values["const"]]
            for key in ("default", "examples"):
                if key in values:
                    out[key] = values[key]
        if "schema" not in parameter:
            out[f"{V2}schema"] = None
        elif _parameter_schema(out) != found:
            out[f"{V2}schema"] = self.rebase(found, base)
        for key, value in parameter.items():
            if key not in ("description", "schema"):
                out[key] = value
        return out

    # -- bindings ------------------------------------------------------------------------------
    def binding(self, protocol: str, kind: str, binding: Any, pointer: str, base: str) -> Any:
        """A binding in a version the target accepts: its own, else the newest the target
        accepts, the fields that version lacks carried (and the version it declared)."""
        allowed = BINDING_VERSIONS[self.target].get((protocol, kind))
        if not isinstance(binding, dict):
            return binding
        out = self.rebase(binding, base)
        if not allowed:
            return out
        declared = out.get("bindingVersion")
        newest = allowed[0]
        if declared in allowed:
            return out
        if declared is None:
            if not schema.validate_binding(out, protocol=protocol, kind=kind, pointer=""):
                return out
            source = _newest_valid(protocol, kind, out)
        else:
            source = (
                declared
                if isinstance(declared, str)
                and _binding_fields(protocol, kind, declared) is not None
                else None
            )
        fields = _binding_fields(protocol, kind, newest) or set()
        what = f"the {protocol} {kind} binding" + (
            f" of bindingVersion {json_excerpt(declared)}" if declared is not None else ""
        )
        if declared is not None and source is None:
            self.refuse(
                f"{pointer}/bindingVersion",
                f"{what} (no official schema)",
                f"AsyncAPI 2.x, or bindingVersion {', '.join(allowed)} in {self.target}",
            )
            return None
        migrated: dict[str, Any] = {}
        if declared is not None:
            migrated["bindingVersion"] = newest
        for key, value in out.items():
            if key == "bindingVersion":
                continue
            migrated[key if key in fields or key.startswith("x-") else f"{V2}{key}"] = value
        if declared is not None:
            migrated[f"{V2}bindingVersion"] = declared
        problems = schema.validate_binding(
            {**migrated, "bindingVersion": newest}, protocol=protocol, kind=kind, pointer=pointer
        )
        if problems:
            self.refuse(
                pointer,
                f"{what} (as bindingVersion {newest}: {problems[0].message})",
                "AsyncAPI 2.x",
            )
            return None
        return migrated

    # -- components ----------------------------------------------------------------------------
    def components(self, components: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        base = self.root_uri
        operations: dict[str, Any] = {}
        for section, value in components.items():
            where = ("components", section)
            if not isinstance(value, dict):
                out[section] = value
                continue
            convert: Callable[[Any, str, str], Any] | None = {  # type: ignore[assignment]
                "servers": self.server,
                "messages": self.message,
                "parameters": self.parameter,
                "securitySchemes": self.scheme,
                "messageTraits": self.message_trait,
                "operationTraits": self.operation_trait,
            }.get(section)
            if section == "channels":
                out[section] = self.channels(value, where, operations)
            elif section.endswith("Bindings") and section[:-8] in (
                "server",
                "channel",
                "operation",
                "message",
            ):
                out[section] = {
                    name: self.bindings(b, section[:-8], pointer_to(*where, name), base)
                    for name, b in value.items()
                }
            elif convert is not None:
                out[section] = {
                    name: convert(item, pointer_to(*where, name), base)
                    for name, item in value.items()
                }
            elif section.startswith(V3):
                out[section[len(V3) :]] = value
            else:
                out[section] = value
        if operations:
            out["operations"] = {**out.get("operations", {}), **operations}
        return out


def _url_of(host: Any, pathname: Any, protocol: Any) -> str | None:
    """The 2.x url written for a 3.x server: ``host`` and ``pathname``, after
    ``<protocol>://`` for the protocols whose URLs name their scheme (http, https, ws, wss)."""
    if not isinstance(host, str):
        return None
    url = host + (pathname if isinstance(pathname, str) else "")
    if protocol in ("http", "https", "ws", "wss"):
        url = f"{protocol}://{url}"
    return url


def _parameter_schema(parameter: Mapping[str, Any]) -> dict[str, Any]:
    """The 2.x schema written for a 3.x parameter that carries none."""
    out: dict[str, Any] = {"type": "string"}
    for key in ("enum", "default", "examples"):
        if key in parameter:
            out[key] = parameter[key]
    return out


# ---------------------------------------------------------------------------------------------
# 3.x -> 2.x


class _Downgrade(_Converter):
    def __init__(self, source: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(source, **kwargs)
        self.kinds = _KINDS_3
        self.carry, self.restore = V3, V2
        self.channel_keys: dict[str, str] = {}

    def run(self) -> dict[str, Any]:
        src = self.source
        out: dict[str, Any] = {}
        for key, value in src.items():
            if key in ("asyncapi", "channels", "operations", "servers", "components", "info"):
                continue
            out[key] = value
        out["asyncapi"] = "2.6.0"
        info = copy.deepcopy(src.get("info") or {})
        for key in ("tags", "externalDocs"):
            if key in info:
                out[key] = self.inline_refs(info.pop(key), f"/info/{key}")
                self.moves[f"#/info/{key}"] = f"#/{key}"
        out["info"] = info
        if isinstance(src.get("servers"), dict):
            out["servers"] = {
                name: self.server(s, pointer_to("servers", name), self.root_uri)
                for name, s in src["servers"].items()
            }
        if isinstance(src.get("channels"), dict):
            out["channels"] = self.channels(src["channels"], src.get("operations") or {})
        if isinstance(src.get("components"), dict):
            out["components"] = self.components(src["components"])
        self.fix_refs(out)
        return _order(
            out,
            (
                "asyncapi",
                "id",
                "info",
                "tags",
                "externalDocs",
                "servers",
                "defaultContentType",
                "channels",
                "components",
            ),
        )

    def inline_refs(self, node: Any, pointer: str) -> Any:
        """Tags and external docs: 3.x may reference them, 2.x writes them out."""
        if isinstance(node, list):
            return [self.inline_refs(item, f"{pointer}/{i}") for i, item in enumerate(node)]
        if _is_ref(node):
            found = self.follow(self.root_uri, node["$ref"], pointer)
            return self.rebase(found[1], urldefrag(found[0])[0]) if found else dict(node)
        return node

    def carry_fields(
        self, obj: dict[str, Any], fields: tuple[str, ...], pointer: str
    ) -> dict[str, Any]:
        """``obj`` with the 3.x-only ``fields`` carried, and 2.x fields carried put back."""
        out: dict[str, Any] = {}
        for key, value in obj.items():
            if key in fields:
                out[f"{V3}{key}"] = self.inline_refs(value, f"{pointer}/{key}")
            elif key.startswith(V2) and key not in (f"{V2}ref", f"{V2}url", f"{V2}schema"):
                out[key[len(V2) :]] = value
            else:
                out[key] = value
        return out

    # -- servers and security ------------------------------------------------------------------
    @_object_of("server")
    def server(self, server: Any, pointer: str, base: str) -> Any:
        out = self.carry_fields(server, ("title", "summary", "externalDocs"), pointer)
        host = out.pop("host", None)
        pathname = out.pop("pathname", None)
        url = _url_of(host, pathname, out.get("protocol"))
        carried = out.pop(f"{V2}url", None)
        if isinstance(carried, str) and _split_url(carried) == (host, pathname):
            url = carried
        out["url"] = url
        if "security" in out:
            out["security"] = self.security(out["security"], f"{pointer}/security")
        if "bindings" in out:
            out["bindings"] = self.bindings(out["bindings"], "server", f"{pointer}/bindings", base)
        if "tags" in out:
            out["tags"] = self.inline_refs(out["tags"], f"{pointer}/tags")
        return _order(
            out,
            (
                "url",
                "protocol",
                "protocolVersion",
                "description",
                "variables",
                "security",
                "tags",
                "bindings",
            ),
        )

    @_object_of("securityScheme")
    def scheme(self, node: Any, pointer: str, base: str) -> Any:
        out = copy.deepcopy(node)
        out.pop("scopes", None)
        flows = out.get("flows")
        if isinstance(flows, dict):
            for name in _FLOWS:
                flow = flows.get(name)
                if isinstance(flow, dict) and "availableScopes" in flow:
                    flows[name] = {
                        ("scopes" if k == "availableScopes" else k): v for k, v in flow.items()
                    }
        return out

    def security(self, schemes: Any, pointer: str) -> Any:
        if not isinstance(schemes, list):
            return schemes
        declared = (self.source.get("components") or {}).get("securitySchemes") or {}
        out: list[Any] = []
        for index, written in enumerate(schemes):
            here = f"{pointer}/{index}"
            item = written
            if _is_ref(written):
                ref = written["$ref"]
                prefix = "#/components/securitySchemes/"
                if ref.startswith(prefix) and "/" not in ref[len(prefix) :]:
                    out.append({unescape_token(ref[len(prefix) :]): []})
                    continue
                found = self.follow(self.root_uri, ref, here)
                item = found[1] if found else {}
            if not isinstance(item, dict):
                continue
            scopes = item.get("scopes", [])
            bare = self.scheme(
                {k: v for k, v in item.items() if k != "scopes"}, here, self.root_uri
            )
            name = next(
                (
                    n
                    for n, s in declared.items()
                    if self.scheme(self.resolved(s), here, self.root_uri) == bare
                ),
                None,
            )
            if name is None:
                name = _unique(str(bare.get("type", "scheme")), declared)
                self.source.setdefault("components", {}).setdefault("securitySchemes", declared)[
                    name
                ] = bare
            out.append({name: list(scopes) if isinstance(scopes, list) else []})
        return out

    def resolved(self, node: Any) -> Any:
        if _is_ref(node):
            found = self.follow(self.root_uri, node["$ref"], "")
            return found[1] if found else None
        return node

    # -- channels and operations ---------------------------------------------------------------
    def channels(self, channels: dict[str, Any], operations: dict[str, Any]) -> dict[str, Any]:
        by_channel: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for op_id, written in operations.items():
            here = pointer_to("operations", op_id)
            operation = written
            if _is_ref(written):
                found = self.follow(self.root_uri, written["$ref"], here)
                operation = found[1] if found else None
            if not isinstance(operation, dict):
                continue
            ref = (
                operation.get("channel", {}).get("$ref")
                if isinstance(operation.get("channel"), dict)
                else None
            )
            prefix = "#/channels/"
            if (
                not isinstance(ref, str)
                or not ref.startswith(prefix)
                or unescape_token(ref[len(prefix) :]) not in channels
            ):
                self.refuse(
                    f"{here}/channel",
                    "an operation on a channel that is not in channels",
                    "AsyncAPI 3.x",
                )
                continue
            by_channel.setdefault(unescape_token(ref[len(prefix) :]), []).append((op_id, operation))
        out: dict[str, Any] = {}
        for ident, channel in channels.items():
            here = pointer_to("channels", ident)
            target = channel
            if _is_ref(channel):
                found = self.follow(self.root_uri, channel["$ref"], here)
                target = found[1] if found else {}
            if not isinstance(target, dict):
                continue
            address = target.get("address")
            key = address if isinstance(address, str) else ident
            if key in out:
                self.refuse(
                    here, f"a second channel with address {json_excerpt(key)}", "AsyncAPI 3.x"
                )
                continue
            self.channel_keys[ident] = key
            self.moves["#" + here] = "#" + pointer_to("channels", key)
            out[key] = self.channel(
                channel,
                target,
                ident=ident,
                key=key,
                operations=by_channel.get(ident, []),
                pointer=here,
            )
        return out

    def channel(
        self,
        written: Any,
        channel: dict[str, Any],
        *,
        ident: str,
        key: str,
        operations: list[tuple[str, dict[str, Any]]],
        pointer: str,
    ) -> dict[str, Any]:
        base = self.root_uri
        if _is_ref(written) and not operations:
            ref = written["$ref"]
            if ref.startswith("#/components/channels/"):
                return dict(written)
        out = self.carry_fields(channel, ("title", "summary", "tags", "externalDocs"), pointer)
        messages = out.pop("messages", None) or {}
        address = out.pop("address", None)
        if not isinstance(address, str):
            out[f"{V3}address"] = None
        if ident != key and "x-channelId" not in out:
            out["x-channelId"] = ident
        if isinstance(out.get("servers"), list):
            out["servers"] = [_server_name(s) for s in out["servers"]]
        if isinstance(out.get("parameters"), dict):
            out["parameters"] = {
                name: self.parameter(p, f"{pointer}/parameters/{escape_token(name)}", base)
                for name, p in out["parameters"].items()
            }
        if "bindings" in out:
            out["bindings"] = self.bindings(out["bindings"], "channel", f"{pointer}/bindings", base)
        used: set[str] = set()
        written_ops: dict[str, Any] = {}
        for op_id, operation in operations:
            op_pointer = pointer_to("operations", op_id)
            receive = operation.get("action") == "receive"
            kind = "publish" if receive == self.application else "subscribe"
            if kind in written_ops:
                self.refuse(
                    op_pointer,
                    f"a second {operation.get('action')} operation on "
                    f"channel {json_excerpt(ident)}",
                    "AsyncAPI 3.x",
                )
                continue
            self.moves["#" + op_pointer] = "#" + pointer_to("channels", key, kind)
            written_ops[kind] = self.operation(
                operation,
                op_id,
                ident=ident,
                key=key,
                kind=kind,
                messages=messages,
                used=used,
                pointer=op_pointer,
            )
        for name in messages:
            if name not in used:
                self.refuse(
                    f"{pointer}/messages/{escape_token(name)}",
                    "a channel message no operation sends or receives",
                    "AsyncAPI 3.x",
                )
        out.update(written_ops)
        return _order(
            out, ("description", "servers", "parameters", "subscribe", "publish", "bindings")
        )

    def operation(
        self,
        operation: dict[str, Any],
        op_id: str,
        *,
        ident: str,
        key: str,
        kind: str,
        messages: dict[str, Any],
        used: set[str],
        pointer: str,
    ) -> dict[str, Any]:
        base = self.root_uri
        out: dict[str, Any] = {}
        if op_id != f"{ident}.{kind}":
            out["operationId"] = op_id
        for field, value in operation.items():
            if field in ("action", "channel", "messages"):
                continue
            if field == "reply":
                self.refuse(
                    f"{pointer}/reply", "an operation reply (request/reply)", "AsyncAPI 3.x"
                )
                continue
            out[field] = value
        out = self.carry_fields(out, ("title",), pointer)
        if "security" in out:
            out["security"] = self.security(out["security"], f"{pointer}/security")
        if "bindings" in out:
            out["bindings"] = self.bindings(
                out["bindings"], "operation", f"{pointer}/bindings", base
            )
        if "tags" in out:
            out["tags"] = self.inline_refs(out["tags"], f"{pointer}/tags")
        if isinstance(out.get("traits"), list):
            out["traits"] = [
                self.operation_trait(t, f"{pointer}/traits/{i}", base)
                for i, t in enumerate(out["traits"])
            ]
        refs = operation.get("messages")
        names: list[str] = []
        if refs is None:
            names = list(messages)
        elif isinstance(refs, list):
            prefix = "#" + pointer_to("channels", ident, "messages") + "/"
            for index, ref in enumerate(refs):
                target = ref.get("$ref") if isinstance(ref, dict) else None
                if (
                    isinstance(target, str)
                    and target.startswith(prefix)
                    and unescape_token(target[len(prefix) :]) in messages
                ):
                    names.append(unescape_token(target[len(prefix) :]))
                else:
                    self.refuse(
                        f"{pointer}/messages/{index}",
                        "an operation message that is not one of its channel's messages",
                        "AsyncAPI 3.x",
                    )
        entries = []
        for index, name in enumerate(names):
            here = pointer_to("channels", ident, "messages", name)
            derived = f"{op_id.rsplit('.', 1)[-1]}.message"
            if len(names) > 1:
                derived += f".{index}"
            old = "#" + here
            if name in used:
                entries.append(_Written({"$ref": self.moves[old]}))
                continue
            used.add(name)
            new = pointer_to("channels", key, kind, "message")
            if len(names) > 1:
                new += f"/oneOf/{index}"
            self.moves[old] = "#" + new
            entries.append(
                self.message(
                    messages[name], here, base, message_id=None if name == derived else name
                )
            )
        if len(entries) == 1:
            out["message"] = entries[0]
        elif entries:
            out["message"] = {"oneOf": entries}
        return _order(
            out,
            (
                "operationId",
                "summary",
                "description",
                "security",
                "tags",
                "externalDocs",
                "bindings",
                "traits",
                "message",
            ),
        )

    # -- messages, traits, parameters ----------------------------------------------------------
    @_object_of("message")
    def message(
        self, message: Any, pointer: str, base: str, *, message_id: str | None = None
    ) -> Any:
        out = self.carry_fields(message, (), pointer)
        if message_id is not None and "messageId" not in out:
            out = {"messageId": message_id, **out}
        payload = out.get("payload")
        if isinstance(payload, dict) and "schemaFormat" in payload and "schema" in payload:
            out = {"schemaFormat": payload["schemaFormat"], **out}
            out["payload"] = payload["schema"]
        headers = out.get("headers")
        if isinstance(headers, dict) and "schemaFormat" in headers and "schema" in headers:
            if _json_schema_format(headers["schemaFormat"]):
                out["headers"] = headers["schema"]
            else:
                self.refuse(
                    f"{pointer}/headers",
                    f"headers in the schema format {json_excerpt(headers['schemaFormat'])}",
                    "AsyncAPI 3.x",
                )
                del out["headers"]
        if "tags" in out:
            out["tags"] = self.inline_refs(out["tags"], f"{pointer}/tags")
        if "externalDocs" in out:
            out["externalDocs"] = self.inline_refs(out["externalDocs"], f"{pointer}/externalDocs")
        if isinstance(out.get("traits"), list):
            out["traits"] = [
                self.message_trait(t, f"{pointer}/traits/{i}", base)
                for i, t in enumerate(out["traits"])
            ]
        if "bindings" in out:
            out["bindings"] = self.bindings(out["bindings"], "message", f"{pointer}/bindings", base)
        return self.rebase(out, base)

    @_object_of("messageTrait")
    def message_trait(self, trait: Any, pointer: str, base: str) -> Any:
        out = self.carry_fields(trait, (), pointer)
        if "bindings" in out:
            out["bindings"] = self.bindings(out["bindings"], "message", f"{pointer}/bindings", base)
        for key in ("tags", "externalDocs"):
            if key in out:
                out[key] = self.inline_refs(out[key], f"{pointer}/{key}")
        return self.rebase(out, base)

    @_object_of("operationTrait")
    def operation_trait(self, trait: Any, pointer: str, base: str) -> Any:
        out = self.carry_fields(trait, ("title",), pointer)
        if "security" in out:
            out["security"] = self.security(out["security"], f"{pointer}/security")
        if "bindings" in out:
            out["bindings"] = self.bindings(
                out["bindings"], "operation", f"{pointer}/bindings", base
            )
        for key in ("tags", "externalDocs"):
            if key in out:
                out[key] = self.inline_refs(out[key], f"{pointer}/{key}")
        return self.rebase(out, base)

    @_object_of("parameter")
    def parameter(self, parameter: Any, pointer: str, base: str) -> Any:
        out: dict[str, Any] = {}
        if "description" in parameter:
            out["description"] = parameter["description"]
        carried = parameter.get(f"{V2}schema", schema.NOWHERE)
        if carried is schema.NOWHERE:
            out["schema"] = _parameter_schema(parameter)
        elif isinstance(carried, dict):
            found = carried
            if _is_ref(carried):
                hit = self.follow(base, carried["$ref"], f"{pointer}/{V2}schema")
                found = hit[1] if hit else carried
            if _parameter_values(found) == _parameter_values(parameter):
                out["schema"] = carried
            elif _is_ref(carried):
                self.warnings.append(
                    Problem(
                        pointer=pointer,
                        rule=RULE,
                        severity=Severity.WARNING,
                        message="the parameter's enum, default or examples changed since it was "
                        f"converted: its schema $ref {carried['$ref']!r} is not restored",
                    )
                )
                out["schema"] = _parameter_schema(parameter)
            else:
                merged = {
                    k: v
                    for k, v in carried.items()
                    if k not in ("enum", "default", "examples", "const")
                }
                merged.update(
                    (k, v) for k, v in _parameter_schema(parameter).items() if k != "type"
                )
                out["schema"] = merged
        for key, value in parameter.items():
            if key in ("description", "enum", "default", "examples", f"{V2}schema"):
                continue
            out[key] = value
        return out

    # -- bindings ------------------------------------------------------------------------------
    def binding(self, protocol: str, kind: str, binding: Any, pointer: str, base: str) -> Any:
        if not isinstance(binding, dict):
            return binding
        out: dict[str, Any] = {}
        restored: dict[str, Any] = {}
        for key, value in binding.items():
            if key == f"{V2}bindingVersion":
                continue
            if key.startswith(V2):
                restored[key[len(V2) :]] = value
            else:
                out[key] = value
        if f"{V2}bindingVersion" in binding:
            original = binding[f"{V2}bindingVersion"]
            out.pop("bindingVersion", None)
            if original is not None:
                out = {"bindingVersion": original, **out}
        out.update(restored)
        return self.rebase(out, base)

    # -- components ----------------------------------------------------------------------------
    def components(self, components: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        base = self.root_uri
        for section, value in components.items():
            where = ("components", section)
            if not isinstance(value, dict):
                out[section] = value
                continue
            convert: Callable[[Any, str, str], Any] | None = {  # type: ignore[assignment]
                "servers": self.server,
                "messages": self.message,
                "parameters": self.parameter,
                "securitySchemes": self.scheme,
                "messageTraits": self.message_trait,
                "operationTraits": self.operation_trait,
            }.get(section)
            if section in ("tags", "externalDocs"):
                out[f"{V3}{section}"] = value
                self.moves["#" + pointer_to(*where)] = "#" + pointer_to(
                    "components", f"{V3}{section}"
                )
            elif section in ("operations", "replies", "replyAddresses"):
                for name in value:
                    self.refuse(pointer_to(*where, name), f"components.{section}", "AsyncAPI 3.x")
            elif section == "channels":
                out[section] = {
                    name: self.channel(
                        c,
                        c if isinstance(c, dict) else {},
                        ident=name,
                        key=name,
                        operations=[],
                        pointer=pointer_to(*where, name),
                    )
                    for name, c in value.items()
                }
            elif section.endswith("Bindings") and section[:-8] in (
                "server",
                "channel",
                "operation",
                "message",
            ):
                out[section] = {
                    name: self.bindings(b, section[:-8], pointer_to(*where, name), base)
                    for name, b in value.items()
                }
            elif convert is not None:
                out[section] = {
                    name: convert(item, pointer_to(*where, name), base)
                    for name, item in value.items()
                }
            else:
                out[section] = value
        return out


class _Written(dict[str, Any]):
    """A reference the conversion wrote, already in the target's terms (never rewritten)."""


def _target_ref(*parts: str) -> dict[str, Any]:
    return _Written({"$ref": "#" + pointer_to(*parts)})


def _plain_copy(node: Any) -> Any:
    """A deep copy of JSON data made of plain dicts and lists (a shared node copied apart)."""
    try:
        return json.loads(json.dumps(node))
    except (TypeError, ValueError, RecursionError) as error:
        message = f"the document is not JSON data: {error}"
        raise ConversionError(message, [Problem(pointer="", rule=RULE, message=message)]) from None


def _channel_id(channel: Any, key: str) -> str:
    """A 2.x channel's 3.x id: its ``x-channelId``, else its key (the official naming)."""
    found = channel.get("x-channelId") if isinstance(channel, dict) else None
    return found if isinstance(found, str) else key


def _split_url(url: str) -> tuple[str, str | None]:
    _, sep, rest = url.partition("://")
    if not sep:
        rest = url
    host, slash, path = rest.partition("/")
    return host, ("/" + path) if slash else None


def _server_name(ref: Any) -> Any:
    target = ref.get("$ref") if isinstance(ref, dict) else None
    if isinstance(target, str) and target.startswith("#/servers/"):
        return unescape_token(target[len("#/servers/") :])
    return ref


def _unique(name: str, taken: Mapping[str, Any]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}{n}", n + 1
    return candidate


def _json_schema_format(schema_format: object) -> bool:
    return isinstance(schema_format, str) and (
        schema_format.startswith(("application/vnd.aai.asyncapi", "application/schema+"))
    )


def _parameter_values(node: Any) -> tuple[Any, Any, Any]:
    if not isinstance(node, dict):
        return (None, None, None)
    enum = node.get("enum", [node["const"]] if "const" in node else None)
    return (enum, node.get("default"), node.get("examples"))


# ---------------------------------------------------------------------------------------------


def convert_document(
    data: Mapping[str, Any],
    to: str,
    *,
    point_of_view: str = "application",
    lossy: bool = False,
    lookup: Lookup | None = None,
    base_uri: str | None = None,
) -> Conversion:
    """``data`` (a valid AsyncAPI 2.x or 3.x document, unresolved) written as AsyncAPI ``to``.

    ``lookup`` follows ``$ref``s to other files (``base_uri`` is the document's own URI); without
    it only references inside the document can be followed. Between two 2.x (or two 3.x)
    versions only ``asyncapi`` changes: the caller checks that the target's schema accepts the
    rest. Raises :class:`ConversionError` with one problem per field the target cannot hold
    (pointers into ``data``) unless ``lossy``, which drops them with a warning each.
    """
    if point_of_view not in POINTS_OF_VIEW:
        raise ValueError(f"point_of_view must be one of {POINTS_OF_VIEW}, not {point_of_view!r}")
    declared = data.get("asyncapi")
    source_major, target_major = _major(declared), _major(to)
    if target_major is None:
        raise ConversionError(
            f"cannot convert to AsyncAPI {json_excerpt(to)}: the targets are "
            + ", ".join((*V2_VERSIONS, *V3_VERSIONS)),
            [Problem(pointer="", rule=RULE, message=f"unknown target version {json_excerpt(to)}")],
        )
    if source_major is None:
        message = f"AsyncAPI {json_excerpt(declared)} cannot be converted"
        raise ConversionError(
            message,
            [
                Problem(
                    pointer="/asyncapi" if declared else "",
                    rule="asyncapi-version",
                    message=message,
                )
            ],
        )
    source = _plain_copy(data)
    kwargs: dict[str, Any] = {
        "target": to,
        "lossy": lossy,
        "point_of_view": point_of_view,
        "lookup": lookup,
        "base_uri": base_uri,
    }
    if source_major == target_major:
        return Conversion(data=_order({**source, "asyncapi": to}, ("asyncapi",)))
    converter: _Converter = (_Upgrade if source_major == 2 else _Downgrade)(source, **kwargs)
    out = converter.run()
    if to != "2.6.0" and target_major == 2:
        out["asyncapi"] = to
    if converter.errors:
        count = len(converter.errors)
        raise ConversionError(
            f"AsyncAPI {declared} cannot be written as AsyncAPI {to} without loss "
            f"({count} problem{'s' * (count != 1)}); lossy conversion drops what does not fit",
            converter.errors,
        )
    # the conversion shares nodes between places (and with its copy of the source): unshare them
    return Conversion(data=_plain_copy(out), warnings=tuple(converter.warnings))
