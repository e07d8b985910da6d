r"""Reading and writing YAML/JSON documents, with line and column positions.

This is the package's only file and format I/O and the only module that imports PyYAML.

Reading gives a :class:`SourceDocument`: plain JSON data (dicts in source order, lists, str,
int, float, bool, None) plus a way to turn a JSON pointer back into a line and column.

- Format: JSON when the first character that is not whitespace is ``{`` or ``[``, else YAML.
- Encoding: UTF-8; a UTF-8 BOM is skipped; UTF-16 and UTF-32 are read when they start with a BOM.
- YAML is read from PyYAML's event stream, without recursion and without constructing objects.
  Plain scalars resolve by the YAML 1.2 core schema, as the official AsyncAPI parser's YAML
  reader resolves them, whatever ``%YAML`` directive the document has: null is ``~``, ``null``,
  ``Null``, ``NULL`` or nothing; bool is ``true``, ``True``, ``TRUE``, ``false``, ``False`` or
  ``FALSE``; int is ``[-+]?[0-9]+`` (``0755`` is 755), ``0o[0-7]+`` or ``0x[0-9a-fA-F]+``; float
  is ``[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?``, ``[-+]?.inf`` or ``.nan`` (each
  also with an initial capital or in capitals).  Everything else is a string: ``on``, ``off``,
  ``yes``, ``no``, ``y``, ``n``, ``1_000``, ``0b101``, ``1:20``, ``2024-01-01``.  Explicitly
  tagged ``!!str``, ``!!binary`` and ``!!timestamp`` scalars are strings, ``!!null`` is null, and
  ``!!bool``, ``!!int`` and ``!!float`` take the plain forms of their type (``!!float`` an
  integer's too).  Mapping keys are always strings, spelled as the source wrote them (``200:``
  gives ``"200"``). Merge keys (``<<``) merge as with ``SafeLoader``: the mapping's own keys win,
  then earlier merged mappings over later ones. An anchor may be redefined; an alias refers to
  the latest definition. Aliased collections are shared, not copied (as with ``SafeLoader``),
  and count towards ``Limits.max_nodes`` once per use. PyYAML's C parser (libyaml) is used when
  built, else the pure-Python one.
- Styles: a plain scalar that a YAML 1.1 reader (such as PyYAML's ``yaml.safe_load``) reads as
  something else (``on`` as true, ``2024-01-01`` as a date, ``0755`` as 493, ``1e3`` as a
  string) and a plain mapping key that either reader would type (``200``, ``true``) are noted;
  :meth:`SourceDocument.styled_data` gives the data with them as ``str``, ``int`` and ``float``
  values that remember their text, and :func:`dump_document` writes those as they were read, so
  that every reader reads the output as it read the source.  It quotes any other string that a
  YAML 1.2 or a YAML 1.1 reader would read as something else.
- JSON is read with the ``json`` module; ``NaN`` and ``Infinity`` are refused (not JSON). Its
  positions are computed from the text the first time ``locate`` is called, so the document
  keeps its text until then.

Every failure raises :class:`~asyncapi_gw.errors.DocumentError` with one Problem whose rule is
one of:

``document-unreadable``
    the file does not exist, is a directory or cannot be read.
``document-too-large``
    more than ``Limits.max_bytes`` bytes or ``Limits.max_nodes`` nodes.
``document-too-deep``
    collections nested deeper than ``Limits.max_depth``.
``document-encoding``
    invalid UTF-8/16/32, a NUL character or an unpaired surrogate.
``document-syntax``
    not well-formed YAML or JSON, or a scalar that does not fit its explicit tag.
``document-empty``
    no content.
``document-multiple-documents``
    a YAML stream with more than one document.
``document-duplicate-key``
    a key repeated in one mapping.
``document-complex-key``
    a YAML mapping key that is a sequence or a mapping.
``document-unsafe-tag``
    a YAML tag outside the JSON-compatible core tags (such as ``!!python/object``).
``document-bad-alias``
    an alias to an undefined anchor or to a node that contains it.
``document-alias-bomb``
    aliases that expand beyond ``Limits.max_nodes``.
``document-bad-merge``
    a merge key whose value is not a mapping or a list of mappings.
``document-unrepresentable``
    data given to :func:`dump_document` or :func:`document_from_data` that is not JSON data.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import pathlib
import re
from array import array
from collections.abc import Callable, Iterator, Mapping
from itertools import accumulate
from typing import Any, Protocol

import attrs
import yaml
from yaml.constructor import SafeConstructor
from yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    StreamStartEvent,
)
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

from asyncapi_gw.errors import DocumentError, Problem
from asyncapi_gw.pointers import escape_token, unescape_token

__all__ = [
    "DEFAULT_LIMITS",
    "Limits",
    "SourceDocument",
    "document_from_data",
    "dump_document",
    "parse_document",
    "read_document",
]


def _positive(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, not {value}")


@attrs.frozen(kw_only=True)
class Limits:
    """Bounds on what a document may cost to read: its size in bytes (UTF-8 for text), how deep
    its collections nest, and how many nodes it holds once every alias and merge is expanded."""

    max_bytes: int = attrs.field(default=32 * 1024 * 1024, validator=_positive)
    max_depth: int = attrs.field(default=512, validator=_positive)
    max_nodes: int = attrs.field(default=5_000_000, validator=_positive)


DEFAULT_LIMITS = Limits()


# ---------------------------------------------------------------------------------------------
# Positions


def _pack(line: int, column: int) -> int:
    """A 1-based (line, column) in one integer."""
    return (line << 32) | column


_INDEX = re.compile(r"0|[1-9][0-9]*")


@attrs.define
class _Positions:
    """Where each node starts: the root's position, and per container (by id) the position of
    each child in iteration order (a mapping member's position is its key's)."""

    root: int
    children: dict[int, array[int]]

    def find(self, data: Any, pointer: str) -> int:
        pos = self.root
        if not pointer.startswith("/"):
            return pos
        node = data
        for raw in pointer[1:].split("/"):
            child_positions = self.children.get(id(node))
            if child_positions is None:
                break
            if isinstance(node, dict):
                key = unescape_token(raw)
                found = next((i for i, k in enumerate(node) if k == key), None)
                if found is None:
                    break
                index, child = found, node[key]
            elif isinstance(node, list) and _INDEX.fullmatch(raw) and int(raw) < len(node):
                index = int(raw)
                child = node[index]
            else:
                break
            if index >= len(child_positions):
                break
            pos = child_positions[index]
            node = child
        return pos


class _LazyJsonPositions:
    """Positions of a JSON document, computed from its text the first time they are asked for."""

    def __init__(self, text: str, data: Any) -> None:
        self._text = text
        self._data = data
        self._positions: _Positions | None = None

    def get(self) -> _Positions:
        if self._positions is None:
            self._positions = _json_positions(self._text, self._data)
            self._text = ""
        return self._positions


@attrs.frozen(kw_only=True)
class SourceDocument:
    """A document's plain JSON data, where it came from, and its source positions."""

    data: Any
    name: str | None
    uri: str | None
    format: str
    _positions: _Positions | _LazyJsonPositions | None = attrs.field(
        default=None, eq=False, repr=False
    )
    _styles: _Styles | None = attrs.field(default=None, eq=False, repr=False)

    def styled_data(self) -> Any:
        """The data, with each scalar that YAML 1.1 and YAML 1.2 read differently kept as
        written: ``on``, ``2024-01-01`` or ``1_000`` as a ``str``, ``0755`` as an ``int``, ``1e3``
        as a ``float`` that remember their plain text, and a plain mapping key that a reader would
        type (``200``, ``true``) as a ``str`` that remembers it is plain.  They equal the plain
        values and :func:`dump_document` writes them as they were read.  Only the collections
        holding them are copied; the data itself stays plain."""
        if not self._styles:
            return self.data
        return _restyled(self.data, self._styles)

    def locate(self, pointer: str) -> tuple[int, int] | None:
        """1-based (line, column) of the node at RFC 6901 JSON pointer `pointer` ("" = root);
        for a pointer that does not exist, the position of its nearest existing ancestor;
        for a mapping member, the position of its KEY; None when the data came from a dict."""
        positions = self._positions
        if positions is None:
            return None
        if isinstance(positions, _LazyJsonPositions):
            positions = positions.get()
        packed = positions.find(self.data, pointer)
        return packed >> 32, packed & 0xFFFFFFFF


