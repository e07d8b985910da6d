"""The 3.x schemas: the form a resolved document is checked against, and ``$ref`` written where
the schema allows none."""

from __future__ import annotations

import json
from typing import Any

import pytest

from asyncapi_gw.schema import (
    VALIDATION_VERSIONS,
    is_uri_reference,
    misplaced_refs,
    schema_root,
    validate_asyncapi,
    validation,
)
from asyncapi_gw.schema.bundle import bundled_schema

V3 = ("3.0.0", "3.1.0")


def resolved_document(version: str) -> dict[str, Any]:
    """A resolved document: objects in place of the Reference Objects 3.x asks for."""
    server = {"host": "chat.example.com", "protocol": "wss"}
    message = {"payload": {"type": "string"}}
    channel = {"address": "rooms", "servers": [server], "messages": {"chat": message}}
    return {
        "asyncapi": version,
        "info": {"title": "Chat", "version": "1.0.0"},
        "servers": {"production": server},
        "channels": {"rooms": channel},
        "operations": {
            "send": {
                "action": "send",
                "channel": channel,
                "messages": [message],
                "reply": {"channel": channel, "messages": [message]},
            }
        },
    }


def test_3x_versions_validate() -> None:
    assert set(V3) <= set(VALIDATION_VERSIONS)


@pytest.mark.parametrize("version", V3)
def test_a_resolved_document_holds_objects_where_references_were(version: str) -> None:
    assert validate_asyncapi(resolved_document(version), version) == []


@pytest.mark.parametrize("version", V3)
def test_the_shipped_schema_asks_for_references_there(version: str) -> None:
    shipped = json.loads((schema_root() / f"{version}.json").read_text(encoding="utf-8"))
    assert bundled_schema(version, resolved=False) == shipped
    definitions = bundled_schema(version)["definitions"]
    operation = definitions[f"http://asyncapi.com/definitions/{version}/operation.json"]
    assert operation["properties"]["channel"] == {
        "$ref": f"http://asyncapi.com/definitions/{version}/channel.json"
    }
    assert shipped["definitions"][f"http://asyncapi.com/definitions/{version}/operation.json"][
        "properties"
    ]["channel"] == {"$ref": f"http://asyncapi.com/definitions/{version}/Reference.json"}


def test_2x_schemas_have_one_form() -> None:
    assert bundled_schema("2.6.0") is bundled_schema("2.6.0", resolved=False)


@pytest.mark.parametrize("version", V3)
def test_a_ref_left_in_place_is_not_reported_as_a_property(version: str) -> None:
    """A broken or cycle-closing ``$ref`` stays where an object belongs; resolution reports it."""
    doc = resolved_document(version)
    doc["operations"]["send"]["channel"] = {"$ref": "#/channels/nowhere"}
    doc["operations"]["send"]["messages"] = [{"$ref": "#/nowhere"}]
    assert validate_asyncapi(doc, version) == []


@pytest.mark.parametrize("version", V3)
def test_misplaced_refs(version: str) -> None:
    doc: dict[str, Any] = {
        "asyncapi": version,
        "info": {"title": "t", "version": "1", "contact": {"$ref": "#/x-contact"}},
        "x-contact": {"name": "n"},
        "channels": {},
    }
    found = misplaced_refs(doc, version)
    assert [(p.pointer, p.rule) for p in found] == [("/info/contact", "asyncapi-ref-placement")]
    assert "not allowed here" in found[0].message
    doc["info"] = {"$ref": "#/x-info"}
    assert [p.pointer for p in misplaced_refs(doc, version)] == ["/info"]


def test_references_where_3x_wants_them_are_not_misplaced() -> None:
    doc = {
        "asyncapi": "3.0.0",
        "info": {"title": "t", "version": "1"},
        "servers": {"s": {"$ref": "#/components/servers/s"}},
        "channels": {
            "c": {
                "servers": [{"$ref": "#/servers/s"}],
                "messages": {"m": {"$ref": "#/components/messages/m"}},
            }
        },
        "operations": {
            "o": {
                "action": "send",
                "channel": {"$ref": "#/channels/c"},
                "messages": [{"$ref": "#/channels/c/messages/m"}],
            }
        },
        "components": {
            "servers": {"s": {"host": "h", "protocol": "ws"}},
            "messages": {"m": {"payload": {"$ref": "#/components/schemas/x"}}},
            "schemas": {"x": {"type": "string"}},
        },
    }
    assert misplaced_refs(doc, "3.0.0") == []
    # An inline channel in an operation is not a misplaced reference (and the official parser
    # accepts it: it checks the resolved document).
    doc["operations"]["o"]["channel"] = {"address": "c"}
    assert misplaced_refs(doc, "3.0.0") == []


# --- the fast path of a resolved 3.x document ----------------------------------------------------

needs_fast = pytest.mark.skipif(
    validation.jsonschema_rs is None, reason="the fast extra (jsonschema-rs) is not installed"
)


@needs_fast
@pytest.mark.parametrize("version", V3)
def test_the_fast_path_answers_for_objects_also_in_their_own_place(version: str) -> None:
    doc = resolved_document(version)
    assert validation._fast_resolved_valid(version, doc)
    doc["channels"]["rooms"]["servers"][0]["protocol"] = 5  # the server is in place: checked
    assert not validation._fast_resolved_valid(version, doc)
    assert validate_asyncapi(doc, version) != []


@needs_fast
@pytest.mark.parametrize("version", V3)
def test_the_fast_path_cannot_tell_for_an_object_only_where_a_reference_belongs(
    version: str,
) -> None:
    doc = resolved_document(version)
    doc["operations"]["send"]["channel"] = {"address": "elsewhere"}  # valid, but not in place
    assert not validation._fast_resolved_valid(version, doc)
    assert validate_asyncapi(doc, version) == []
    doc["operations"]["send"]["channel"] = {"address": 5}
    assert [p.pointer for p in validate_asyncapi(doc, version)] == [
        "/operations/send/channel/address"
    ]


def test_the_fast_path_leaves_the_document_unchanged() -> None:
    doc = resolved_document("3.0.0")
    before = json.dumps(doc)
    validation._fast_resolved_valid("3.0.0", doc)
    assert json.dumps(doc) == before
    assert doc["operations"]["send"]["channel"] is doc["channels"]["rooms"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("#/channels/rooms", True),
        ("#/channels/rooms~1lobby/messages/chat", True),
        ("common/messages.yaml#/chat", True),
        ("https://example.com/schemas/chat.json", True),
        ("#/channels/rooms~1{roomId}", False),  # braces are not allowed
        ("#/channels/two words", False),
        ("", True),
    ],
)
def test_uri_references_as_the_official_rules_check_them(value: str, expected: bool) -> None:
    assert is_uri_reference(value) is expected
