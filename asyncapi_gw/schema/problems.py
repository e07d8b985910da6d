"""jsonschema's errors as :class:`Problem`\\ s: which failure explains each error, and its words.

A ``oneOf``/``anyOf`` that no branch satisfies is explained by the failures of the branch the
author evidently meant, never by "is not valid under any of the given schemas".  The branches
are ranked by how badly the value misfits each, the first measure deciding:

1. the value is not even of the branch's type;
2. the branch declares none of the object's keys; worst, when the keys it declares are all
   required and all absent (a Reference Object's ``$ref``, the message list's ``oneOf``);
3. discriminators the branch refuses: a key (or the value itself) that the branch pins to one
   value, such as ``type: apiKey`` or ``is: routingKey``, picks its branch;
4. the most of the object's keys the branch declares;
5. required properties missing, then other values refused, then properties not allowed;
6. the fewest failures at the object itself, then the fewest failures.

Branches that rank equal and fail alike are one explanation.  When they fail differently, what
they have in common is reported; else their failures merged when each is one of a kind (a type,
a value, a required property); else every branch's failures, listed.  A value that every branch
refuses (for the same key) is reported with the values all branches allow.

A message never names where its failure is (the pointer does), so a shared node's problem
reads the same wherever the node is used.  Document values are written as JSON
(:func:`asyncapi_gw.errors.json_excerpt`), never as Python.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import jsonschema.exceptions

from asyncapi_gw.errors import Problem, json_excerpt
from asyncapi_gw.pointers import escape_token
from asyncapi_gw.schema.patterns import python_regex

__all__ = ["extra_keys", "problems_from_errors"]

_Error = jsonschema.exceptions.ValidationError

_VALUE_LIMIT = 80
_CHOICES_LIMIT = 240
_MESSAGE_LIMIT = 300
_ALTERNATIVES = ("oneOf", "anyOf")
# A value that every branch refuses, reported with the values of all branches.
_ANY_VALUE = "enum (of every branch)"
_VALUE_SETS = ("const", "enum", _ANY_VALUE)
# The failure of a branch merged from several branches each missing one required property.
_ANY_REQUIRED = "required (any one of)"
# Schema keywords whose value is a map of names to schemas: a token after one is a name.
_NAME_MAPS = frozenset({"properties", "patternProperties", "definitions", "dependencies"})


def problems_from_errors(
    errors: Iterable[_Error],
    *,
    pointer: str,
    rule: str,
    ignore: Callable[[_Error], bool] | None = None,
) -> list[Problem]:
    """One problem per distinct failure explaining ``errors``, shallowest first; ``pointer`` is
    where the validated value sits in the document.  A failure for which ``ignore`` is true
    explains nothing (an error that only such failures explain gives no problem)."""
    explainer = _Explainer()
    culprits = [
        culprit
        for error in errors
        for culprit in explainer.culprits(error)
        if ignore is None or not ignore(culprit)
    ]
    # A value of the wrong type also "matches" a ``not`` about properties it cannot have.
    mistyped = {tuple(c.absolute_path) for c in culprits if c.validator == "type"}
    culprits = [
        c for c in culprits if c.validator != "not" or tuple(c.absolute_path) not in mistyped
    ]
    culprits.sort(key=_order)
    problems: list[Problem] = []
    seen: set[tuple[str, object]] = set()
    for culprit in culprits:
        base = pointer + "".join(f"/{escape_token(p)}" for p in culprit.absolute_path)
        for suffix, text in explainer.texts(culprit):
            key = (base + suffix, _substance(culprit, text))
            if key in seen:
                continue
            seen.add(key)
            problems.append(Problem(pointer=base + suffix, message=_cut(text), rule=rule))
    return problems


def _cut(text: str) -> str:
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"


def _order(error: _Error) -> tuple[int, bool, list[str]]:
    return (
        len(error.absolute_path),
        error.validator in jsonschema.exceptions.WEAK_MATCHES,
        [str(p) for p in error.absolute_path],
    )


def _substance(error: _Error, text: str) -> object:
    """What a failure says: the allowed values of a ``const``/``enum`` (in any order), else its
    words; two failures saying the same at one place are one problem."""
    if error.validator in _VALUE_SETS:
        return frozenset(json.dumps(v, sort_keys=True, default=str) for v in _allowed(error))
    return text


class _Explainer:
    """The explanations and words of one validation's errors.

    A failure deep in a ``oneOf`` is weighed at every enclosing ``oneOf``: what is worked out
    about an error or a branch's schema is kept for the duration of the call (the errors and
    schemas stay alive meanwhile, so their ids are theirs).
    """

    def __init__(self) -> None:
        self._alternatives: dict[int, tuple[_Error, list[list[_Error]] | None]] = {}
        self._texts: dict[int, tuple[_Error, list[tuple[str, str]]]] = {}
        self._declared: dict[int, tuple[Any, tuple[set[str], list[str], set[str]]]] = {}

    # -- which failures explain an error -----------------------------------------------------
    def culprits(self, error: _Error) -> list[_Error]:
        """The failures that explain ``error``: itself, or those of the branch(es) meant."""
        alternatives = self.alternatives(error)
        if alternatives is None:
            return [error]
        first, *others = alternatives
        keys = [self._identity(e) for e in first]
        said = [[self._identity(e) for e in other] for other in others]
        if all(other == keys for other in said):
            return first
        shared = [
            e for e, key in zip(first, keys, strict=True) if all(key in other for other in said)
        ]
        if shared:
            return shared
        merged = _merged(alternatives)
        return [merged] if merged is not None else [error]

    def alternatives(self, error: _Error) -> list[list[_Error]] | None:
        """The explained failures of each best-ranked branch of a failed ``oneOf``/``anyOf``;
        ``None`` for another error (or a ``oneOf`` that more than one branch satisfies)."""
        if error.validator not in _ALTERNATIVES or not error.context:
            return None
        kept = self._alternatives.get(id(error))
        if kept is not None and kept[0] is error:
            return kept[1]
        branches: dict[object, list[_Error]] = {}
        for failure in error.context:
            index = failure.relative_schema_path[0] if failure.relative_schema_path else None
            branches.setdefault(index, []).extend(self.culprits(failure))
        options = error.validator_value if isinstance(error.validator_value, list) else []
        schemas = {
            index: options[index] if isinstance(index, int) and index < len(options) else None
            for index in branches
        }
        depth = len(error.absolute_path)
        misfits = {
            index: self._misfit(error.instance, schemas[index], failures, depth)
            for index, failures in branches.items()
        }
        best = min(misfits.values())
        found = [
            self._widened(failures, branches, schemas, depth)
            for index, failures in branches.items()
            if misfits[index] == best
        ]
        self._alternatives[id(error)] = (error, found)
        return found

    def _misfit(
        self, instance: Any, schema: Any, failures: Sequence[_Error], depth: int
    ) -> tuple[int, ...]:
        """How badly ``instance`` fits a branch that fails with ``failures`` (lower fits
        better)."""
        wrong_type = discriminators = refused = missing = unknown = at_root = 0
        for failure in failures:
            relative = len(failure.absolute_path) - depth
            keyword = failure.validator
            if _discriminates(failure, depth):
                discriminators += 1
            elif relative <= 1 and keyword in _VALUE_SETS:
                refused += 1
            if relative:
                continue
            at_root += 1
            if keyword == "type" or keyword is None:
                wrong_type += 1
            elif keyword in ("required", _ANY_REQUIRED):
                missing += 1
            elif keyword == "additionalProperties":
                unknown += max(1, len(extra_keys(failure)))
            elif keyword == "not":
                unknown += 1
        known = self._known_keys(instance, schema)
        # A branch that knows none of the keys was not meant, least of all one that is known by
        # keys it requires and declares alone (a Reference Object's $ref) which are absent.
        unmeant = 0
        if isinstance(instance, Mapping) and instance and not known:
            names, _, required = self._declarations(schema)
            unmeant = 2 if names and names <= required else 1
        return (
            wrong_type,
            unmeant,
            discriminators,
            -known,
            missing,
            refused,
            unknown,
            at_root,
            len(failures),
        )

    def _known_keys(self, instance: Any, schema: Any) -> int:
        """How many keys of ``instance`` the branch ``schema`` declares."""
        if not isinstance(instance, Mapping):
            return 0
        names, patterns, _ = self._declarations(schema)
        return sum(
            1
            for key in instance
            if key in names or any(re.search(python_regex(p), str(key)) for p in patterns)
        )

    def _declarations(self, schema: Any) -> tuple[set[str], list[str], set[str]]:
        """The property names and patterns ``schema`` declares (``properties`` and
        ``patternProperties``, through ``$ref``, ``allOf``, ``anyOf``, ``oneOf``, ``then`` and
        ``else``), and the names it requires whatever the alternatives (through ``$ref`` and
        ``allOf``)."""
        kept = self._declared.get(id(schema))
        if kept is not None and kept[0] is schema:
            return kept[1]
        names: set[str] = set()
        patterns: list[str] = []
        required: set[str] = set()
        seen: set[int] = set()
        pending: list[tuple[Any, bool]] = [(schema, True)]
        while pending:
            node, always = pending.pop()
            if not isinstance(node, Mapping) or id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node.get("properties"), Mapping):
                names.update(node["properties"])
            if isinstance(node.get("patternProperties"), Mapping):
                patterns.extend(p for p in node["patternProperties"] if isinstance(p, str))
            if always and isinstance(node.get("required"), list):
                required.update(str(name) for name in node["required"])
            # ``$ref`` is inlined by the bundle's registry (else a URI: nothing to follow).
            pending.extend(
                (child, always) for child in (node.get("$ref"), *_listed_schemas(node, "allOf"))
            )
            pending.extend(
                (child, False)
                for child in (
                    *_listed_schemas(node, "anyOf"),
                    *_listed_schemas(node, "oneOf"),
                    node.get("then"),
                    node.get("else"),
                )
            )
        declared = (names, patterns, required)
        self._declared[id(schema)] = (schema, declared)
        return declared

    def _widened(
        self,
        failures: list[_Error],
        branches: Mapping[object, list[_Error]],
        schemas: Mapping[object, Any],
        depth: int,
    ) -> list[_Error]:
        """``failures`` with each refused value (of the object or one of its keys) that every
        branch refuses reported with the values of all branches."""
        out: list[_Error] = []
        for failure in failures:
            relative = len(failure.absolute_path) - depth
            allowed = None
            if failure.validator in _VALUE_SETS and relative <= 1:
                allowed = self._allowed_everywhere(failure, branches, schemas, relative)
            if allowed is not None and len(allowed) > len(_allowed(failure)):
                out.append(
                    _Error(
                        "",
                        validator=_ANY_VALUE,
                        validator_value=allowed,
                        instance=failure.instance,
                        path=failure.absolute_path,
                    )
                )
            else:
                out.append(failure)
        return out

    def _allowed_everywhere(
        self,
        failure: _Error,
        branches: Mapping[object, list[_Error]],
        schemas: Mapping[object, Any],
        relative: int,
    ) -> list[Any] | None:
        """The values the branches allow for the value ``failure`` refuses, when every branch
        refuses it (or, for a key, does not declare that key); else ``None``.  A branch that
        also refuses a discriminator elsewhere is another variant: its values for this one are
        not offered."""
        path = tuple(failure.absolute_path)
        depth = len(path) - relative
        allowed: list[Any] = []
        for index, others in branches.items():
            refusals = [
                o for o in others if o.validator in _VALUE_SETS and tuple(o.absolute_path) == path
            ]
            if not refusals:
                if relative == 0 or self._known_keys({path[-1]: None}, schemas[index]):
                    return None  # this branch takes the value
                continue
            if any(_discriminates(o, depth) and tuple(o.absolute_path) != path for o in others):
                continue
            for refusal in refusals:
                allowed.extend(v for v in _allowed(refusal) if v not in allowed)
        return allowed

    def _identity(self, error: _Error) -> tuple[object, ...]:
        return (tuple(error.absolute_path), *self.texts(error))

    # -- what a failure says -----------------------------------------------------------------
    def texts(self, error: _Error) -> list[tuple[str, str]]:
        """(suffix to the error's pointer, message) pairs for one failure.

        A message does not name where the failure is: the pointer does.  (The same words then
        fit every place a shared node is used, and the place where it is written.)"""
        kept = self._texts.get(id(error))
        if kept is not None and kept[0] is error:
            return kept[1]
        texts = self._keyword_texts(error)
        if isinstance(error.instance, str) and _names_a_key(error):
            key = escape_token(error.instance)
            texts = [(f"/{key}", f"the name {text}") for _, text in texts]
        self._texts[id(error)] = (error, texts)
        return texts

    def _keyword_texts(self, error: _Error) -> list[tuple[str, str]]:
        if error.validator in _ALTERNATIVES:
            return [("", self._alternatives_text(error))]
        return _keyword_texts(error)

    def _alternatives_text(self, error: _Error) -> str:
        shown = _value(error.instance)
        alternatives = self.alternatives(error)
        if alternatives is None:
            return (
                f'{shown} matches more than one of the schemas of "{error.validator}"; '
                "it must match exactly one"
            )
        depth = len(error.absolute_path)
        reasons = []
        for failures in alternatives:
            parts = []
            for failure in failures:
                where = "/".join(_label(p) for p in list(failure.absolute_path)[depth:])
                for _, text in self.texts(failure):
                    parts.append(f"{where}: {text}" if where else text)
            reasons.append(", ".join(parts))
        return f'{shown} matches none of the schemas of "{error.validator}": ' + "; or ".join(
            reasons
        )


# -- kinds of failures ------------------------------------------------------------------------
def _discriminates(failure: _Error, depth: int) -> bool:
    """Whether ``failure`` refuses a discriminator of the object at ``depth``: the object, or one
    of its keys, is pinned to one value (or to the values of every branch)."""
    keyword = failure.validator
    return (
        keyword in _VALUE_SETS
        and len(failure.absolute_path) - depth <= 1
        and (keyword != "enum" or len(_allowed(failure)) == 1)
    )


def _merged(alternatives: list[list[_Error]]) -> _Error | None:
    """One failure for branches that each fail once, at the object, by one kind of keyword."""
    if not all(len(failures) == 1 for failures in alternatives):
        return None
    failures = [failures[0] for failures in alternatives]
    first = failures[0]
    if any(len(f.absolute_path) != len(first.absolute_path) for f in failures):
        return None
    kinds = {f.validator for f in failures}
    path, instance = first.absolute_path, first.instance
    if kinds == {"type"}:
        types = [t for f in failures for t in _listed(f.validator_value)]
        return _Error(
            "",
            validator="type",
            validator_value=list(dict.fromkeys(types)),
            instance=instance,
            path=path,
        )
    if kinds <= set(_VALUE_SETS):
        values: list[Any] = []
        for f in failures:
            values.extend(v for v in _allowed(f) if v not in values)
        return _Error("", validator="enum", validator_value=values, instance=instance, path=path)
    if kinds <= {"required", _ANY_REQUIRED}:
        names = [n for f in failures for n in _missing(f)]
        return _Error(
            "",
            validator=_ANY_REQUIRED,
            validator_value=list(dict.fromkeys(names)),
            instance=instance,
            path=path,
        )
    return None


def _keyword_texts(error: _Error) -> list[tuple[str, str]]:
    """The words of a failure of any keyword but ``oneOf``/``anyOf``."""
    keyword, value, instance = error.validator, error.validator_value, error.instance
    shown = _value(instance)
    if keyword is None:  # the schema ``false`` (jsonschema gives it no path of its own)
        return [("", f"{shown} is not allowed here")]
    if keyword == "additionalProperties":
        context = _selector(error)
        known = (
            list(error.schema.get("properties", {})) if isinstance(error.schema, Mapping) else []
        )
        return [
            (
                f"/{escape_token(name)}",
                f"property {_quote(name)} is not allowed here{context}{_suggestion(name, known)}",
            )
            for name in extra_keys(error)
        ] or [("", f"{shown} has properties that are not allowed here")]
    if keyword == "required":
        context = _selector(error)
        return [
            ("", f"required property {_quote(name)} is missing{context}")
            for name in _missing(error)
        ] or [("", "a required property is missing")]
    if keyword == _ANY_REQUIRED:
        names = " or ".join(_quote(name) for name in _listed(value))
        return [("", f"required property {names} is missing")]
    if keyword == "not":
        return _not_texts(error)
    if keyword == "dependencies":
        return [
            ("", f"property {_quote(each)} is required when {_quote(name)} is present")
            for name, each in _missing_dependencies(error)
        ]
    return [("", _value_text(str(keyword), value, instance, shown, error))]


def _value_text(keyword: str, value: Any, instance: Any, shown: str, error: _Error) -> str:
    if keyword == "type":
        return f"{shown} is not of type " + " or ".join(_quote(t) for t in _listed(value))
    if keyword == "const":
        return f"{_value(value)} was expected, not {shown}"
    if keyword in ("enum", _ANY_VALUE):
        return f"{shown} is not one of {_choices(_allowed(error))}" + _suggestion(
            instance, [v for v in _allowed(error) if isinstance(v, str)]
        )
    if keyword == "format":
        return f"{shown} is not a valid {_quote(value)}"
    if keyword == "pattern":
        return f"{shown} does not match the pattern {_quote(value)}"
    bounds = {
        "minLength": ("is shorter than", "character"),
        "maxLength": ("is longer than", "character"),
        "minItems": ("has fewer than", "item"),
        "maxItems": ("has more than", "item"),
        "minProperties": ("has fewer than", "property"),
        "maxProperties": ("has more than", "property"),
    }
    if keyword in bounds:
        verb, unit = bounds[keyword]
        return f"{shown} {verb} {_count(value, unit)}"
    limits = {
        "minimum": "is less than the minimum of",
        "maximum": "is greater than the maximum of",
        "exclusiveMinimum": "is not greater than the exclusive minimum of",
        "exclusiveMaximum": "is not less than the exclusive maximum of",
        "multipleOf": "is not a multiple of",
    }
    if keyword in limits:
        return f"{shown} {limits[keyword]} {_value(value)}"
    if keyword == "uniqueItems":
        return f"{shown} has the item {_value(_repeated(instance))} more than once"
    if keyword == "contains":
        return f'{shown} has no item that matches the schema of "contains"'
    if keyword == "additionalItems":
        items = error.schema.get("items") if isinstance(error.schema, Mapping) else None
        return (
            f"{shown} has more than {_count(len(items) if isinstance(items, list) else 0, 'item')}"
        )
    return str(error.message)  # pragma: no cover - every draft-07 keyword is worded above


def _not_texts(error: _Error) -> list[tuple[str, str]]:
    """``not: {required: [...]}`` forbids those properties; another ``not`` is worded as is."""
    forbidden = error.validator_value
    instance = error.instance
    if (
        isinstance(forbidden, Mapping)
        and set(forbidden) == {"required"}
        and isinstance(forbidden["required"], list)
        and isinstance(instance, Mapping)
    ):
        context = _selector(error)
        present = [name for name in forbidden["required"] if name in instance]
        if present:
            return [
                (
                    f"/{escape_token(str(name))}",
                    f"property {_quote(name)} is not allowed here{context}",
                )
                for name in present
            ]
    return [("", f'{_value(instance)} matches the schema of "not", which it must not')]


def _names_a_key(error: _Error) -> bool:
    """Whether ``error`` is about a key of an object (the subject of ``propertyNames``)."""
    path = list(error.absolute_schema_path)
    return any(
        keyword == "propertyNames" and (i == 0 or path[i - 1] not in _NAME_MAPS)
        for i, keyword in enumerate(path)
    )


def _selector(error: _Error) -> str:
    """For a failure of the branch an alternative chose: `` (for type: "apiKey")``, the keys
    whose value picked it; else nothing."""
    parent, schema, instance = error.parent, error.schema, error.instance
    if (
        parent is None
        or parent.validator not in _ALTERNATIVES
        or error.relative_path
        or not isinstance(schema, Mapping)
        or not isinstance(instance, Mapping)
    ):
        return ""
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return ""
    picked = []
    for name, sub in properties.items():
        if not isinstance(sub, Mapping) or name not in instance:
            continue
        fixed = sub.get("enum") if "const" not in sub else [sub["const"]]
        if isinstance(fixed, list) and len(fixed) == 1 and _same(fixed[0], instance[name]):
            picked.append(f"{_label(name)}: {_value(instance[name])}")
    return f" (for {', '.join(picked)})" if picked else ""


def _same(a: Any, b: Any) -> bool:
    """JSON equality: ``true`` is not ``1``."""
    return (type(a) is type(b) and a == b) or (
        isinstance(a, (int, float))
        and isinstance(b, (int, float))
        and not isinstance(a, bool)
        and not isinstance(b, bool)
        and a == b
    )


# -- pieces of failures --------------------------------------------------------------------
def extra_keys(error: _Error) -> list[str]:
    """The keys of the object an ``additionalProperties`` failure is about that its schema
    neither names nor matches by pattern."""
    schema, instance = error.schema, error.instance
    if not isinstance(schema, Mapping) or not isinstance(instance, Mapping):
        return []
    known = schema.get("properties", {})
    patterns = [p for p in schema.get("patternProperties", {}) if isinstance(p, str)]
    return [
        str(name)
        for name in instance
        if name not in known and not any(re.search(python_regex(p), str(name)) for p in patterns)
    ]


def _missing(error: _Error) -> list[str]:
    if error.validator == _ANY_REQUIRED:
        return [str(n) for n in _listed(error.validator_value)]
    instance = error.instance
    if not isinstance(instance, Mapping):
        return []
    return [str(n) for n in _listed(error.validator_value) if n not in instance]


def _missing_dependencies(error: _Error) -> Iterator[tuple[str, str]]:
    instance, dependencies = error.instance, error.validator_value
    if not isinstance(instance, Mapping) or not isinstance(dependencies, Mapping):
        return
    for name, needed in dependencies.items():
        if name in instance and isinstance(needed, list):
            for each in needed:
                if each not in instance:
                    yield str(name), str(each)


def _allowed(error: _Error) -> list[Any]:
    if error.validator == "const":
        return [error.validator_value]
    return list(error.validator_value) if isinstance(error.validator_value, list) else []


def _listed_schemas(schema: Mapping[str, Any], keyword: str) -> list[Any]:
    value = schema.get(keyword)
    return value if isinstance(value, list) else []


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _repeated(items: Any) -> Any:
    seen: list[str] = []
    for item in items if isinstance(items, list) else []:
        text = json.dumps(item, sort_keys=True, default=str)
        if text in seen:
            return item
        seen.append(text)
    return None  # pragma: no cover - uniqueItems failed, so an item repeats


# -- words -----------------------------------------------------------------------------------
def _value(value: Any) -> str:
    return json_excerpt(value, _VALUE_LIMIT)


def _choices(values: list[Any]) -> str:
    return json_excerpt(values, _CHOICES_LIMIT)


def _quote(name: Any) -> str:
    return json.dumps(str(name), ensure_ascii=False)


def _label(token: Any) -> str:
    """A key or index as a message names it: plain when it reads unambiguously, else quoted."""
    text = str(token)
    return text if re.fullmatch(r"[\w$.\-]+", text) else _quote(text)


def _count(number: Any, unit: str) -> str:
    plural = "properties" if unit == "property" else f"{unit}s"
    return f"{_value(number)} {unit if number == 1 else plural}"


def _suggestion(given: Any, known: Sequence[Any]) -> str:
    """``; did you mean "x"?`` for a close spelling of one of several known names, else
    nothing."""
    if not isinstance(given, str) or len(known) < 2:
        return ""
    close = _close_spelling(given, tuple(str(k) for k in known if k != given))
    return f"; did you mean {_quote(close)}?" if close is not None else ""


@functools.lru_cache(maxsize=1024)
def _close_spelling(given: str, known: tuple[str, ...]) -> str | None:
    # A shared mistake is worded at every use of the object; difflib is slow enough to matter.
    close = difflib.get_close_matches(given, known, n=1)
    return close[0] if close else None
