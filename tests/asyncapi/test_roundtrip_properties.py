"""Property tests: lossless round trip, and only typed errors on any input."""

from __future__ import annotations

from typing import Any

import attrs
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from asyncapi_gw.asyncapi import export_asyncapi, import_asyncapi, validate_document
from asyncapi_gw.builder import topic as builder_topic
from asyncapi_gw.errors import AsyncAPIGwError
from asyncapi_gw.model import (
    AuthKind,
    AuthType,
    Endpoint,
    Operation,
    SecurityScheme,
    StreamingAPI,
    Throttling,
    ThrottlingUnit,
)

VERSIONS = ["2.0.0", "2.1.0", "2.2.0", "2.3.0", "2.4.0", "2.5.0", "2.6.0"]
WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=8)
TEXT = st.text(max_size=20).filter(lambda s: "\x00" not in s)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(WORD, inner, max_size=3),
    max_leaves=8,
)
EXTENSIONS = st.dictionaries(WORD.map(lambda w: "x-" + w), JSON, max_size=2)


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
        if scopes and draw(st.booleans()):
            chosen = draw(st.lists(st.sampled_from(scopes), min_size=1, max_size=2, unique=True))
            operation["x-scopes"] = (
                chosen if draw(st.booleans()) else {str(i): s for i, s in enumerate(chosen)}
            )
        if draw(st.booleans()):
            operation["message"] = {"payload": {"type": draw(st.sampled_from(
                ["string", "object", "number"]))}}
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
    info: dict[str, Any] = {
        "title": draw(st.text(min_size=1, max_size=20).filter(lambda s: s.strip() != "")),
        "version": draw(st.from_regex(r"\A[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\Z")),
    }
    if draw(st.booleans()):
        info["description"] = draw(TEXT)
    info.update(draw(EXTENSIONS))
    doc: dict[str, Any] = {"asyncapi": version, "info": info}
    if draw(st.booleans()):
        doc["x-asyncapi-gw-context"] = "/" + draw(WORD)
    servers = {"production": {"url": "ws://localhost:" + str(draw(st.integers(1, 65535))),
                              "protocol": "ws"}}
    if draw(st.booleans()):
        servers["sandbox"] = {"url": "wss://sandbox.example/x", "protocol": "wss",
                              "description": draw(TEXT)}
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
        doc["components"] = {"securitySchemes": {"oauth2": {"type": "oauth2", "flows": {
            "implicit": {"authorizationUrl": "http://localhost:9999",
                         "scopes": {s: draw(TEXT) for s in scopes}}}}}}
    doc.update(draw(EXTENSIONS))
    return doc


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_round_trip_is_identity_on_valid_documents(doc: dict[str, Any]) -> None:
    assume(validate_document(doc).valid)
    assert export_asyncapi(import_asyncapi(doc).api) == doc


def mutate(doc: Any, data: st.DataObject) -> Any:
    """Delete, replace or retype one node somewhere in ``doc``."""
    if not isinstance(doc, (dict, list)) or not doc or data.draw(st.integers(0, 3)) == 0:
        return data.draw(JSON)
    if isinstance(doc, dict):
        key = data.draw(st.sampled_from(sorted(doc)))
        copy = dict(doc)
        if data.draw(st.booleans()):
            del copy[key]
        else:
            copy[key] = mutate(doc[key], data)
        return copy
    index = data.draw(st.integers(0, len(doc) - 1))
    return [mutate(v, data) if i == index else v for i, v in enumerate(doc)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents(), st.data(), st.booleans())
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


_SOURCE_FIELDS = {"document": None, "asyncapi_version": None, "base_uri": None}


def edit(api: StreamingAPI, data: st.DataObject) -> StreamingAPI:
    """One random change a user could make to an imported API."""
    choice = data.draw(st.integers(-4, 6))
    topics = list(api.topics)
    if choice == -4:
        return attrs.evolve(api, throttling=Throttling(events=5, unit=ThrottlingUnit.SECOND))
    if choice == -3:
        sandbox = None if api.sandbox_endpoint else Endpoint(url="ws://sandbox.example:81")
        return attrs.evolve(api, sandbox_endpoint=sandbox)
    if choice == -2:
        return attrs.evolve(api, security=[])
    if choice == -1:
        key = SecurityScheme(name="gw_key", kind=AuthKind.API_KEY)
        return attrs.evolve(api, security=[*api.security, key])
    if choice == 0:
        return attrs.evolve(api, name=api.name + " v2", description=data.draw(TEXT) or None)
    if choice == 1:
        return attrs.evolve(api, production_endpoint=Endpoint(url="wss://edited.example/ws"))
    if choice == 2 or not topics:
        return api.with_topics([*topics, builder_topic("/added/{p}", "sub", uri_mapping="/a")])
    index = data.draw(st.integers(0, len(topics) - 1))
    old = topics[index]
    if choice == 3:
        del topics[index]
    elif choice == 4:
        ops = {op.operation: attrs.evolve(op, uri_mapping="/edited") for op in old.operations}
        topics[index] = attrs.evolve(old, publish=ops.get(Operation.PUBLISH),
                                     subscribe=ops.get(Operation.SUBSCRIBE))
    elif choice == 5:
        topics[index] = attrs.evolve(old, description="edited", auth_type=AuthType.NONE)
    else:
        ops = {op.operation: attrs.evolve(op, scopes=()) for op in old.operations}
        topics[index] = attrs.evolve(old, publish=ops.get(Operation.PUBLISH),
                                     subscribe=ops.get(Operation.SUBSCRIBE))
    return api.with_topics(topics)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents(), st.data())
def test_an_edited_api_exports_to_a_document_that_imports_as_the_edit(
    doc: dict[str, Any], data: st.DataObject
) -> None:
    assume(validate_document(doc).valid)
    edited = edit(import_asyncapi(doc).api, data)
    back = import_asyncapi(export_asyncapi(edited)).api
    assert attrs.evolve(back, **_SOURCE_FIELDS) == attrs.evolve(edited, **_SOURCE_FIELDS)