# ---------------------------------------------------------------------------------------------
# Styles: scalars to write as they were read

# (key or index, styled scalar, whether it is the key) of one member of a collection
_Style = tuple[str | int, Any, bool]
# id(collection) -> (collection, its styled members); a collection that holds no styled member
# but holds a collection that does is listed with none
_Styles = dict[int, tuple[Any, tuple[_Style, ...]]]


def _restyled(data: Any, styles: _Styles) -> Any:
    """`data` with the styled scalars in place: each collection that holds one, or holds a
    collection that does, copied (once, if shared); a styled value only where the data still
    holds the value it stands for."""

    def listed(node: Any) -> bool:
        entry = styles.get(id(node))
        return entry is not None and entry[0] is node

    if not listed(data):
        return data
    copies: dict[int, Any] = {}
    todo = [data]
    while todo:
        node = todo[-1]
        waiting = [
            child
            for child in (node.values() if isinstance(node, dict) else node)
            if id(child) not in copies and listed(child)
        ]
        if waiting:
            todo.extend(waiting)
            continue
        todo.pop()
        if id(node) not in copies:
            copies[id(node)] = _restyle(node, styles[id(node)][1], copies)
    return copies[id(data)]


def _restyle(node: Any, entries: tuple[_Style, ...], copies: dict[int, Any]) -> Any:
    def stands_for(style: Any, value: Any) -> bool:
        return style is not None and type(value) is _STYLED_TYPES[type(style)] and style == value

    if isinstance(node, list):
        items = [copies.get(id(item), item) for item in node]
        for index, style, _ in entries:
            if isinstance(index, int) and index < len(items) and stands_for(style, items[index]):
                items[index] = style
        return items
    values = {slot: style for slot, style, is_key in entries if not is_key}
    keys = {slot: style for slot, style, is_key in entries if is_key}
    members = {}
    for key, item in node.items():
        value = copies.get(id(item), item)
        style = values.get(key)
        members[keys.get(key, key)] = style if stands_for(style, value) else value
    return members


# ---------------------------------------------------------------------------------------------
# Errors


def _fail(
    rule: str,
    message: str,
    *,
    name: str | None,
    pointer: str = "",
    line: int | None = None,
    column: int | None = None,
) -> DocumentError:
    problem = Problem(
        pointer=pointer, message=message, rule=rule, line=line, column=column, file=name
    )
    return DocumentError(f"cannot read {name or 'the document'}: {message}", [problem])


