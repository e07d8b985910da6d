"""The AsyncAPI 3.x rules: one invalid fixture per rule, its fixed twin, and the official quirks.

Every fixture and every document below was run through the official JavaScript parser
(``@asyncapi/parser`` 3.6) and its verdicts are the ones expected here; when node and the parser
are at hand, ``tests/asyncapi/test_official_parser_v3.py`` checks the fixtures against it again.
"""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncapi_gw import Severity, documents, validate_document
from asyncapi_gw.asyncapi.rules_v3 import ERROR_RULES, WARNING_RULES, check_written

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "invalid"

# (rule, pointer) of what each rule's fixture breaks: errors for the official rules, warnings
# for the others.  For the official rules these are the official parser's errors on the fixture
# too (it names its schema check asyncapi-document-resolved); it finds the fixtures of the
# warnings, and every fixed twin, valid.
EXPECTED: dict[str, list[tuple[str, str]]] = {
    "asyncapi3-operation-messages-from-referred-channel": [
        ("asyncapi3-operation-messages-from-referred-channel", "/operations/sendChat/messages/1"),
        ("asyncapi3-operation-messages-from-referred-channel", "/operations/sendChat/messages/2"),
        (
            "asyncapi3-operation-messages-from-referred-channel",
            "/components/operations/receiveAlert/messages/0",
        ),
    ],
    "asyncapi3-required-operation-channel-unambiguity": [
        ("asyncapi3-required-operation-channel-unambiguity", "/operations/sendChat/channel/$ref"),
    ],
    "asyncapi3-required-channel-servers-unambiguity": [
        ("asyncapi3-required-channel-servers-unambiguity", "/channels/rooms/servers/1/$ref"),
    ],
    "asyncapi3-channel-servers": [
        ("asyncapi-schema", "/channels/rooms/servers/0"),
        ("asyncapi-schema", "/channels/rooms/servers/1"),
        ("asyncapi3-channel-servers", "/channels/rooms/servers/1"),
    ],
    "asyncapi3-channel-no-query-nor-fragment": [
        ("asyncapi3-channel-no-query-nor-fragment", "/channels/rooms?lang=en"),
        ("asyncapi3-channel-no-query-nor-fragment", "/channels/rooms#lobby"),
    ],
    "asyncapi3-channel-parameters": [
        ("asyncapi3-channel-parameters", "/channels/roomUsers/parameters"),
        ("asyncapi3-channel-parameters", "/channels/roomUsers/parameters/tenant"),
        ("asyncapi3-channel-parameters", "/components/channels/floor/parameters"),
    ],
    "asyncapi3-server-variables": [
        ("asyncapi3-server-variables", "/servers/production/pathname"),
        ("asyncapi3-server-variables", "/servers/production/variables/tenant"),
    ],
    "asyncapi3-security-scopes": [
        ("asyncapi3-security-scopes", "/components/securitySchemes/oauth/scopes/1"),
        ("asyncapi3-security-scopes", "/operations/sendChat/security/0/scopes/1"),
    ],
    "asyncapi3-tags-uniqueness": [
        ("asyncapi3-tags-uniqueness", "/info/tags/1/name"),
        ("asyncapi3-tags-uniqueness", "/operations/sendChat/tags/2/name"),
        ("asyncapi3-tags-uniqueness", "/components/messages/chat/tags/1/name"),
    ],
    "asyncapi3-message-examples": [
        ("asyncapi3-message-examples", "/channels/rooms/messages/chat/examples/0/headers/seq"),
        ("asyncapi3-message-examples", "/channels/rooms/messages/chat/examples/1/payload"),
        ("asyncapi3-message-examples", "/channels/rooms/messages/typed/examples/0/payload"),
    ],
    "asyncapi3-reply-address": [
        ("asyncapi3-reply-address", "/operations/ask/reply/address"),
    ],
    "asyncapi3-reply-messages-from-referred-channel": [
        ("asyncapi3-reply-messages-from-referred-channel", "/operations/ask/reply/messages/1"),
        ("asyncapi3-reply-messages-from-referred-channel", "/components/replies/answer/messages/0"),
    ],
}

RULES = (*ERROR_RULES, *WARNING_RULES)


def _pairs(problems: Any) -> list[tuple[str, str]]:
    return [(p.rule, p.pointer) for p in problems]


