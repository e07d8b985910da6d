"""Property tests: lossless round trip, and only typed errors on any input, for AsyncAPI 2.x
and 3.x documents alike (3.x ones written from either point of view)."""

from __future__ import annotations

from typing import Any

import attrs
from document_strategies import (
    EXTENSIONS,
    SOURCE_FIELDS,
    TEXT,
    WORD,
    edit,
    info,
    mutate,
    v3_documents,
    x_scopes,
)
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from asyncapi_gw.asyncapi import export_asyncapi, import_asyncapi, validate_document
from asyncapi_gw.errors import AsyncAPIGwError

VERSIONS = ["2.0.0", "2.1.0", "2.2.0", "2.3.0", "2.4.0", "2.5.0", "2.6.0"]


@st.composite
def channel(draw: st.DrawFn, name: str, params: list[str], scopes: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if draw(st.booleans()):
        body["description"] = draw(TEXT)
    if params:
        body["parameters"] = {p: {"schema": {"type": "string"}} for p in params}
    ops = draw(st.sampled_from([["publish"], ["subscribe"], ["publish", "subscribe"]]))
    for op in ops:
        operation: dict[str, Any] = {}
        if draw(st.booleans()):
            mapping = "/" + "/".join(f"{{uri.var.{p}}}" for p in params) if params else "/m"
            operation["x-uri-mapping"] = mapping
        if (found := x_scopes(draw, scopes)) is not None:
            operation["x-scopes"] = found
        if draw(st.booleans()):
            operation["message"] = {
                "payload": {"type": draw(st.sampled_from(["string", "object", "number"]))}
            }
        operation.update(draw(EXTENSIONS))
        body[op] = operation
    if draw(st.booleans()):
        body["x-auth-type"] = draw(st.sampled_from(["Any", "Application", "None"]))
    body.update(draw(EXTENSIONS))
    return body


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    version = draw(st.sampled_from(VERSIONS))
    scopes = draw(st.lists(WORD, max_size=3, unique=True))
    doc: dict[str, Any] = {"asyncapi": version, "info": draw(info())}
    if draw(st.booleans()):
        doc["x-asyncapi-gw-context"] = "/" + draw(WORD)
    servers = {
        "production": {
            "url": "ws://localhost:" + str(draw(st.integers(1, 65535))),
            "protocol": "ws",
        }
    }
    if draw(st.booleans()):
        servers["sandbox"] = {
            "url": "wss://sandbox.example/x",
            "protocol": "wss",
            "description": draw(TEXT),
        }
    doc["servers"] = servers
    channels: dict[str, Any] = {}
    for _ in range(draw(st.integers(0, 4))):
        segments = draw(st.lists(WORD, min_size=1, max_size=3))
        params = draw(st.lists(WORD, max_size=2, unique=True))
        name = "/" + "/".join(segments + [f"{{{p}}}" for p in params])
        if draw(st.booleans()):
            name = name[1:]
        if any(n.lstrip("/") == name.lstrip("/") for n in channels):
            continue
        channels[name] = draw(channel(name, params, scopes))
    doc["channels"] = channels
    if scopes or draw(st.booleans()):
        doc["components"] = {
            "securitySchemes": {
                "oauth2": {
                    "type": "oauth2",
                    "flows": {
                        "implicit": {
                            "authorizationUrl": "http://localhost:9999",
                            "scopes": {s: draw(TEXT) for s in scopes},
                        }
                    },
                }
            }
        }
    doc.update(draw(EXTENSIONS))
    return doc


ANY_DOCUMENTS = st.one_of(documents(), v3_documents())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ANY_DOCUMENTS)
def test_round_trip_is_identity_on_valid_documents(doc: dict[str, Any]) -> None:
    assume(validate_document(doc).valid)
    assert export_asyncapi(import_asyncapi(doc).api) == doc


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ANY_DOCUMENTS, st.data(), st.booleans())
def test_any_mutation_gives_a_result_or_a_typed_error(
    doc: dict[str, Any], data: st.DataObject, lenient: bool
) -> None:
    broken = mutate(doc, data)
    try:
        validate_document(broken)
        result = import_asyncapi(broken, lenient=lenient)
        export_asyncapi(result.api)
    except AsyncAPIGwError:
        pass


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ANY_DOCUMENTS, st.data())
def test_an_edited_api_exports_to_a_document_that_imports_as_the_edit(
    doc: dict[str, Any], data: st.DataObject
) -> None:
    assume(validate_document(doc).valid)
    edited = edit(import_asyncapi(doc).api, data)
    back = import_asyncapi(export_asyncapi(edited)).api
    if edited.topics:  # a 3.x document without operations reads the same from either side
        assert back.point_of_view is edited.point_of_view
    assert attrs.evolve(back, point_of_view=None, **SOURCE_FIELDS) == attrs.evolve(
        edited, point_of_view=None, **SOURCE_FIELDS
    )