def _line_column(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of character `index` in `text`."""
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


# ---------------------------------------------------------------------------------------------
# Text


_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
_SURROGATE = re.compile("[\ud800-\udfff]")


def _decode(raw: bytes, name: str | None) -> str:
    encoding = "utf-8"
    for bom, candidate in _BOMS:
        if raw.startswith(bom):
            encoding = candidate
            break
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        column = len(raw[line_start : exc.start].decode(encoding, "replace")) + 1
        raise _fail(
            "document-encoding",
            f"not valid {encoding.upper().removesuffix('-SIG')}: byte offset {exc.start} "
            f"({exc.reason})",
            name=name,
            line=line,
            column=column,
        ) from None


def _check_text(text: str, name: str | None, limits: Limits) -> None:
    if len(text) > limits.max_bytes or (
        len(text) * 4 > limits.max_bytes
        and not text.isascii()
        and len(text.encode("utf-8", "surrogatepass")) > limits.max_bytes
    ):
        raise _fail(
            "document-too-large",
            f"larger than the limit of {limits.max_bytes} bytes",
            name=name,
        )
    nul = text.find("\x00")
    if nul >= 0:
        line, column = _line_column(text, nul)
        raise _fail(
            "document-encoding", "contains a NUL character", name=name, line=line, column=column
        )
    if not text.isascii():
        surrogate = _SURROGATE.search(text)
        if surrogate is not None:
            line, column = _line_column(text, surrogate.start())
            raise _fail(
                "document-encoding",
                "contains an unpaired surrogate code point",
                name=name,
                line=line,
                column=column,
            )


# ---------------------------------------------------------------------------------------------
# Public reading API


def read_document(
    path: str | os.PathLike[str], *, limits: Limits = DEFAULT_LIMITS
) -> SourceDocument:
    """Read a YAML or JSON file."""
    name = os.fspath(path)
    try:
        with open(path, "rb") as stream:
            raw = stream.read(limits.max_bytes + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise _fail("document-unreadable", f"cannot open the file: {reason}", name=name) from None
    if len(raw) > limits.max_bytes:
        raise _fail(
            "document-too-large", f"larger than the limit of {limits.max_bytes} bytes", name=name
        )
    uri = pathlib.Path(os.path.abspath(name)).as_uri()
    return parse_document(raw, name=name, uri=uri, limits=limits)


def parse_document(
    text: str | bytes,
    *,
    name: str | None = None,
    uri: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> SourceDocument:
    """Parse YAML or JSON text (bytes are decoded as described in the module docstring)."""
    if isinstance(text, bytes):
        if len(text) > limits.max_bytes:
            raise _fail(
                "document-too-large",
                f"larger than the limit of {limits.max_bytes} bytes",
                name=name,
            )
        text = _decode(text, name)
    text = text.removeprefix("\ufeff")
    _check_text(text, name, limits)
    start = _LEADING_SPACE.match(text)
    first = text[start.end() : start.end() + 1] if start is not None else ""
    if first in ("{", "["):
        data, lazy = _parse_json(text, name, limits)
        return SourceDocument(data=data, name=name, uri=uri, format="json", positions=lazy)
    data, positions, styles = _parse_yaml(text, name, limits)
    return SourceDocument(
        data=data, name=name, uri=uri, format="yaml", positions=positions, styles=styles
    )


_LEADING_SPACE = re.compile(r"[ \t\r\n]*")


# ---------------------------------------------------------------------------------------------
# JSON

_JSON_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*"'
_JSON_SKELETON = re.compile(_JSON_STRING + r'|[^\[\]{},"]+')
_JSON_TOKEN = re.compile(_JSON_STRING + r'|[{}\[\]:,]|[^\s{}\[\]:,"]+')
_DEPTH_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1, ord(","): 0, ord('"'): 0}
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class _DuplicateKeyError(Exception):
    """Raised inside ``json.loads`` to stop at a duplicate key; located afterwards."""


def _object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKeyError
    return result


def _refuse_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _parse_json(text: str, name: str | None, limits: Limits) -> tuple[Any, _LazyJsonPositions]:
    skeleton = "".join(_JSON_SKELETON.sub("", text))
    depth = max(accumulate(map(_DEPTH_STEP.__getitem__, map(ord, skeleton))), default=0)
    if depth > limits.max_depth:
        raise _fail(
            "document-too-deep",
            f"nested deeper than the limit of {limits.max_depth}",
            name=name,
        )
    if skeleton.count(",") + skeleton.count("[") + skeleton.count("{") + 1 > limits.max_nodes:
        raise _fail(
            "document-too-large", f"more than the limit of {limits.max_nodes} nodes", name=name
        )
    try:
        data = json.loads(text, object_pairs_hook=_object_pairs, parse_constant=_refuse_constant)
    except _DuplicateKeyError:
        raise _json_duplicate(text, name) from None
    except json.JSONDecodeError as exc:
        raise _fail(
            "document-syntax",
            f"invalid JSON: {exc.msg}",
            name=name,
            line=exc.lineno,
            column=exc.colno,
        ) from None
    except RecursionError:
        raise _fail(
            "document-too-deep", "nested too deeply for the JSON parser", name=name
        ) from None
    except ValueError as exc:
        raise _fail("document-syntax", f"invalid JSON: {exc}", name=name) from None
    lazy = _LazyJsonPositions(text, data)
    if _SURROGATE_ESCAPE.search(text):
        _refuse_surrogates(data, name, lazy)
    return data, lazy


def _refuse_surrogates(data: Any, name: str | None, lazy: _LazyJsonPositions) -> None:
    """Refuse strings with unpaired surrogates (``"\\ud800"``): they are not Unicode text."""
    todo: list[tuple[str, Any]] = [("", data)]
    while todo:
        pointer, node = todo.pop()
        if isinstance(node, dict):
            todo.extend((f"{pointer}/{escape_token(key)}", value) for key, value in node.items())
            todo.extend((f"{pointer}/{escape_token(key)}", key) for key in node)
        elif isinstance(node, list):
            todo.extend((f"{pointer}/{index}", value) for index, value in enumerate(node))
        elif isinstance(node, str) and _SURROGATE.search(node):
            packed = lazy.get().find(data, pointer)
            raise _fail(
                "document-encoding",
                "a string holds an unpaired surrogate escape",
                name=name,
                pointer=pointer,
                line=packed >> 32,
                column=packed & 0xFFFFFFFF,
            )


def _json_tokens(text: str) -> Iterator[tuple[str, int, int]]:
    """(token, line, column) of each token of well-formed JSON text."""
    newlines = [match.start() for match in re.finditer("\n", text)]
    for match in _JSON_TOKEN.finditer(text):
        offset = match.start()
        line = bisect.bisect_left(newlines, offset)
        line_start = newlines[line - 1] + 1 if line else 0
        yield match.group(), line + 1, offset - line_start + 1


def _json_positions(text: str, data: Any) -> _Positions:
    root = 0
    children: dict[int, array[int]] = {}
    # Per open container: an iterator over its children's data, their positions, and for an
    # object whether the next string is a key.
    stack: list[tuple[Iterator[Any], array[int], list[bool] | None]] = []
    for token, line, column in _json_tokens(text):
        first = token[0]
        if first in "]}":
            stack.pop()
            continue
        if first == ",":
            expects_key = stack[-1][2]
            if expects_key is not None:
                expects_key[0] = True
            continue
        if first == ":":
            continue
        pos = _pack(line, column)
        if stack:
            values, positions, expects_key = stack[-1]
            if expects_key is not None and expects_key[0]:
                positions.append(pos)
                expects_key[0] = False
                continue
            if expects_key is None:
                positions.append(pos)
            node = next(values, None)
        else:
            root = pos
            node = data
        if first in "[{":
            # The data may have been changed since parsing: position what still matches.
            positions = array("Q")
            values = iter(())
            if first == "{" and isinstance(node, dict):
                values = iter(node.values())
                children[id(node)] = positions
            elif first == "[" and isinstance(node, list):
                values = iter(node)
                children[id(node)] = positions
            stack.append((values, positions, [True] if first == "{" else None))
    return _Positions(root=root, children=children)


def _json_duplicate(text: str, name: str | None) -> DocumentError:
    """Find the first repeated key in JSON text whose parse stopped at one."""
    # Per open container: the keys seen (None for an array), the pointer, the next item index.
    stack: list[tuple[set[str] | None, str, list[Any]]] = []
    for token, line, column in _json_tokens(text):
        first = token[0]
        if first in "]}":
            stack.pop()
        elif first == ",":
            seen, _, state = stack[-1]
            if seen is None:
                state[0] += 1
            else:
                state[1] = True
        elif first != ":":
            pointer = ""
            if stack:
                seen, parent, state = stack[-1]
                if seen is not None and state[1]:
                    key = json.loads(token)
                    state[0] = key
                    state[1] = False
                    if key in seen:
                        return _fail(
                            "document-duplicate-key",
                            f"duplicate key {key!r}",
                            name=name,
                            pointer=f"{parent}/{escape_token(key)}",
                            line=line,
                            column=column,
                        )
                    seen.add(key)
                    continue
                pointer = f"{parent}/{escape_token(state[0])}"
            if first == "{":
                stack.append((set(), pointer, ["", True]))
            elif first == "[":
                stack.append((None, pointer, [0]))
    return _fail("document-duplicate-key", "duplicate key", name=name)


# ---------------------------------------------------------------------------------------------
# YAML


class _PurePythonParser(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser):
    """PyYAML's event parser without composer or constructor."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)


class _EventSource(Protocol):
    def get_event(self) -> Any: ...
    def dispose(self) -> None: ...


_parser_factory: Callable[[str], _EventSource] = (
    yaml.CSafeLoader if yaml.__with_libyaml__ else _PurePythonParser
)

_CORE = "tag:yaml.org,2002:"
_STR, _NULL, _BOOL, _INT, _FLOAT = (_CORE + t for t in ("str", "null", "bool", "int", "float"))
_STRING_TAGS = frozenset(
    _CORE + t for t in ("str", "timestamp", "binary", "value", "yaml", "merge")
)
_TAG_TYPES: dict[str, type] = {_BOOL: bool, _INT: int, _FLOAT: float}

# The YAML 1.2 core schema (YAML 1.2.2, section 10.3): every other plain scalar is a string.
_CORE_CONSTANTS: dict[str, Any] = {
    **dict.fromkeys(("", "~", "null", "Null", "NULL")),
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("false", "False", "FALSE"), False),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
}
_LONGEST_CONSTANT = max(map(len, _CORE_CONSTANTS))
_CORE_INT = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_CORE_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_NUMBER_START = frozenset("0123456789+-.")