def test_every_rule_has_a_fixture_and_expectations() -> None:
    assert set(EXPECTED) == set(RULES)
    for rule in RULES:
        assert (FIXTURES / f"{rule}.yaml").is_file()
        assert (FIXTURES / f"{rule}.fixed.yaml").is_file()


@pytest.mark.parametrize("rule", RULES)
def test_invalid_fixture_breaks_its_rule_only(rule: str) -> None:
    report = validate_document(FIXTURES / f"{rule}.yaml")
    if rule in ERROR_RULES:
        found, others = report.errors, report.warnings
    else:
        found, others = report.warnings, report.errors
    assert sorted(_pairs(found)) == sorted(EXPECTED[rule])
    assert list(others) == []
    assert report.asyncapi == "3.0.0"
    for problem in found:
        assert problem.line is not None
        assert problem.column is not None
        assert problem.message
        assert problem.severity is (Severity.ERROR if rule in ERROR_RULES else Severity.WARNING)


@pytest.mark.parametrize("rule", RULES)
def test_fixed_fixture_is_clean(rule: str) -> None:
    report = validate_document(FIXTURES / f"{rule}.fixed.yaml")
    assert report.valid
    assert _pairs(report.errors) == []
    assert _pairs(report.warnings) == []


# --- the official parser's quirks and edges, kept so that its verdicts are ours ---------------


def _doc(**parts: Any) -> dict[str, Any]:
    return {"asyncapi": "3.0.0", "info": {"title": "t", "version": "1"}, **parts}


