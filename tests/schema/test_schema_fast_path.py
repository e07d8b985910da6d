"""The optional jsonschema-rs fast path never passes a document that jsonschema refuses, against
the schema of every version, in both forms (for a resolved document and as written)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncapi_gw import documents
from asyncapi_gw.errors import AsyncAPIGwError
from asyncapi_gw.schema import VALIDATION_VERSIONS, resolve_refs, validation

pytest.importorskip("jsonschema_rs")

FIXTURES = sorted(
    p
    for p in (Path(__file__).resolve().parents[2] / "fixtures").rglob("*")
    if p.suffix in (".yaml", ".json")
)


def slow_problems(data: Any, version: str, resolved: bool = True) -> list[Any]:
    return validation._run(
        validation._document_validator(version, resolved),
        data,
        pointer="",
        rule="asyncapi-schema",
        what="the document",
        memoize=True,
    )


def check(data: Any) -> None:
    """The fast verdicts of validate_asyncapi (resolved) and misplaced_refs (as written)."""
    version = data.get("asyncapi") if isinstance(data, dict) else None
    if version not in VALIDATION_VERSIONS:
        return
    if validation._fast_resolved_valid(version, data):
        assert slow_problems(data, version) == []
    if validation._fast_valid(validation._fast_document_validator(version), data):
        assert slow_problems(data, version, resolved=False) == []


def resolved(path: Path) -> Any:
    doc = documents.read_document(path)
    return resolve_refs(doc, load=documents.read_document, allow_outside=True).data


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_fixtures(path: Path) -> None:
    try:
        data = resolved(path)
    except AsyncAPIGwError:
        pytest.skip("not a readable document")
    check(data)


def test_the_bundled_meta_schema_decides() -> None:
    """jsonschema-rs's built-in draft-07 meta-schema accepts ``enum: []``; the bundle's does not."""
    doc = {
        "asyncapi": "2.6.0",
        "info": {"title": "t", "version": "1"},
        "channels": {"/a": {"subscribe": {"message": {"payload": {"enum": []}}}}},
    }
    assert not validation._fast_valid(validation._fast_document_validator("2.6.0"), doc)
    assert slow_problems(doc, "2.6.0")


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def mutate(node: Any, data: st.DataObject) -> Any:
    if not isinstance(node, (dict, list)) or not node or data.draw(st.integers(0, 4)) == 0:
        return data.draw(
            JSON
            | st.sampled_from(
                ["", "x-a", "ws", "2.6.0", {"$ref": "#/x"}, {"type": "string"}, {"enum": []}]
            )
        )
    if isinstance(node, dict):
        key = data.draw(st.sampled_from(sorted(node)))
        copy = dict(node)
        if data.draw(st.integers(0, 5)) == 0:
            del copy[key]
        else:
            copy[key] = mutate(node[key], data)
        return copy
    index = data.draw(st.integers(0, len(node) - 1))
    return [mutate(v, data) if i == index else v for i, v in enumerate(node)]


VALID = [p for p in FIXTURES if "invalid" not in p.parts and "refs" not in p.parts]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID), st.data())
def test_mutated_documents(path: Path, data: st.DataObject) -> None:
    try:
        base = resolved(path)
    except AsyncAPIGwError:
        return
    check(mutate(base, data))