# A YAML 1.1 reader's view of a plain scalar: PyYAML's resolvers (those of yaml.SafeLoader, each
# filed under the characters its text can start with), and the YAML 1.1 booleans y, Y, n and N,
# which PyYAML reads as strings but other YAML 1.1 readers do not.
_YAML11_RESOLVERS: dict[str, tuple[tuple[str, re.Pattern[str]], ...]] = {
    first: tuple(resolvers)
    for first, resolvers in Resolver.yaml_implicit_resolvers.items()
    if first is not None
}
_YAML11_Y_N = frozenset("yYnN")
# The first characters of plain scalars that a YAML 1.2 or a YAML 1.1 reader may type.
_TYPED_START = frozenset(_YAML11_RESOLVERS) | _YAML11_Y_N | _NUMBER_START | set("~nNtTfF")
_YAML11_CONSTRUCTOR = SafeConstructor()
_YAML11_CONSTRUCT: dict[str, Callable[[ScalarNode], Any]] = {
    _INT: _YAML11_CONSTRUCTOR.construct_yaml_int,
    _FLOAT: _YAML11_CONSTRUCTOR.construct_yaml_float,
}


def _core_value(text: str) -> Any:
    """What the YAML 1.2 core schema reads plain scalar `text` as: None, a bool, an int, a
    float, or `text` itself.  ValueError for an integer with more digits than Python reads."""
    if len(text) <= _LONGEST_CONSTANT and text in _CORE_CONSTANTS:
        return _CORE_CONSTANTS[text]
    if text[:1] in _NUMBER_START:
        if _CORE_INT.fullmatch(text):
            prefix = text[:2]
            if prefix == "0o":
                return int(text[2:], 8)
            if prefix == "0x":
                return int(text[2:], 16)
            return int(text)
        if _CORE_FLOAT.fullmatch(text):
            return float(text)
    return text


def _yaml11_tag(text: str) -> str:
    """The tag a YAML 1.1 reader resolves plain scalar `text` to."""
    for tag, pattern in _YAML11_RESOLVERS.get(text[:1], ()):
        if pattern.match(text):
            return tag
    return _BOOL if text in _YAML11_Y_N else _STR


def _typed(text: str) -> bool:
    """Whether a YAML 1.2 (core schema) or a YAML 1.1 reader reads plain `text` as anything but
    a string."""
    return text[:1] in _TYPED_START and (
        (len(text) <= _LONGEST_CONSTANT and text in _CORE_CONSTANTS)
        or (
            text[:1] in _NUMBER_START
            and (_CORE_INT.fullmatch(text) is not None or _CORE_FLOAT.fullmatch(text) is not None)
        )
        or _yaml11_tag(text) != _STR
    )


