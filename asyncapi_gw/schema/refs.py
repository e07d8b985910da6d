"""``$ref`` resolution across documents, with a policy for what a document may reference.

Local pointers are always followed; relative files only inside the root document's folder or
the caller's ``ref_root`` folder (both after ``..`` and symbolic links) unless ``allow_outside``;
absolute paths and ``file://`` URLs only with ``allow_outside``; ``http(s)://`` URLs only with
``allow_remote``, and then only as far as ``load`` reads them.  A reference that is refused or
broken stays a ``{"$ref": ...}`` mapping and becomes a Problem (rule ``asyncapi-ref``); so does
a reference that closes a cycle, without a problem.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

import attrs

from asyncapi_gw.documents import SourceDocument
from asyncapi_gw.errors import AsyncAPIGwError, Problem, json_excerpt
from asyncapi_gw.pointers import escape_token, unescape_token

__all__ = ["NOWHERE", "Resolved", "node_at", "resolve_refs"]

_RULE = "asyncapi-ref"
_NOT_FETCHED = (
    "remote references are not followed: nothing is fetched from the network; "
    "save the file beside the document and refer to it by a relative path"
)
_ALLOW_OUTSIDE = "allow them with allow_outside_refs=True (CLI: --allow-outside-refs)"

# (target document, pointer in it, target node) of each followed reference, by id of the
# {"$ref"} mapping that was replaced.
_Sites = dict[int, tuple[SourceDocument, str, Any]]


NOWHERE = object()
"""What :func:`node_at` gives for a pointer that leads nowhere."""


def node_at(data: Any, pointer: str) -> Any:
    """The node at an RFC 6901 ``pointer`` in ``data``, or :data:`NOWHERE`."""
    if not pointer:
        return data
    if not pointer.startswith("/"):
        return NOWHERE
    node = data
    for token in pointer[1:].split("/"):
        key = unescape_token(token)
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif (
            isinstance(node, list)
            and key.isdigit()
            and (key == "0" or key[0] != "0")
            and int(key) < len(node)
        ):
            node = node[int(key)]
        else:
            return NOWHERE
    return node


def _unescaped_slash(data: Any, pointer: str) -> str | None:
    """The pointer that ``pointer`` meant if it wrote the ``/`` of keys unescaped, as some
    generators do (``/channels/rooms/{id}`` for the key ``rooms/{id}``: ``/channels/rooms~1{id}``);
    ``None`` when no key of ``data`` reads so.  The longest key that matches is taken."""
    tokens = [unescape_token(token) for token in pointer[1:].split("/")]
    node, out, index = data, "", 0
    while index < len(tokens):
        token = tokens[index]
        if isinstance(node, dict):
            for end in range(len(tokens), index, -1):
                key = "/".join(tokens[index:end])
                if key in node:
                    break
            else:
                return None
            node, out, index = node[key], f"{out}/{escape_token(key)}", end
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node, out, index = node[int(token)], f"{out}/{token}", index + 1
        else:
            return None
    return out


@attrs.frozen(kw_only=True)
class Resolved:
    """A document with its ``$ref`` replaced by their targets, and the problems met doing it."""

    data: Any
    problems: tuple[Problem, ...]
    _root: SourceDocument = attrs.field(alias="root", repr=False)
    _sites: _Sites = attrs.field(alias="sites", repr=False, eq=False)

    def origin(self, pointer: str) -> tuple[SourceDocument, str]:
        """The document and the pointer in it where the node at ``pointer`` of ``data`` was
        written.  A pointer past the existing nodes keeps its unmatched tail."""
        doc, here, node = self._root, "", self._root.data
        tokens = pointer.split("/")[1:] if pointer else []
        for index, token in enumerate(tokens):
            doc, here, node = self._jump(doc, here, node)
            key = unescape_token(token)
            if isinstance(node, dict) and key in node:
                node = node[key]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                return doc, here + "".join(f"/{t}" for t in tokens[index:])
            here += f"/{token}"
        doc, here, _ = self._jump(doc, here, node)
        return doc, here

    def _jump(self, doc: SourceDocument, here: str, node: Any) -> tuple[SourceDocument, str, Any]:
        if isinstance(node, dict):
            site = self._sites.get(id(node))
            if site is not None:
                return site
        return doc, here, node


@attrs.define
class _Frame:
    """One node to copy: where it comes from and where its copy goes."""

    node: Any
    doc: SourceDocument
    base: str  # the URI that relative references of this node resolve against
    pointer: str  # in the resolved data
    parent: dict[str, Any] | list[Any] | None
    key: Any


class _Resolution:
    """The working state of one :func:`resolve_refs` call."""

    def __init__(
        self,
        root: SourceDocument,
        load: Callable[[str], SourceDocument],
        *,
        allow_remote: bool,
        allow_outside: bool,
        ref_root: str | os.PathLike[str] | None,
    ) -> None:
        self.root = root
        self.load = load
        self.allow_remote = allow_remote
        self.allow_outside = allow_outside
        self.root_uri = root.uri or ""
        self.folder = self._folder(self.root_uri)
        self.ref_root = os.path.realpath(ref_root) if ref_root is not None else None
        self.documents: dict[str, SourceDocument] = {self.root_uri: root}
        self.sites: _Sites = {}
        self.copies: dict[int, Any] = {}
        self.active: set[int] = set()
        self.problems: list[Problem] = []

    @staticmethod
    def _folder(uri: str) -> str | None:
        parts = urlsplit(uri)
        if parts.scheme != "file":
            return None
        return os.path.dirname(os.path.realpath(unquote(parts.path)))

    def refuse(self, ref: str, pointer: str, message: str) -> None:
        message = f"$ref {json_excerpt(ref)}: {message}"
        self.problems.append(Problem(pointer=pointer, rule=_RULE, message=message))

    def permitted(self, ref: str, base: str, target: str, pointer: str) -> bool:
        """Whether the policy lets ``ref`` (written in a document at ``base``) be followed."""
        if not target or target == base:
            return True
        scheme = urlsplit(target).scheme
        written = urlsplit(ref)
        if scheme in ("http", "https"):
            if self.allow_remote:
                return True
            self.refuse(ref, pointer, _NOT_FETCHED)
            return False
        if scheme != "file":
            if urlsplit(base).scheme in ("http", "https") and self.allow_remote:
                return True
            if not base and not written.scheme:
                self.refuse(
                    ref,
                    pointer,
                    "the document has no location, so a reference to "
                    "another file cannot be resolved",
                )
                return False
            self.refuse(ref, pointer, f"the {scheme or 'relative'} reference cannot be followed")
            return False
        if written.scheme == "file" or posixpath.isabs(written.path) or os.path.isabs(ref):
            if self.allow_outside:
                return True
            self.refuse(ref, pointer, f"absolute file references are refused; {_ALLOW_OUTSIDE}")
            return False
        path = os.path.realpath(unquote(urlsplit(target).path))
        folders = [f for f in (self.folder, self.ref_root) if f is not None]
        if self.allow_outside or any(os.path.commonpath([f, path]) == f for f in folders):
            return True
        where = "the document's folder"
        if self.ref_root is not None:
            where += f" and outside {self.ref_root}"
        self.refuse(
            ref,
            pointer,
            f"the file is outside {where}; such references are refused; {_ALLOW_OUTSIDE}",
        )
        return False

    def document(self, uri: str, ref: str, pointer: str) -> SourceDocument | None:
        doc = self.documents.get(uri)
        if doc is not None:
            return doc
        try:
            doc = self.load(uri)
        except AsyncAPIGwError as error:
            detail = error.problems[0].message if error.problems else error.message
            self.refuse(ref, pointer, f"cannot read {uri}: {detail}")
            return None
        self.documents[uri] = doc
        return doc

    def follow(self, frame: _Frame) -> tuple[SourceDocument, str, str, Any] | None:
        """(document, its URI, pointer, node) a reference leads to, through chains of
        references; ``None`` when it is refused or broken (and reported)."""
        node, base, seen = frame.node, frame.base, {id(frame.node)}
        while True:
            ref = node["$ref"]
            if ref.startswith("#"):  # the same document (``base`` has no fragment)
                target, fragment = base, ref[1:]
            else:
                try:
                    target, fragment = urldefrag(urljoin(base, ref))
                except ValueError as error:  # such as "http://[" (an unclosed IPv6 host)
                    self.refuse(ref, frame.pointer, f"not a valid URI reference: {error}")
                    return None
            if not self.permitted(ref, base, target, frame.pointer):
                return None
            doc = self.document(target, ref, frame.pointer)
            if doc is None:
                return None
            pointer = unquote(fragment)
            found = doc.data
            node = node_at(found, pointer)
            if node is NOWHERE:
                where = "this document" if target == base else target
                meant = _unescaped_slash(found, pointer) if pointer.startswith("/") else None
                hint = (
                    ""
                    if meant is None
                    else (
                        "; a '/' in a key is written '~1' in a JSON pointer: did you mean "
                        f"{json_excerpt(ref.partition('#')[0] + '#' + meant)}?"
                    )
                )
                self.refuse(
                    ref,
                    frame.pointer,
                    f"{json_excerpt(pointer)} is not a JSON pointer to a node of {where}{hint}",
                )
                return None
            base = target
            if not (isinstance(node, dict) and isinstance(node.get("$ref"), str)):
                return doc, target, pointer, node
            if id(node) in seen:
                self.refuse(ref, frame.pointer, "the references form a loop that leads nowhere")
                return None
            seen.add(id(node))

    def place(self, frame: _Frame, value: Any) -> None:
        if frame.parent is not None:
            frame.parent[frame.key] = value

    def run(self) -> Any:
        result: dict[str, Any] = {}
        pending: list[_Frame | int] = [
            _Frame(self.root.data, self.root, self.root_uri, "", result, "root")
        ]
        while pending:
            frame = pending.pop()
            if isinstance(frame, int):
                self.active.discard(frame)
                continue
            node = frame.node
            if isinstance(node, dict) and isinstance(node.get("$ref"), str):
                site = self.sites.get(id(node))
                if site is None:
                    found = self.follow(frame)
                    if found is not None:
                        site = (found[0], found[2], found[3])
                        if id(site[2]) not in self.active:
                            self.sites[id(node)] = site
                            frame = _Frame(
                                site[2], site[0], found[1], frame.pointer, frame.parent, frame.key
                            )
                if site is None or id(site[2]) in self.active:
                    self.place(frame, dict(node))
                    continue
                node = site[2]
            if not isinstance(node, (dict, list)):
                self.place(frame, node)
                continue
            copy = self.copies.get(id(node))
            if copy is not None:
                self.place(frame, copy)
                continue
            self.copy(frame, node, pending)
        return result["root"]

    def copy(
        self, frame: _Frame, node: dict[str, Any] | list[Any], pending: list[_Frame | int]
    ) -> None:
        copy: dict[str, Any] | list[Any]
        items: list[tuple[Any, Any]]
        if isinstance(node, dict):
            copy = dict.fromkeys(node)
            items = list(node.items())
        else:
            copy = [None] * len(node)
            items = list(enumerate(node))
        self.copies[id(node)] = copy
        self.place(frame, copy)
        self.active.add(id(node))
        pending.append(id(node))
        for key, value in reversed(items):
            if isinstance(value, (dict, list)):
                pending.append(
                    _Frame(
                        value,
                        frame.doc,
                        frame.base,
                        f"{frame.pointer}/{escape_token(key)}",
                        copy,
                        key,
                    )
                )
            else:
                copy[key] = value


def resolve_refs(
    root: SourceDocument,
    *,
    load: Callable[[str], SourceDocument],
    allow_remote: bool = False,
    allow_outside: bool = False,
    ref_root: str | os.PathLike[str] | None = None,
) -> Resolved:
    """``root`` with every ``$ref`` replaced by its target (shared, not copied), other documents
    read with ``load(uri)`` once each; ``root`` itself is not changed.

    Relative file references may lead anywhere under the root document's folder and, when
    given, under ``ref_root`` (a command line passes its working directory).
    """
    resolution = _Resolution(
        root, load, allow_remote=allow_remote, allow_outside=allow_outside, ref_root=ref_root
    )
    data = resolution.run()
    return Resolved(
        data=data, problems=tuple(resolution.problems), root=root, sites=resolution.sites
    )
