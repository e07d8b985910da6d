"""The semantic rules against one invalid fixture per rule, its fixed twin, and odd shapes."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

# The fixtures are YAML; the rules are tested apart from the loader (asyncapi_gw.documents).
import yaml  # noqa: TID251
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncapi_gw.rules import RULE_NAMES, check_rules

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "invalid"

# The pointers of the official parser's errors on each fixture (it was run on every one).
EXPECTED: dict[str, list[str]] = {
    "asyncapi2-server-security": [
        "/servers/prod/security/0/apiKeyHeader",
        "/servers/prod/security/1/oauth/1",
    ],
    "asyncapi2-server-variables": [
        "/servers/prod/variables",
        "/servers/prod/variables/region",
    ],
    "asyncapi2-channel-parameters": [
        "/channels/~1rooms~1{roomId}~1users~1{userId}/parameters",
        "/channels/~1rooms~1{roomId}~1users~1{userId}/parameters/tenant",
    ],
    "asyncapi2-channel-servers": ["/channels/~1rooms/servers/1"],
    "asyncapi2-channel-no-query-nor-fragment": [
        "/channels/~1rooms?lang=en",
        "/channels/~1rooms#lobby",
    ],
    "asyncapi2-operation-operationId-uniqueness": [
        "/channels/~1rooms/publish/traits/0/operationId",
    ],
    "asyncapi2-operation-security": [
        "/channels/~1rooms/subscribe/security/0/apiKeyQuery",
        "/channels/~1rooms/subscribe/security/1/oauth/0",
    ],
    "asyncapi2-message-examples": [
        "/channels/~1rooms/subscribe/message/examples/0/payload",
        "/channels/~1rooms/subscribe/message/examples/0/headers/seq",
    ],
    "asyncapi2-message-messageId-uniqueness": [
        "/channels/~1rooms/subscribe/message/oneOf/1/traits/0/messageId",
    ],
    "asyncapi2-tags-uniqueness": [
        "/tags/1/name",
        "/channels/~1rooms/subscribe/tags/2/name",
        "/channels/~1rooms/subscribe/message/tags/1/name",
        "/components/messageTraits/common/tags/1/name",
    ],
    "asyncapi2-schemas": [
        "/channels/~1rooms/subscribe/message/payload/type",
        "/components/messages/Joined/payload/required",
    ],
    "asyncapi2-schema-default": [
        "/channels/~1rooms~1{roomId}/subscribe/message/payload/default",
        "/channels/~1rooms~1{roomId}/parameters/roomId/schema/default",
        "/components/schemas/Count/default",
    ],
    "asyncapi2-schema-examples": [
        "/channels/~1rooms/subscribe/message/payload/examples/1",
        "/components/schemas/Count/examples/1",
    ],
    "asyncapi2-message-examples-custom-format": [
        "/channels/~1rooms/subscribe/message/examples/0/payload",
    ],
}


def _load(name: str) -> dict[str, Any]:
    with (FIXTURES / name).open(encoding="utf-8") as file:
        data: dict[str, Any] = yaml.safe_load(file)
    return data


def _check(data: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p.rule, p.pointer) for p in check_rules(data)]


def _doc(**parts: Any) -> dict[str, Any]:
    return {"asyncapi": "2.6.0", "info": {"title": "t", "version": "1"}, "channels": {}, **parts}


def test_every_rule_has_expectations() -> None:
    assert set(EXPECTED) == set(RULE_NAMES)


@pytest.mark.parametrize("rule", RULE_NAMES)
def test_invalid_fixture_breaks_its_rule_only(rule: str) -> None:
    problems = check_rules(_load(f"{rule}.yaml"))
    assert [(p.rule, p.pointer) for p in problems] == [(rule, ptr) for ptr in EXPECTED[rule]]
    assert all(p.line is None and p.column is None and p.message for p in problems)


@pytest.mark.parametrize("rule", RULE_NAMES)
def test_fixed_fixture_passes(rule: str) -> None:
    assert _check(_load(f"{rule}.fixed.yaml")) == []


def test_messages_name_the_culprit() -> None:
    data = _load("asyncapi2-channel-parameters.yaml")
    messages = [p.message for p in check_rules(data)]
    assert messages == [
        "channel '/rooms/{roomId}/users/{userId}' has no parameter definition for 'userId'",
        "channel '/rooms/{roomId}/users/{userId}' defines parameter 'tenant', "
        "which its name does not use",
    ]


def test_pointer_escapes_tilde_and_slash() -> None:
    data = _doc(channels={"a~b/c?d": {}})
    assert _check(data) == [("asyncapi2-channel-no-query-nor-fragment", "/channels/a~0b~1c?d")]


def test_one_problem_per_missing_name() -> None:
    data = _doc(servers={"s": {"url": "ws://{a}/{b}/{a}", "protocol": "ws", "variables": {}}})
    problems = check_rules(data)
    assert [p.pointer for p in problems] == ["/servers/s/variables"] * 2
    assert ["'a'" in problems[0].message, "'b'" in problems[1].message] == [True, True]


def test_component_servers_variables_are_checked() -> None:
    data = _doc(components={"servers": {"s": {"url": "ws://{h}", "variables": {"x": {}}}}})
    assert _check(data) == [
        ("asyncapi2-server-variables", "/components/servers/s/variables"),
        ("asyncapi2-server-variables", "/components/servers/s/variables/x"),
    ]


# --- the official parser's leniencies, kept so that its verdicts are ours ---------------------


def test_templates_without_any_definitions_object_pass() -> None:
    data = _doc(
        servers={"s": {"url": "ws://{host}", "protocol": "ws"}},
        channels={"/rooms/{roomId}": {"subscribe": {"message": {"payload": {}}}}},
    )
    assert _check(data) == []


def test_scopes_of_schemes_other_than_oauth2_are_not_checked() -> None:
    data = _doc(
        servers={
            "s": {"url": "ws://h", "protocol": "ws", "security": [{"k": ["x"]}, {"o": ["y"]}]}
        },
        components={
            "securitySchemes": {
                "k": {"type": "httpApiKey", "name": "k", "in": "query"},
                "o": {"type": "openIdConnect", "openIdConnectUrl": "https://id.example.com"},
            }
        },
    )
    assert _check(data) == []


def test_string_defaults_and_examples_are_never_reported() -> None:
    schema = {"type": "integer", "default": "x", "examples": ["y", 1.5]}
    data = _doc(components={"schemas": {"S": schema}})
    assert _check(data) == [("asyncapi2-schema-examples", "/components/schemas/S/examples/1")]


def test_unknown_schema_format_payload_is_not_checked_but_its_examples_are() -> None:
    message = {
        "schemaFormat": "application/x-custom",
        "payload": {"type": "text"},
        "examples": [{"payload": 1}],
    }
    data = _doc(channels={"/a": {"subscribe": {"message": message}}})
    assert _check(data) == [
        (
            "asyncapi2-message-examples-custom-format",
            "/channels/~1a/subscribe/message/examples/0/payload",
        )
    ]


def test_ids_of_component_channels_are_not_compared() -> None:
    operation = {"operationId": "same", "message": {"messageId": "same"}}
    data = _doc(
        channels={"/a": {"subscribe": operation}},
        components={"channels": {"/b": {"subscribe": operation}}},
    )
    assert _check(data) == []


def test_later_trait_gives_the_id() -> None:
    first = {"operationId": "a", "traits": [{"operationId": "b"}, {"operationId": "c"}]}
    data = _doc(channels={"/x": {"subscribe": first, "publish": {"operationId": "c"}}})
    assert _check(data) == [
        ("asyncapi2-operation-operationId-uniqueness", "/channels/~1x/publish/operationId")
    ]


def test_schema_left_with_a_cycle_ref_is_skipped() -> None:
    schema = {"type": "object", "properties": {"self": {"$ref": "#/components/schemas/S"}}}
    data = _doc(components={"schemas": {"S": {**schema, "default": 3}}})
    assert _check(data) == []


def test_invalid_payload_schema_rejects_its_examples() -> None:
    message = {
        "schemaFormat": "application/vnd.apache.avro;version=1.9.0",
        "payload": {"type": "record", "name": "R", "fields": []},
        "examples": [{"payload": {}}],
    }
    data = _doc(channels={"/a": {"subscribe": {"message": message}}})
    assert [rule for rule, _ in _check(data)] == ["asyncapi2-message-examples-custom-format"]


# --- odd shapes -----------------------------------------------------------------------------

_KEYS = st.sampled_from(
    [
        "asyncapi",
        "channels",
        "servers",
        "components",
        "subscribe",
        "publish",
        "message",
        "oneOf",
        "traits",
        "tags",
        "name",
        "payload",
        "headers",
        "examples",
        "default",
        "schema",
        "schemas",
        "parameters",
        "variables",
        "url",
        "security",
        "securitySchemes",
        "type",
        "oauth2",
        "flows",
        "implicit",
        "scopes",
        "schemaFormat",
        "messageId",
        "operationId",
        "messages",
        "messageTraits",
        "operationTraits",
        "summary",
        "$ref",
        "/a/{b}",
        "b",
        "{x}",
    ]
)
_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5) | _KEYS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=5),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_KEYS, _JSONISH, max_size=6))
def test_odd_shapes_never_raise(data: dict[str, Any]) -> None:
    for problem in check_rules(data):
        assert problem.rule in RULE_NAMES
        assert problem.pointer.startswith("/")