def _yaml11_reads_alike(text: str, value: float) -> bool:
    """Whether a YAML 1.1 reader reads plain `text` as the number `value`, as YAML 1.2 does."""
    tag = _yaml11_tag(text)
    if tag != (_INT if type(value) is int else _FLOAT):
        return False
    try:
        other = _YAML11_CONSTRUCT[tag](ScalarNode(tag, text))
    except ValueError:
        return False
    return bool(
        other == value or (isinstance(other, float) and math.isnan(other) and math.isnan(value))
    )


class _PlainStr(str):
    """A string read from a plain scalar that a YAML 1.1 reader reads as something else
    (``on``, ``2024-01-01``, ``1_000``), or a plain mapping key that a reader would type
    (``200``, ``true``).  :func:`dump_document` writes it plain again."""

    __slots__ = ()


class _PlainInt(int):
    """An integer read from plain text that a YAML 1.1 reader reads otherwise (``0755``,
    ``0o17``).  :func:`dump_document` writes that text again."""

    text: str

    def __reduce__(self) -> tuple[Any, ...]:
        return _plain_number, (int(self), self.text)


class _PlainFloat(float):
    """A float read from plain text that a YAML 1.1 reader reads otherwise (``1e3``, ``-.5``).
    :func:`dump_document` writes that text again."""

    text: str

    def __reduce__(self) -> tuple[Any, ...]:
        return _plain_number, (float(self), self.text)


def _plain_number(value: float, text: str) -> _PlainInt | _PlainFloat:
    number = _PlainInt(value) if type(value) is int else _PlainFloat(value)
    number.text = text
    return number


_STYLED_TYPES = {_PlainStr: str, _PlainInt: int, _PlainFloat: float}


def _resolve_plain(text: str) -> Any:
    """The YAML 1.2 value of a plain scalar; styled (see _STYLED_TYPES) when a YAML 1.1 reader
    reads its text as something else."""
    value = _core_value(text)
    if value is text:
        return _PlainStr(text) if _yaml11_tag(text) != _STR else text
    if type(value) is int:
        digits = text.lstrip("+-")
        if digits[:1] != "0" or digits == "0" or _yaml11_reads_alike(text, value):
            return value
        return _plain_number(value, text)
    if type(value) is float and not _yaml11_reads_alike(text, value):
        return _plain_number(value, text)
    return value


_MERGE = object()
_NO_KEY = object()


class _Frame:
    """One open YAML collection while its events arrive."""

    __slots__ = (
        "anchor",
        "container",
        "key",
        "key_pos",
        "merges",
        "nodes_before",
        "positions",
        "start",
        "styled_inside",
        "styles",
    )

    def __init__(
        self, container: dict[str, Any] | list[Any], anchor: str | None, nodes: int, start: int
    ) -> None:
        self.container = container
        self.start = start
        self.positions: array[int] = array("Q")
        self.anchor = anchor
        self.nodes_before = nodes
        self.key: Any = _NO_KEY
        self.key_pos = 0
        self.merges: list[dict[str, Any]] | None = None
        self.styles: list[_Style] | None = None
        self.styled_inside = False

    def add_style(self, slot: str | int, style: Any, *, is_key: bool) -> None:
        if self.styles is None:
            self.styles = []
        self.styles.append((slot, style, is_key))


class _Anchor:
    __slots__ = ("key_style", "size", "source", "value", "value_style")

    def __init__(
        self,
        value: Any,
        source: str | None,
        size: int,
        value_style: Any = None,
        key_style: _PlainStr | None = None,
    ) -> None:
        self.value = value
        self.source = source
        self.size = size
        self.value_style = value_style
        self.key_style = key_style


def _tag_error(tag: str, name: str | None, pointer: str, mark: Any) -> DocumentError:
    kind = "unsafe" if tag.startswith(_CORE + "python/") else "unsupported"
    return _fail(
        "document-unsafe-tag",
        f"{kind} tag {tag!r}: only the JSON-compatible YAML core tags are allowed",
        name=name,
        pointer=pointer,
        line=mark.line + 1,
        column=mark.column + 1,
    )


class _UnknownTagError(Exception):
    """A scalar's explicit tag is not one of the core tags."""


def _resolve_scalar(event: ScalarEvent) -> Any:
    """The value of a scalar by the YAML 1.2 core schema (styled, see _resolve_plain), or _MERGE
    for a plain ``<<``.  ValueError when the text does not fit its explicit tag (or is an
    integer too long to read), _UnknownTagError for a tag outside the core ones."""
    tag = event.tag
    text = event.value
    if tag is None:
        if not event.implicit[0] or text[:1] not in _TYPED_START:
            return text  # quoted, a block scalar, or a plain string
        if text == "<<":
            return _MERGE
        return _resolve_plain(text)
    if tag == "!" or tag in _STRING_TAGS:
        return text
    if tag == _NULL:
        return None
    expected = _TAG_TYPES.get(tag)
    if expected is None:
        raise _UnknownTagError(tag)
    value = _core_value(text)
    if expected is float and type(value) is int and _CORE_FLOAT.fullmatch(text):
        value = float(text)
    if type(value) is not expected:
        raise ValueError(text)
    return value


def _parse_yaml(text: str, name: str | None, limits: Limits) -> tuple[Any, _Positions, _Styles]:
    composer = _YamlComposer(name, limits)
    parser: _EventSource | None = None
    try:
        parser = _parser_factory(text)
        return composer.compose(parser)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(part for part in (exc.context, exc.problem) if part)
        too_deep = "maximum nesting depth" in message  # libyaml's own depth limit
        raise _fail(
            "document-too-deep" if too_deep else "document-syntax",
            f"invalid YAML: {message}",
            name=name,
            pointer=composer.pointer(),
            line=mark.line + 1 if mark is not None else None,
            column=mark.column + 1 if mark is not None else None,
        ) from None
    except yaml.reader.ReaderError as exc:
        line, column = _line_column(text, exc.position)
        raise _fail(
            "document-syntax", f"invalid YAML: {exc.reason}", name=name, line=line, column=column
        ) from None
    except yaml.YAMLError as exc:
        raise _fail("document-syntax", f"invalid YAML: {exc}", name=name) from None
    finally:
        if parser is not None:
            parser.dispose()