def _errors(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted(_pairs(validate_document(doc).errors))


def _warnings(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted(_pairs(validate_document(doc).warnings))


MESSAGES = "asyncapi3-operation-messages-from-referred-channel"


def test_a_reference_that_is_not_a_uri_reference_skips_the_messages_rule() -> None:
    """Braces are not allowed in an RFC 3986 URI reference: the official rule's input check
    fails, and the operation is not checked (verified with the official parser)."""
    channels = {
        "rooms/{id}": {
            "address": "rooms/{id}",
            "parameters": {"id": {}},
            "messages": {"m": {"payload": {"type": "string"}}},
        },
        "plain": {"address": "plain", "messages": {"m": {"payload": {"type": "string"}}}},
    }
    braces = {
        "action": "send",
        "channel": {"$ref": "#/channels/rooms~1{id}"},
        "messages": [{"$ref": "#/channels/plain/messages/m"}],
    }
    assert _errors(_doc(channels=channels, operations={"o": braces})) == []
    plain = {
        "action": "send",
        "channel": {"$ref": "#/channels/plain"},
        "messages": [{"$ref": "#/channels/rooms~1{id}/messages/m"}],
    }
    assert _errors(_doc(channels=channels, operations={"o": plain})) == []


def test_an_operation_with_an_inline_channel_owns_no_referenced_message() -> None:
    channels = {"plain": {"address": "plain", "messages": {"m": {"payload": {}}}}}
    operation = {
        "action": "send",
        "channel": {"address": "inline"},
        "messages": [{"$ref": "#/channels/plain/messages/m"}],
    }
    assert _errors(_doc(channels=channels, operations={"o": operation})) == [
        (MESSAGES, "/operations/o/messages/0")
    ]


def test_an_inline_channel_in_an_operation_is_schema_valid() -> None:
    """The official parser checks the resolved document, where a channel is in place anyway."""
    assert _errors(_doc(operations={"o": {"action": "send", "channel": {"address": "x"}}})) == []


def test_channel_parameters_without_an_address_are_all_redundant() -> None:
    doc = _doc(channels={"c": {"parameters": {"a": {}, "b": {}}}})
    assert _errors(doc) == [
        ("asyncapi3-channel-parameters", "/channels/c/parameters/a"),
        ("asyncapi3-channel-parameters", "/channels/c/parameters/b"),
    ]


def test_repeated_address_parameters_are_listed_as_the_official_parser_lists_them() -> None:
    report = validate_document(_doc(channels={"c": {"address": "{a}/{a}/{b}", "parameters": {}}}))
    assert _pairs(report.errors) == [("asyncapi3-channel-parameters", "/channels/c/parameters")]
    assert "'a', 'a', 'b'" in report.errors[0].message


def test_channel_parameters_of_a_non_string_address_are_left_to_the_schema() -> None:
    doc = _doc(channels={"c": {"address": 5, "parameters": {"a": {}}}})
    assert _errors(doc) == [("asyncapi-schema", "/channels/c/address")]


def test_channel_servers_are_checked_only_when_every_channel_names_them() -> None:
    doc = _doc(
        servers={"s": {"host": "h", "protocol": "ws"}},
        channels={
            "named": {"servers": ["nope"]},
            "referenced": {"servers": [{"$ref": "#/servers/s"}]},
        },
    )
    assert _errors(doc) == [("asyncapi-schema", "/channels/named/servers/0")]


def test_a_server_reference_elsewhere_than_servers_is_refused_in_root_channels_only() -> None:
    components = {
        "servers": {"x": {"host": "h", "protocol": "ws"}},
        "channels": {"c": {"servers": [{"$ref": "#/components/servers/x"}]}},
    }
    assert _errors(_doc(components=components)) == []
    channels = {"c": {"servers": [{"$ref": "#/components/servers/x"}]}}
    assert _errors(_doc(channels=channels, components=components)) == [
        ("asyncapi3-required-channel-servers-unambiguity", "/channels/c/servers/0/$ref")
    ]


# --- the warnings' edges -----------------------------------------------------------------------


def test_a_server_template_without_variables_warns() -> None:
    doc = _doc(servers={"s": {"host": "{h}.example.com", "protocol": "ws"}})
    assert _warnings(doc) == [("asyncapi3-server-variables", "/servers/s/host")]


def test_scopes_of_schemes_other_than_oauth2_are_not_checked() -> None:
    scheme = {
        "type": "openIdConnect",
        "openIdConnectUrl": "https://a.example/.well-known",
        "scopes": ["anything"],
    }
    assert _warnings(_doc(components={"securitySchemes": {"o": scheme}})) == []


def test_a_shared_component_is_warned_about_once() -> None:
    message = {"payload": {"type": "string"}, "examples": [{"payload": 5}]}
    doc = _doc(
        channels={
            "a": {"messages": {"m": {"$ref": "#/components/messages/m"}}},
            "b": {"messages": {"m": {"$ref": "#/components/messages/m"}}},
        },
        operations={
            "o": {
                "action": "send",
                "channel": {"$ref": "#/channels/a"},
                "messages": [{"$ref": "#/channels/a/messages/m"}],
            }
        },
        components={"messages": {"m": message}},
    )
    assert _warnings(doc) == [
        ("asyncapi3-message-examples", "/components/messages/m/examples/0/payload")
    ]


def test_a_reply_without_an_address_may_use_a_channel_with_one() -> None:
    doc = _doc(
        channels={"q": {"address": "q"}, "r": {"address": "r"}},
        operations={
            "o": {
                "action": "send",
                "channel": {"$ref": "#/channels/q"},
                "reply": {"channel": {"$ref": "#/channels/r"}},
            }
        },
    )
    assert _warnings(doc) == []


# --- any shape: a verdict, never an exception ------------------------------------------------


def _chat() -> dict[str, Any]:
    data: dict[str, Any] = documents.read_document(FIXTURES.parent / "chatroom-3.0.yaml").data
    return data


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.text(max_size=6)
    | st.sampled_from([{"$ref": "#/channels/room"}, {"$ref": "#/nowhere"}, {"$ref": 5}]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=5,
)


def _replace(node: Any, data: st.DataObject) -> Any:
    """``node`` with one node somewhere in it replaced by arbitrary JSON."""
    if not isinstance(node, (dict, list)) or not node or data.draw(st.integers(0, 3)) == 0:
        return data.draw(JSON)
    if isinstance(node, dict):
        key = data.draw(st.sampled_from(sorted(node)))
        return {**node, key: _replace(node[key], data)}
    index = data.draw(st.integers(0, len(node) - 1))
    return [_replace(v, data) if i == index else v for i, v in enumerate(node)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_shape_gets_a_report(data: st.DataObject) -> None:
    doc = _chat()
    key = data.draw(st.sampled_from(sorted(doc)))
    doc = {**doc, key: _replace(doc[key], data)}
    written = check_written(doc)
    assert all(p.rule in RULES for p in written)
    report = validate_document(doc)
    assert all(p.message and p.rule for p in (*report.errors, *report.warnings))


def test_a_schema_format_that_is_not_a_string_is_left_to_the_schema() -> None:
    message = {
        "payload": {"schemaFormat": ["text"], "schema": {"type": "string"}},
        "examples": [{"payload": 5}],
    }
    doc = _doc(channels={"rooms": {"address": "rooms", "messages": {"chat": message}}})
    assert {rule for rule, _ in _errors(doc)} == {"asyncapi-schema"}
