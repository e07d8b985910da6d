"""Validation against the official schemas, binding schemas and user schemas."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncapi_gw.errors import Severity, UnsupportedVersionError
from asyncapi_gw.schema import (
    SUPPORTED_VERSIONS,
    validate_asyncapi,
    validate_binding,
    validate_instance,
)


def minimal(version: str = "2.6.0") -> dict[str, Any]:
    return {
        "asyncapi": version,
        "info": {"title": "Chat", "version": "1.0.0"},
        "servers": {"production": {"url": "ws://localhost:8080", "protocol": "ws"}},
        "channels": {
            "/rooms/{roomId}": {
                "parameters": {"roomId": {"schema": {"type": "string"}}},
                "publish": {"message": {"payload": {"type": "object"}}},
                "subscribe": {"message": {"payload": {"type": "string"}}},
            }
        },
    }


def pairs(problems: list[Any]) -> list[tuple[str, str]]:
    assert all(p.rule == "asyncapi-schema" and p.line is None for p in problems)
    return [(p.pointer, p.message) for p in problems]


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_every_version_accepts_a_minimal_document(version: str) -> None:
    assert validate_asyncapi(minimal(version), version) == []


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_every_version_rejects_a_broken_document(version: str) -> None:
    doc = minimal(version)
    del doc["info"]["title"]
    doc["channels"]["/rooms/{roomId}"]["publish"]["message"]["payload"]["type"] = 5
    found = pairs(validate_asyncapi(doc, version))
    assert ("/info", 'required property "title" is missing') in found
    assert any(p.endswith("/payload/type") for p, _ in found)


def test_other_versions_document_is_refused_by_its_version() -> None:
    found = pairs(validate_asyncapi(minimal("2.5.0"), "2.6.0"))
    assert found == [("/asyncapi", '"2.5.0" is not one of ["2.6.0"]')]


def test_unsupported_version_raises() -> None:
    with pytest.raises(UnsupportedVersionError):
        validate_asyncapi(minimal(), "1.2.0")


def test_missing_info_version() -> None:
    doc = minimal()
    del doc["info"]["version"]
    assert pairs(validate_asyncapi(doc, "2.6.0")) == [
        ("/info", 'required property "version" is missing')
    ]


def test_wrong_type_under_a_one_of_server_names_the_property() -> None:
    doc = minimal()
    doc["servers"]["production"]["protocol"] = 5
    assert pairs(validate_asyncapi(doc, "2.6.0")) == [
        ("/servers/production/protocol", '5 is not of type "string"')
    ]


def test_wrong_type_under_a_one_of_message_names_the_property() -> None:
    doc = minimal()
    message = doc["channels"]["/rooms/{roomId}"]["subscribe"]["message"]
    message["contentType"] = 5
    message["name"] = ["x"]
    assert pairs(validate_asyncapi(doc, "2.6.0")) == [
        (
            "/channels/~1rooms~1{roomId}/subscribe/message/contentType",
            '5 is not of type "string"',
        ),
        (
            "/channels/~1rooms~1{roomId}/subscribe/message/name",
            '["x"] is not of type "string"',
        ),
    ]


def test_wrong_type_under_a_one_of_channel() -> None:
    doc = minimal()
    doc["channels"]["/rooms/{roomId}"]["description"] = 3
    found = pairs(validate_asyncapi(doc, "2.6.0"))
    assert found == [("/channels/~1rooms~1{roomId}/description", '3 is not of type "string"')]


def test_unknown_properties_each_point_at_the_property() -> None:
    doc = minimal()
    doc["foo"] = 1
    doc["bar"] = 2
    doc["x-fine"] = 3
    assert pairs(validate_asyncapi(doc, "2.6.0")) == [
        ("/foo", 'property "foo" is not allowed here'),
        ("/bar", 'property "bar" is not allowed here'),
    ]


def test_bad_asyncapi_value() -> None:
    doc = minimal()
    doc["asyncapi"] = "2.6"
    assert pairs(validate_asyncapi(doc, "2.6.0")) == [
        ("/asyncapi", '"2.6" is not one of ["2.6.0"]')
    ]


def test_all_errors_are_reported_once() -> None:
    doc = minimal()
    del doc["info"]["version"]
    doc["servers"]["production"]["protocol"] = 5
    doc["foo"] = 1
    found = pairs(validate_asyncapi(doc, "2.6.0"))
    assert len(found) == len(set(found)) == 3
    assert found[0] == ("/foo", 'property "foo" is not allowed here')


def test_json_pointer_refs_are_not_checked_as_uri_references() -> None:
    doc = minimal()
    doc["channels"]["/b"] = {"$ref": "#/channels/~1rooms~1{roomId}"}
    assert validate_asyncapi(doc, "2.6.0") == []


def test_formats_are_checked_like_the_official_parser() -> None:
    doc = minimal()
    doc["info"]["contact"] = {"email": "not-an-email", "url": "not a uri"}
    doc["info"]["license"] = {"name": "MIT", "url": "https://opensource.org/licenses/MIT"}
    doc["channels"]["a b"] = {}
    assert sorted(pairs(validate_asyncapi(doc, "2.6.0"))) == [
        ("/channels/a b", 'the name "a b" is not a valid "uri-template"'),
        ("/info/contact/email", '"not-an-email" is not a valid "email"'),
        ("/info/contact/url", '"not a uri" is not a valid "uri"'),
    ]


def test_payload_enum_must_not_be_empty_as_in_the_bundled_meta_schema() -> None:
    doc = minimal()
    doc["channels"]["/rooms/{roomId}"]["publish"]["message"]["payload"] = {"enum": []}
    found = pairs(validate_asyncapi(doc, "2.6.0"))
    assert [p for p, _ in found] == ["/channels/~1rooms~1{roomId}/publish/message/payload/enum"]


def test_shared_objects_get_the_same_verdicts_as_copies() -> None:
    bad_message = {"payload": {"type": "strin"}, "contentType": 5}
    shared = minimal()
    copied = minimal()
    for n in range(3):
        shared["channels"][f"/c{n}"] = {"publish": {"message": bad_message}}
        copied["channels"][f"/c{n}"] = {"publish": {"message": copy.deepcopy(bad_message)}}
    found = pairs(validate_asyncapi(shared, "2.6.0"))
    assert found == pairs(validate_asyncapi(copied, "2.6.0"))
    assert len(found) == 6


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["type", "name", "payload", "x-a", "url"]), children, max_size=3
        )
    ),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(message=json_values)
def test_any_message_gives_problems_not_exceptions(message: Any) -> None:
    doc = minimal()
    doc["channels"]["/rooms/{roomId}"]["publish"]["message"] = message
    first = validate_asyncapi(doc, "2.6.0")
    doc["channels"]["/copy"] = {"publish": {"message": message}}
    second = validate_asyncapi(doc, "2.6.0")
    assert all(p.pointer.startswith("/channels/") for p in first)
    assert len(second) == 2 * len(first)


def test_websocket_binding() -> None:
    found = validate_binding(
        {"method": "PUT", "extra": 1, "bindingVersion": "0.1.0"},
        protocol="ws",
        kind="channel",
        pointer="/channels/~1a/bindings/ws",
    )
    assert [(p.pointer, p.message, p.rule) for p in found] == [
        (
            "/channels/~1a/bindings/ws/extra",
            'property "extra" is not allowed here',
            "asyncapi-binding",
        ),
        (
            "/channels/~1a/bindings/ws/method",
            '"PUT" is not one of ["GET", "POST"]',
            "asyncapi-binding",
        ),
    ]
    assert (
        validate_binding(
            {"method": "GET", "bindingVersion": "0.1.0"},
            protocol="ws",
            kind="channel",
            pointer="/b",
        )
        == []
    )
    unversioned = validate_binding({"method": "PUT"}, protocol="ws", kind="channel", pointer="/b")
    assert [p.severity for p in unversioned] == [Severity.WARNING]
    assert unversioned[0].message.endswith(
        "(checked against bindingVersion 0.1.0, the newest: the binding declares none)"
    )


def test_binding_of_an_unknown_version_is_checked_against_the_newest() -> None:
    found = validate_binding(
        {"bindingVersion": "9.9.9", "method": "PUT"}, protocol="ws", kind="channel", pointer="/b"
    )
    assert [(p.pointer, p.severity) for p in found] == [
        ("/b/bindingVersion", Severity.WARNING),
        ("/b/method", Severity.WARNING),
    ]
    assert found[0].message == (
        'the ws channel binding has no official schema for bindingVersion "9.9.9" (official: '
        "0.1.0); it is checked against 0.1.0, the newest, and its problems are warnings"
    )
    assert found[1].message.endswith(
        '(checked against bindingVersion 0.1.0, the newest: "9.9.9" has no official schema)'
    )


def test_unknown_version_of_a_binding_without_problems_still_warns() -> None:
    found = validate_binding(
        {"bindingVersion": "0.2.0"}, protocol="kafka", kind="server", pointer="/b"
    )
    assert [(p.pointer, p.severity) for p in found] == [("/b/bindingVersion", Severity.WARNING)]
    assert "(official: 0.3.0, 0.4.0, 0.5.0)" in found[0].message


def test_binding_schema_inside_a_binding_names_the_culprit() -> None:
    binding = {"query": {"type": "object", "properties": {"id": {"type": 3}}}}
    found = validate_binding(binding, protocol="ws", kind="channel", pointer="/b")
    assert [p.pointer for p in found] == ["/b/query/properties/id/type"]


@pytest.mark.parametrize(
    ("protocol", "kind"), [("nosuch", "channel"), ("ws", "server"), ("mqtt5", "server")]
)
def test_binding_without_an_official_schema_gives_no_problems(protocol: str, kind: str) -> None:
    binding = {"bindingVersion": "0.1.0", "anything": 1}
    assert validate_binding(binding, protocol=protocol, kind=kind, pointer="/b") == []


def test_binding_kind_is_checked() -> None:
    with pytest.raises(ValueError, match="binding kind"):
        validate_binding({}, protocol="ws", kind="socket", pointer="/b")


def test_instance_against_a_schema_object() -> None:
    schema = {
        "type": "object",
        "required": ["id"],
        "discriminator": "id",
        "properties": {"id": {"type": "integer"}, "at": {"format": "email"}},
    }
    assert validate_instance({"id": 1}, schema, pointer="/e", rule="r") == []
    found = validate_instance({"id": "x", "at": "nope"}, schema, pointer="/e/0", rule="r")
    assert [(p.pointer, p.message, p.rule) for p in found] == [
        ("/e/0/at", '"nope" is not a valid "email"', "r"),
        ("/e/0/id", '"x" is not of type "integer"', "r"),
    ]


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ("junk", 'the schema "junk" is not a JSON Schema'),
        ({"type": 5}, "cannot check against an invalid schema"),
        (
            {"pattern": "("},
            'cannot check against an invalid schema: at /pattern, "(" is not a valid "regex"',
        ),
        (
            {"enum": []},
            "cannot check against an invalid schema: at /enum, [] has fewer than 1 item",
        ),
    ],
)
def test_junk_schema_gives_one_problem(schema: Any, message: str) -> None:
    for _ in range(2):  # the second time from the cache
        found = validate_instance(1, schema, pointer="/x", rule="r")
        assert len(found) == 1
        assert found[0].pointer == "/x"
        assert found[0].message.startswith(message)


def test_unresolvable_ref_in_a_user_schema_constrains_nothing() -> None:
    schema = {"properties": {"next": {"$ref": "#/components/schemas/Node"}}, "type": "object"}
    assert validate_instance({"next": 1}, schema, pointer="", rule="r") == []
    assert validate_instance([], schema, pointer="", rule="r") != []


def test_javascript_named_groups_are_valid_patterns() -> None:
    schema = {"type": "string", "pattern": "^(?<year>[0-9]{4})$"}
    assert validate_instance("2024", schema, pointer="", rule="r") == []
    assert len(validate_instance("24", schema, pointer="", rule="r")) == 1


@pytest.mark.parametrize("key", ["\u00b9", "\u00e9", "\u0663"])
def test_pattern_properties_read_backslash_w_and_d_as_javascript_does(key: str) -> None:
    """2.0.0's securitySchemes names match ``^[\\w\\d\\.\\-_]+$``: ASCII in JavaScript, so
    ``@asyncapi/parser`` 3 lets a non-ASCII name through unchecked (checked by running it)."""
    doc = minimal("2.0.0")
    doc["components"] = {"securitySchemes": {key: None}}
    assert validate_asyncapi(doc, "2.0.0") == []
    doc["components"] = {"securitySchemes": {"ascii": None}}
    assert pairs(validate_asyncapi(doc, "2.0.0"))[0][0] == "/components/securitySchemes/ascii"
    # the same, by jsonschema alone (the document check may take the jsonschema-rs verdict)
    schema = {"patternProperties": {"^[\\w\\d\\.\\-_]+$": {"type": "object"}}}
    assert validate_instance({key: None}, schema, pointer="", rule="r") == []
    assert validate_instance({"ascii": None}, schema, pointer="", rule="r") != []


def test_patterns_read_backslash_s_as_javascript_does() -> None:
    schema = {"type": "string", "pattern": "^a\\sb[\\s]c\\S$"}
    assert validate_instance("a\u00a0b\u3000cd", schema, pointer="", rule="r") == []
    assert validate_instance("a\x1cb c!", schema, pointer="", rule="r") != []  # not JS space
    assert validate_instance("a b c\u2028", schema, pointer="", rule="r") != []
    digits = {"type": "string", "pattern": "^\\d+$"}
    assert validate_instance("\u0663", digits, pointer="", rule="r") != []  # Arabic-Indic 3


def test_deep_instance_is_a_problem_not_an_exception() -> None:
    schema = {"items": {"$ref": "#"}}
    deep: list[Any] = []
    for _ in range(5000):
        deep = [deep]
    found = validate_instance(deep, schema, pointer="/d", rule="r")
    assert [(p.pointer, p.message) for p in found] == [
        ("/d", "the value is nested more than 150 levels deep: not validated against the schema")
    ]


def test_deep_document_is_a_problem_not_an_exception() -> None:
    doc = minimal()
    payload: dict[str, Any] = {"type": "string"}
    for _ in range(1000):
        payload = {"type": "object", "properties": {"a": payload}}
    doc["channels"]["/rooms/{roomId}"]["publish"]["message"]["payload"] = payload
    found = validate_asyncapi(doc, "2.6.0")
    assert [p.pointer for p in found] == [""]
    assert "nested more than" in found[0].message


def test_content_cache_is_bounded_by_entries_and_size() -> None:
    from asyncapi_gw.schema.validation import _ContentCache

    cache = _ContentCache(entries=3, size=160)
    for key in ("a" * 5, "b" * 5, "c" * 5, "d" * 5):
        cache.put(key, key.upper())
    assert cache.get("a" * 5) is None  # the oldest of four entries went
    assert cache.get("d" * 5) == "DDDDD"
    cache.put("x" * 11, "too big")  # over a sixteenth of the size: never kept
    assert cache.get("x" * 11) is None
    cache.put("e" * 10, 1)
    cache.put("f" * 10, 2)
    assert cache.get("b" * 5) is None
    assert cache.get("e" * 10) == 1


def test_an_unversioned_binding_an_older_official_version_accepts_names_that_version() -> None:
    # The official examples write http operation bindings for 0.1.0 (type: response) without
    # a bindingVersion: checked against the newest they warn, and the warning says which
    # official version they match, so that declaring it settles the warning.
    found = validate_binding({"type": "response"}, protocol="http", kind="operation", pointer="/b")
    assert [(p.pointer, p.severity) for p in found] == [("/b/type", Severity.WARNING)]
    assert found[0].message.endswith(
        "(checked against bindingVersion 0.3.0, the newest: the binding declares none; it "
        'matches bindingVersion 0.1.0: declare bindingVersion: "0.1.0")'
    )
    nowhere = validate_binding({"headers": {}}, protocol="http", kind="operation", pointer="/b")
    assert "matches" not in nowhere[0].message