class _YamlComposer:
    """Builds plain data from parser events with an explicit stack."""

    def __init__(self, name: str | None, limits: Limits) -> None:
        self.name = name
        self.limits = limits
        self.stack: list[_Frame] = []
        self.anchors: dict[str, _Anchor] = {}
        self.nodes = 0
        self.children: dict[int, array[int]] = {}
        self.styles: _Styles = {}

    def pointer(self, extra: str | None = None) -> str:
        parts = []
        for frame in self.stack:
            if isinstance(frame.container, list):
                parts.append(str(len(frame.container)))
            elif isinstance(frame.key, str):
                parts.append(escape_token(frame.key))
            elif frame.key is _MERGE:
                parts.append("<<")
        if extra is not None:
            parts.append(escape_token(extra))
        return "".join("/" + part for part in parts)

    def fail(self, rule: str, message: str, mark: Any, pointer: str | None = None) -> DocumentError:
        return _fail(
            rule,
            message,
            name=self.name,
            pointer=self.pointer() if pointer is None else pointer,
            line=mark.line + 1,
            column=mark.column + 1,
        )

    def compose(self, parser: _EventSource) -> tuple[Any, _Positions, _Styles]:
        get_event = parser.get_event
        get_event()  # StreamStartEvent
        if isinstance(get_event(), StreamEndEvent):
            raise _fail("document-empty", "the document is empty", name=self.name)
        stack = self.stack
        limits = self.limits
        root: Any = _NO_KEY
        root_pos = 0
        first_event: Event | None = None
        while root is _NO_KEY:
            event = get_event()
            if first_event is None:
                first_event = event
            mark = event.start_mark
            pos = _pack(mark.line + 1, mark.column + 1)
            source: str | None = None
            if isinstance(event, ScalarEvent):
                self.count(1, mark, alias=False)
                try:
                    value = _resolve_scalar(event)
                except _UnknownTagError as exc:
                    raise _tag_error(str(exc), self.name, self.pointer(), mark) from None
                except (ValueError, LookupError):  # KeyError, IndexError from SafeConstructor
                    raise self.bad_scalar(event) from None
                if (
                    event.style == '"'
                    and not event.value.isascii()
                    and _SURROGATE.search(event.value)
                ):
                    raise self.fail(
                        "document-encoding", "a string holds an unpaired surrogate escape", mark
                    )
                source = event.value
                style = None
                if value is not source:  # a typed or styled plain scalar, or a tagged one
                    is_key = (
                        stack and stack[-1].key is _NO_KEY and isinstance(stack[-1].container, dict)
                    )
                    if value is _MERGE and not is_key:
                        value = _PlainStr(source)  # a string, that YAML 1.1 reads as a merge
                    value_style = key_style = None
                    if type(value) in _STYLED_TYPES:
                        value_style = value
                        value = (
                            source
                            if type(value) is _PlainStr
                            else _STYLED_TYPES[type(value)](value)
                        )
                    if event.tag is None and value is not _MERGE and (is_key or event.anchor):
                        # a plain key that a reader would type: written plain again
                        key_style = (
                            value_style if type(value_style) is _PlainStr else _PlainStr(source)
                        )
                    style = key_style if is_key else value_style
                    if event.anchor is not None:
                        self.anchors[event.anchor] = _Anchor(
                            source if value is _MERGE else value, source, 1, value_style, key_style
                        )
                elif event.anchor is not None:
                    self.anchors[event.anchor] = _Anchor(value, source, 1)
            elif isinstance(event, MappingStartEvent | SequenceStartEvent):
                is_map = isinstance(event, MappingStartEvent)
                tag = event.tag
                if tag is not None and tag != "!" and tag != _CORE + ("map" if is_map else "seq"):
                    raise _tag_error(tag, self.name, self.pointer(), mark)
                if len(stack) >= limits.max_depth:
                    raise self.fail(
                        "document-too-deep",
                        f"nested deeper than the limit of {limits.max_depth}",
                        mark,
                    )
                if stack and stack[-1].key is _NO_KEY and isinstance(stack[-1].container, dict):
                    raise self.fail("document-complex-key", "a mapping key must be a scalar", mark)
                frame = _Frame({} if is_map else [], event.anchor, self.nodes, pos)
                self.count(1, mark, alias=False)
                stack.append(frame)
                if event.anchor is not None:
                    self.anchors.pop(event.anchor, None)
                continue
            elif isinstance(event, MappingEndEvent | SequenceEndEvent):
                frame = stack.pop()
                value = self.finish(frame)
                pos = frame.start
                style = None
                if stack and id(value) in self.styles:
                    stack[-1].styled_inside = True
                if frame.anchor is not None:
                    self.anchors[frame.anchor] = _Anchor(
                        value, None, self.nodes - frame.nodes_before
                    )
            elif isinstance(event, AliasEvent):
                anchor = self.anchors.get(event.anchor or "")
                if anchor is None:
                    open_anchor = any(frame.anchor == event.anchor for frame in stack)
                    raise self.fail(
                        "document-bad-alias",
                        f"alias *{event.anchor} refers to "
                        + ("a node that contains it" if open_anchor else "an undefined anchor"),
                        mark,
                    )
                self.count(anchor.size, mark, alias=True)
                value = anchor.value
                source = anchor.source
                style = anchor.value_style
                if stack and stack[-1].key is _NO_KEY and isinstance(stack[-1].container, dict):
                    style = anchor.key_style
                if stack and id(value) in self.styles:
                    stack[-1].styled_inside = True
            else:
                raise self.fail("document-syntax", f"unexpected {type(event).__name__}", mark)
            if stack:
                self.attach(stack[-1], value, source, pos, mark, style=style)
            else:
                root, root_pos = value, pos
        if (
            root is None
            and isinstance(first_event, ScalarEvent)
            and first_event.value == ""
            and first_event.tag is None
            and first_event.implicit[0]
        ):
            raise _fail("document-empty", "the document is empty", name=self.name)
        get_event()  # DocumentEndEvent
        event = get_event()
        if not isinstance(event, StreamEndEvent):
            mark = event.start_mark
            raise self.fail(
                "document-multiple-documents",
                "more than one YAML document: an AsyncAPI file holds one",
                mark,
                pointer="",
            )
        return root, _Positions(root=root_pos, children=self.children), self.styles

    def count(self, nodes: int, mark: Any, *, alias: bool) -> None:
        self.nodes += nodes
        if self.nodes > self.limits.max_nodes:
            if alias:
                raise self.fail(
                    "document-alias-bomb",
                    f"aliases expand to more than the limit of {self.limits.max_nodes} nodes",
                    mark,
                )
            raise self.fail(
                "document-too-large",
                f"more than the limit of {self.limits.max_nodes} nodes",
                mark,
            )

    def bad_scalar(self, event: ScalarEvent) -> DocumentError:
        text = event.value if len(event.value) <= 40 else event.value[:40] + "..."
        if event.tag is None:  # an integer, as the YAML 1.2 core schema reads it
            message = f"the integer {text!r} has too many digits ({len(event.value)}) to read"
        else:
            message = f"{text!r} is not a valid {event.tag.replace(_CORE, '!!')}"
        return self.fail("document-syntax", message, event.start_mark)

    def attach(
        self, frame: _Frame, value: Any, source: str | None, pos: int, mark: Any, *, style: Any
    ) -> None:
        """Add a node to the open collection; `style` is the node's styled value or key."""
        container = frame.container
        if isinstance(container, list):
            if style is not None:
                frame.add_style(len(container), style, is_key=False)
            container.append(value)
            frame.positions.append(pos)
            return
        key = frame.key
        if key is _NO_KEY:
            if value is _MERGE:
                if frame.merges is not None:
                    raise self.fail("document-duplicate-key", "duplicate merge key '<<'", mark)
                frame.merges = []
                frame.key = _MERGE
            elif source is None:
                raise self.fail("document-complex-key", "a mapping key must be a scalar", mark)
            elif source in container:
                raise self.fail(
                    "document-duplicate-key",
                    f"duplicate key {source!r}",
                    mark,
                    pointer=self.pointer(source),
                )
            else:
                frame.key = source
                if style is not None:
                    frame.add_style(source, style, is_key=True)
            frame.key_pos = pos
            return
        if key is _MERGE:
            sources = value if isinstance(value, list) else [value]
            if not sources or not all(isinstance(item, dict) for item in sources):
                raise self.fail(
                    "document-bad-merge",
                    "a merge key takes a mapping or a list of mappings",
                    mark,
                )
            for item in sources:
                self.count(len(item), mark, alias=True)
            frame.merges = sources
        else:
            container[key] = value
            frame.positions.append(frame.key_pos)
            if style is not None:
                frame.add_style(key, style, is_key=False)
        frame.key = _NO_KEY

    def finish(self, frame: _Frame) -> Any:
        container = frame.container
        positions = frame.positions
        styles = frame.styles
        if frame.merges and isinstance(container, dict):
            styles = self.merged_styles(frame)
            merged: dict[str, Any] = {}
            merged_pos: dict[str, int] = {}
            for source in reversed(frame.merges):
                source_positions = self.children.get(id(source), array("Q"))
                for index, (key, value) in enumerate(source.items()):
                    merged[key] = value
                    if index < len(source_positions):
                        merged_pos[key] = source_positions[index]
            for index, (key, value) in enumerate(container.items()):
                merged[key] = value
                merged_pos[key] = positions[index]
            container = merged
            positions = array("Q", (merged_pos.get(key, frame.key_pos) for key in merged))
        self.children[id(container)] = positions
        if styles or frame.styled_inside:
            self.styles[id(container)] = (container, tuple(styles or ()))
        return container

    def merged_styles(self, frame: _Frame) -> list[_Style] | None:
        """The styled members of a mapping with merge keys: its own, and those of each merged
        mapping for the keys it gives (the mapping's own keys first, then earlier mappings')."""
        styles = frame.styles
        merges = frame.merges or []
        for source in merges:
            listed = self.styles.get(id(source))
            if listed is None:
                continue
            frame.styled_inside = True
            givers = (frame.container, *merges)
            styles = [
                *(styles or ()),
                *(e for e in listed[1] if next(g for g in givers if e[0] in g) is source),
            ]
        return styles


