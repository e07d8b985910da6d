"""The semantic rules against one invalid fixture per rule, its fixed twin, and odd shapes."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

# The fixtures are YAML; the rules are tested apart from the loader (asyncapi_gw.documents).
import yaml  # noqa: TID251
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncapi_gw import validate_document
from asyncapi_gw.asyncapi.rules import RULE_NAMES, check_rules
from asyncapi_gw.errors import Severity

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "invalid"

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
    # The specification's own rules: the official parser accepts these fixtures.
    "asyncapi2-components-keys": [
        "/components/schemas/user~1name",
        "/components/messages/Room Joined",
        "/components/securitySchemes/api key",
    ],
    "asyncapi2-server-names": ["/servers/prod.eu", "/servers/staging server"],
    "asyncapi2-security-requirement-scopes": [
        "/servers/prod/security/0/apiKey",
        "/channels/~1rooms/subscribe/security/0/bearer",
    ],
    "asyncapi2-schema-discriminator": [
        "/channels/~1pets/subscribe/message/payload/properties/owner/discriminator",
        "/components/schemas/Pet/discriminator",
        "/components/schemas/Event/discriminator",
        "/components/schemas/Event/discriminator",
    ],
    "asyncapi2-message-trait-examples": [
        "/channels/~1rooms/subscribe/message/traits/0/examples/0",
        "/components/messageTraits/Common/examples/1/description",
        "/components/messageTraits/Common/examples/2/name",
    ],
}


# Fixtures of checks made outside check_rules, with the pointers the official parser reports.
PIPELINE_EXPECTED: dict[str, list[str]] = {
    "asyncapi-ref-placement": [
        "/tags/0",
        "/channels/~1rooms/subscribe/message/examples/0",
        "/components/messageTraits/Common/examples/0",
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


def _fixture_rules() -> list[str]:
    """The 2.x fixtures (the 3.x ones, ``asyncapi3-*``, are tests/asyncapi/test_rules_v3.py's)."""
    return sorted(
        p.name.removesuffix(".yaml")
        for p in FIXTURES.glob("*.yaml")
        if not p.name.endswith(".fixed.yaml") and not p.name.startswith("asyncapi3-")
    )


def test_every_fixture_has_expectations() -> None:
    assert _fixture_rules() == sorted([*EXPECTED, *PIPELINE_EXPECTED])


@pytest.mark.parametrize("rule", _fixture_rules())
def test_invalid_fixture_through_validation(rule: str) -> None:
    report = validate_document(FIXTURES / f"{rule}.yaml")
    problems = [*report.errors, *report.warnings]
    expected = EXPECTED.get(rule) or PIPELINE_EXPECTED[rule]
    assert sorted((p.rule, p.pointer) for p in problems) == sorted((rule, p) for p in expected)
    assert all(p.line is not None and p.column is not None for p in problems)
    assert report.valid is (problems[0].severity is Severity.WARNING)


@pytest.mark.parametrize("rule", _fixture_rules())
def test_fixed_fixture_through_validation(rule: str) -> None:
    report = validate_document(FIXTURES / f"{rule}.fixed.yaml")
    assert (report.errors, report.warnings) == ((), ())


def test_messages_name_the_culprit() -> None:
    data = _load("asyncapi2-channel-parameters.yaml")
    messages = [p.message for p in check_rules(data)]
    assert messages == [
        'channel "/rooms/{roomId}/users/{userId}" has no parameter definition for "userId"',
        'channel "/rooms/{roomId}/users/{userId}" defines parameter "tenant", '
        "which its name does not use",
    ]


def test_messages_write_values_as_json() -> None:
    messages = {
        rule: [p.message for p in check_rules(_load(f"{rule}.yaml"))]
        for rule in (
            "asyncapi2-server-security",
            "asyncapi2-server-variables",
            "asyncapi2-operation-operationId-uniqueness",
            "asyncapi2-tags-uniqueness",
        )
    }
    assert messages["asyncapi2-server-security"][1] == (
        'server "prod" requires scope "chat:admin" of security scheme "oauth", which no flow '
        'of it defines (defined: ["chat:read"])'
    )
    assert messages["asyncapi2-server-variables"][0] == (
        'server "prod" has no variable "port" for its url "wss://{host}:{port}/ws"'
    )
    assert messages["asyncapi2-operation-operationId-uniqueness"][0].startswith(
        'operationId "roomEvents" of the publish operation'
    )
    assert messages["asyncapi2-tags-uniqueness"][0] == (
        'tag name "chat" appears more than once in /tags'
    )


def test_long_values_are_cut() -> None:
    url = "ws://example.com/" + "a" * 200 + "/{x}"
    data = _doc(servers={"s": {"url": url, "protocol": "ws", "variables": {}}})
    [problem] = check_rules(data)
    assert len(problem.message) < 160
    assert '"ws://example.com/aaa' in problem.message
    assert "…" in problem.message


def test_pointer_escapes_tilde_and_slash() -> None:
    data = _doc(channels={"a~b/c?d": {}})
    assert _check(data) == [("asyncapi2-channel-no-query-nor-fragment", "/channels/a~0b~1c?d")]


def test_one_problem_per_missing_name() -> None:
    data = _doc(servers={"s": {"url": "ws://{a}/{b}/{a}", "protocol": "ws", "variables": {}}})
    problems = check_rules(data)
    assert [p.pointer for p in problems] == ["/servers/s/variables"] * 2
    assert ['"a"' in problems[0].message, '"b"' in problems[1].message] == [True, True]


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


def test_scopes_of_schemes_other_than_oauth2_are_not_errors() -> None:
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
    # Only the specification's rule speaks (a warning): an apiKey requirement lists no scopes.
    assert [(p.rule, p.pointer, p.severity) for p in check_rules(data)] == [
        ("asyncapi2-security-requirement-scopes", "/servers/s/security/0/k", Severity.WARNING)
    ]


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
        components={"channels": {"b": {"subscribe": operation}}},
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


# --- the specification's own rules: warnings, the verdict stays the official parser's ----------


def _warnings(data: dict[str, Any]) -> list[tuple[str, str]]:
    problems = check_rules(data)
    assert all(p.severity is Severity.WARNING for p in problems)
    return [(p.rule, p.pointer) for p in problems]


def test_spec_rule_warnings_leave_the_document_valid() -> None:
    report = validate_document(FIXTURES / "asyncapi2-schema-discriminator.yaml")
    assert report.valid
    assert report.errors == ()
    assert {p.rule for p in report.warnings} == {"asyncapi2-schema-discriminator"}


def test_component_keys_are_matched_whole() -> None:
    data = _doc(
        components={
            "schemas": {"ok.name-1_x": {}, "trailing\n": {}},
            "correlationIds": {"bad id": {"location": "$message.header#/id"}},
            "x-extension": {"any key": 1},
        }
    )
    problems = check_rules(data)
    assert [p.pointer for p in problems] == [
        "/components/schemas/trailing\n",
        "/components/correlationIds/bad id",
    ]
    assert '"trailing\\n"' in problems[0].message
    assert problems[1].message.endswith("the official schema does not check its value either")


def test_server_names_follow_their_own_pattern() -> None:
    server = {"url": "ws://h", "protocol": "ws"}
    data = _doc(servers={"a.b": server}, components={"servers": {"a.b": server}})
    # A dot is allowed in component names, not in the names of servers.
    assert _warnings(data) == [("asyncapi2-server-names", "/servers/a.b")]


def test_every_security_requirement_is_checked_for_scopes() -> None:
    key = [{"k": ["x"]}]
    operation = {"security": key, "traits": [{"security": key}], "message": {}}
    data = _doc(
        servers={"s": {"url": "ws://h", "protocol": "ws", "security": [{"k": []}]}},
        channels={"/a": {"publish": operation}},
        components={
            "servers": {"c": {"url": "ws://h", "protocol": "ws", "security": key}},
            "operationTraits": {"t": {"security": key}},
            "securitySchemes": {
                "k": {"type": "httpApiKey", "name": "k", "in": "query"},
                "o": {"type": "oauth2", "flows": {}},
            },
        },
    )
    assert _warnings(data) == [
        ("asyncapi2-security-requirement-scopes", pointer)
        for pointer in (
            "/components/servers/c/security/0/k",
            "/channels/~1a/publish/security/0/k",
            "/channels/~1a/publish/traits/0/security/0/k",
            "/components/operationTraits/t/security/0/k",
        )
    ]
    message = check_rules(data)[0].message
    assert '"httpApiKey"' in message
    assert '["x"]' in message


def test_discriminators_are_found_in_nested_schemas_once() -> None:
    bad = {"type": "object", "discriminator": "kind"}
    other = {"discriminator": "kind", "properties": {"kind": {}}}
    payload = {
        "allOf": [bad],
        "items": [{"properties": {"p": other}}],
        "additionalProperties": {"not": bad},
    }
    data = _doc(
        channels={
            "/a/{id}": {
                "parameters": {"id": {"schema": {"discriminator": "id", "type": "string"}}},
                "subscribe": {"message": {"payload": payload, "headers": {"if": bad}}},
            },
            "/b": {
                "subscribe": {
                    "message": {
                        "schemaFormat": "application/vnd.apache.avro;version=1.9.0",
                        "payload": {"type": "record", "discriminator": "kind"},
                    }
                }
            },
        }
    )
    pointers = [pointer for _, pointer in _warnings(data)]
    # The shared schema is reported where it is met first; an Avro payload is no Schema Object.
    assert pointers == [
        "/channels/~1a~1{id}/subscribe/message/headers/if/discriminator",
        "/channels/~1a~1{id}/subscribe/message/headers/if/discriminator",
        "/channels/~1a~1{id}/subscribe/message/payload/items/0/properties/p/discriminator",
        "/channels/~1a~1{id}/parameters/id/schema/discriminator",
        "/channels/~1a~1{id}/parameters/id/schema/discriminator",
    ]


def _with_trait_examples(version: str, examples: list[Any]) -> dict[str, Any]:
    trait = {"examples": examples}
    data = _doc(components={"messageTraits": {"t": trait}})
    data["asyncapi"] = version
    return data


def test_trait_examples_of_2_0_0_hold_headers_and_payload_only() -> None:
    data = _with_trait_examples("2.0.0", [{"name": "n"}, {}])
    assert _warnings(data) == [
        ("asyncapi2-message-trait-examples", "/components/messageTraits/t/examples/0/name")
    ]


@pytest.mark.parametrize("version", ["2.1.0", "2.6.0"])
def test_trait_examples_left_to_the_schema_where_it_checks_them(version: str) -> None:
    data = _with_trait_examples(version, [{"summary": "s"}])
    assert check_rules(data) == []
    report = validate_document(data)
    assert [(p.rule, p.pointer) for p in report.errors] == [
        ("asyncapi-schema", "/components/messageTraits/t/examples/0")
    ]


# --- references where the specification takes none -------------------------------------------


def _with_referenced_examples(version: str) -> dict[str, Any]:
    example = {"$ref": "#/components/schemas/Ex"}
    message = {
        "payload": {"type": "object"},
        "examples": [example],
        "traits": [{"examples": [example]}],
    }
    return {
        "asyncapi": version,
        "info": {"title": "t", "version": "1"},
        "channels": {"/a": {"subscribe": {"message": message}}},
        "components": {"schemas": {"Ex": {"payload": {"a": 1}}}},
    }


# The official parser refuses a $ref as a message example in every 2.x version, and as a message
# trait example only where that version's schema spells out the example's shape.
@pytest.mark.parametrize(
    ("version", "trait_refused"),
    [
        ("2.0.0", False),
        ("2.1.0", True),
        ("2.2.0", False),
        ("2.3.0", False),
        ("2.4.0", False),
        ("2.5.0", False),
        ("2.6.0", True),
    ],
)
def test_reference_as_an_example_is_refused(version: str, trait_refused: bool) -> None:
    report = validate_document(_with_referenced_examples(version))
    message = "/channels/~1a/subscribe/message"
    expected = [f"{message}/examples/0"] + [f"{message}/traits/0/examples/0"] * trait_refused
    assert [(p.rule, p.pointer) for p in report.errors] == [
        ("asyncapi-ref-placement", pointer) for pointer in expected
    ]
    assert "not allowed here in AsyncAPI " + version in report.errors[0].message


def test_references_where_the_specification_takes_them_pass() -> None:
    doc = _with_referenced_examples("2.6.0")
    message = doc["channels"]["/a"]["subscribe"]["message"]
    # Inside an example's payload a $ref is data the official parser resolves like any other.
    message["examples"] = [{"payload": {"$ref": "#/components/schemas/Ex/payload"}}]
    message["traits"] = [{"$ref": "#/components/messageTraits/T"}]
    doc["components"]["messageTraits"] = {"T": {"headers": {"$ref": "#/components/schemas/H"}}}
    doc["components"]["schemas"]["H"] = {"type": "object"}
    doc["channels"]["/b"] = {"publish": {"message": {"$ref": "#/components/messages/M"}}}
    doc["components"]["messages"] = {"M": {"payload": {"$ref": "#/components/schemas/H"}}}
    assert validate_document(doc).errors == ()


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
        "discriminator",
        "properties",
        "required",
        "allOf",
        "items",
        "correlationIds",
        "operationTraits",
    ]
)
_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5) | _KEYS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=5),
    max_leaves=40,
)


def test_a_schema_format_of_any_type_is_no_crash() -> None:
    message = {"schemaFormat": ["a"], "payload": {"discriminator": "k"}}
    data = _doc(channels={"/a": {"subscribe": {"message": message}}})
    assert check_rules(data) == []


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_KEYS, _JSONISH, max_size=6))
def test_odd_shapes_never_raise(data: dict[str, Any]) -> None:
    for problem in check_rules(data):
        assert problem.rule in RULE_NAMES
        assert problem.pointer.startswith("/")