# ---------------------------------------------------------------------------------------------
# From data, to text


def _plain_scalar(value: Any, *, styled: bool) -> Any:
    """The plain JSON scalar equal to `value` (`value` itself when `styled` and it is one of
    SourceDocument.styled_data's); raises TypeError for anything else."""
    if value is None or value is True or value is False:
        return value
    if styled and type(value) in _STYLED_TYPES:
        return value
    if isinstance(value, str):
        if not value.isascii() and _SURROGATE.search(value):
            raise TypeError("a string with an unpaired surrogate")
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    raise TypeError(f"a {type(value).__name__}")


def document_from_data(data: Mapping[str, Any], *, name: str | None = None) -> SourceDocument:
    """A document for data built in memory: a deep copy as plain JSON data, without positions
    (``locate`` gives None), with format "yaml".

    Mappings become dicts and lists/tuples lists; anything else that is not JSON data, a cycle
    or nesting deeper than ``DEFAULT_LIMITS.max_depth`` raises ``document-unrepresentable``.
    """
    return SourceDocument(data=_plain(data, name, styled=False), name=name, uri=None, format="yaml")


def _plain(data: Any, name: str | None, *, styled: bool) -> Any:
    max_depth = DEFAULT_LIMITS.max_depth
    result: list[Any] = []
    # Per open container: the source's items still to copy, the copy, its id, its pointer.
    stack: list[tuple[Iterator[tuple[Any, Any]], dict[str, Any] | list[Any], int, str]] = []
    open_ids: set[int] = set()
    todo: list[tuple[Any, Any]] = [(None, data)]
    items: Iterator[tuple[Any, Any]] = iter(todo)
    target: dict[str, Any] | list[Any] = result
    pointer = ""
    while True:
        for key, value in items:
            here = pointer if not stack else f"{pointer}/{escape_token(key)}"
            slot = key
            if stack and isinstance(target, dict):
                if not isinstance(key, str):
                    raise _unrepresentable(f"a {type(key).__name__} mapping key", here, name)
                if type(key) is not str and not (styled and type(key) is _PlainStr):
                    slot = str.__str__(key)
            if isinstance(value, Mapping | list | tuple):
                if id(value) in open_ids:
                    raise _unrepresentable("a cycle", here, name)
                if len(stack) >= max_depth:
                    raise _unrepresentable(f"nesting deeper than {max_depth}", here, name)
                copy: dict[str, Any] | list[Any] = {} if isinstance(value, Mapping) else []
                _store(target, slot, copy)
                stack.append((items, target, id(value), pointer))
                open_ids.add(id(value))
                items = iter(value.items()) if isinstance(value, Mapping) else enumerate(value)
                target, pointer = copy, here
                break
            try:
                _store(target, slot, _plain_scalar(value, styled=styled))
            except TypeError as exc:
                raise _unrepresentable(str(exc.args[0]), here, name) from None
        else:
            if not stack:
                return result[0]
            items, target, container_id, pointer = stack.pop()
            open_ids.discard(container_id)


def _store(target: dict[str, Any] | list[Any], key: Any, value: Any) -> None:
    if isinstance(target, dict):
        target[key] = value
    else:
        target.append(value)


def _unrepresentable(what: str, pointer: str, name: str | None) -> DocumentError:
    problem = Problem(
        pointer=pointer,
        message=f"{what} is not JSON data",
        rule="document-unrepresentable",
        file=name,
    )
    return DocumentError(f"cannot represent the data: {what} is not JSON data", [problem])


def dump_document(data: Any, fmt: str = "yaml") -> str:
    """YAML (block style, keys in order, unicode kept, lines not folded) or JSON (indent 2)
    text for JSON data that :func:`parse_document` reads back equal."""
    plain = _plain(data, None, styled=fmt == "yaml")
    if fmt == "json":
        try:
            return json.dumps(plain, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
        except ValueError:
            raise _unrepresentable("a NaN or infinite number", "", None) from None
    if fmt != "yaml":
        raise ValueError(f"unknown document format {fmt!r}: 'yaml' or 'json'")
    text: str = yaml.emit(_yaml_events(plain), Dumper=_DUMPER, allow_unicode=True, width=_UNFOLDED)
    if _DUMPER is not yaml.SafeDumper and _ASTRAL.search(text):
        # libyaml escapes characters beyond the Basic Multilingual Plane (emoji) and gives up
        # literal blocks for them; PyYAML's own emitter writes them as they are.  Its output is
        # used only when it reads back equal, as the C emitter's always does.
        readable: str = yaml.emit(
            _yaml_events(plain), Dumper=yaml.SafeDumper, allow_unicode=True, width=_UNFOLDED
        )
        try:
            if parse_document(readable).data == plain:
                return readable
        except DocumentError:
            pass  # PyYAML's emitter garbled it (a NEL in a key, say): libyaml's text stands
    return text


_DUMPER = yaml.CSafeDumper if yaml.__with_libyaml__ else yaml.SafeDumper
_UNFOLDED = 2**31 - 1
_ASTRAL = re.compile(r"\\U[0-9A-F]{8}")


def _scalar_event(value: Any, *, key: bool = False) -> ScalarEvent:
    """A scalar as both YAML 1.2 and YAML 1.1 readers read it: a string that either would read
    as another type is quoted, unless it was read plain (see SourceDocument.styled_data)."""
    if isinstance(value, str):
        style = "|" if "\n" in value and not key else None
        if type(value) is _PlainStr:
            return ScalarEvent(None, _STR, (True, True), str.__str__(value), style=style)
        return ScalarEvent(None, _STR, (not _typed(value), True), value, style=style)
    if value is None:
        return ScalarEvent(None, _NULL, (True, False), "null")
    if isinstance(value, bool):
        return ScalarEvent(None, _BOOL, (True, False), "true" if value else "false")
    if isinstance(value, int):
        text = value.text if type(value) is _PlainInt else str(value)
        return ScalarEvent(None, _INT, (True, False), text)
    if type(value) is _PlainFloat:
        return ScalarEvent(None, _FLOAT, (True, False), value.text)
    if math.isnan(value):
        text = ".nan"
    elif math.isinf(value):
        text = ".inf" if value > 0 else "-.inf"
    else:
        text = repr(value).lower()
        if "." not in text and "e" in text:
            text = text.replace("e", ".0e", 1)
    return ScalarEvent(None, _FLOAT, (_yaml11_tag(text) == _FLOAT, False), text)


def _yaml_events(data: Any) -> Iterator[Event]:
    """The events of plain JSON data, without recursion."""
    yield StreamStartEvent()
    yield DocumentStartEvent(explicit=False)
    stack: list[tuple[Iterator[tuple[str | None, Any]], type[Event]]] = []
    items: Iterator[tuple[str | None, Any]] = iter(((None, data),))
    while True:
        for key, value in items:
            if key is not None:
                yield _scalar_event(key, key=True)
            if isinstance(value, dict):
                yield MappingStartEvent(None, None, True, flow_style=False)
                stack.append((items, MappingEndEvent))
                items = iter(value.items())
                break
            if isinstance(value, list):
                yield SequenceStartEvent(None, None, True, flow_style=False)
                stack.append((items, SequenceEndEvent))
                items = ((None, item) for item in value)
                break
            yield _scalar_event(value)
        else:
            if not stack:
                break
            items, end = stack.pop()
            yield end()
    yield DocumentEndEvent(explicit=False)
    yield StreamEndEvent()
