"""The AsyncAPI 3.x codec on its own: resolved documents in, APIs out, and back.

These tests call :mod:`asyncapi_gw.asyncapi.v3` directly, on documents the official parser
(``@asyncapi/parser``) accepts; the loader's 3.x path (validation first) is in
``test_import_export_v3.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest
from codec_helpers import FIXTURES, V3, WSO2, chat_api, decode, export
from document_strategies import SOURCE_FIELDS, edit, mutate, v3_documents
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncapi_gw import documents
from asyncapi_gw.asyncapi import load_asyncapi, v3
from asyncapi_gw.builder import topic as builder_topic
from asyncapi_gw.errors import ConversionError, Problem, Severity
from asyncapi_gw.model import (
    AuthKind,
    AuthType,
    Endpoint,
    Parameter,
    PointOfView,
    StreamingAPI,
)


def directions(api: StreamingAPI) -> dict[str, set[str]]:
    return {t.name: {op.operation.value for op in t.operations} for t in api.topics}


def rules(problems: list[Problem]) -> list[str]:
    return [p.rule for p in problems]


def source_free(api: StreamingAPI) -> StreamingAPI:
    return attrs.evolve(api, **SOURCE_FIELDS)


# ------------------------------------------------------------------ reading: point of view


def test_a_wso2_document_is_read_from_the_client_side_and_says_so() -> None:
    api, problems = decode(WSO2)
    assert api.point_of_view is PointOfView.CLIENT
    assert directions(api) == {
        "/notifications": {"subscribe"},
        "/chat": {"publish", "subscribe"},
        "/feed": {"publish"},
    }
    [stated] = [p for p in problems if p.rule == v3.POINT_OF_VIEW_RULE]
    assert stated.severity is Severity.WARNING
    assert stated.pointer == "/operations"
    assert "client's point of view" in stated.message
    assert '"receive_/notifications"' in stated.message
    assert "--point-of-view application" in stated.message
    notifications = api.topic("/notifications")
    assert notifications.subscribe is not None
    assert notifications.subscribe.uri_mapping == "/notifications"
    assert notifications.subscribe.scopes == ("creator",)
    assert notifications.subscribe.operation_id is None  # WSO2's generated name
    assert api.topic("/chat").scopes == ("creator",)
    assert api.topic("/chat").auth_type is AuthType.ANY
    assert api.topic("/feed").is_open
    assert api.production_endpoint == Endpoint(url="ws://localhost:8080/")
    assert api.sandbox_endpoint == Endpoint(url="ws://localhost:8081/")
    [scheme] = api.security
    assert (scheme.kind, dict(scheme.scopes), dict(scheme.scope_bindings)) == (
        AuthKind.OAUTH2,
        {"creator": "creator"},
        {"creator": "admin"},
    )


def test_the_point_of_view_given_is_used_without_a_warning() -> None:
    as_wso2, problems = decode(WSO2, point_of_view=PointOfView.CLIENT)
    assert v3.POINT_OF_VIEW_RULE not in rules(problems)
    assert source_free(as_wso2) == source_free(decode(WSO2)[0])
    as_spec, problems = decode(WSO2, point_of_view=PointOfView.APPLICATION)
    assert v3.POINT_OF_VIEW_RULE not in rules(problems)
    assert as_spec.point_of_view is PointOfView.APPLICATION
    # The specification's reading of WSO2's document inverts every topic.
    assert directions(as_spec) == {
        "/notifications": {"publish"},
        "/chat": {"publish", "subscribe"},
        "/feed": {"subscribe"},
    }


def test_a_document_partly_named_as_wso2_names_operations_is_read_as_the_spec_says() -> None:
    data = documents.read_document(WSO2).data
    data["operations"]["pushFeed"] = data["operations"].pop("send_/feed")
    api, problems = decode(data)
    assert api.point_of_view is PointOfView.APPLICATION
    assert directions(api)["/notifications"] == {"publish"}
    [stated] = [p for p in problems if p.rule == v3.POINT_OF_VIEW_RULE]
    assert "3 of 4 operations" in stated.message
    assert "--point-of-view client" in stated.message


def test_wso2_like_names_alone_do_not_make_a_document_wso2s() -> None:
    # Hand-written operation names that happen to be <action>_<address>, and nothing else
    # WSO2 writes: the specification's reading, with a warning naming the option.
    doc = {
        "asyncapi": "3.0.0",
        "info": {"title": "T", "version": "1"},
        "channels": {"message": {"address": "message"}, "updates": {"address": "updates"}},
        "operations": {
            "send_message": {"action": "send", "channel": {"$ref": "#/channels/message"}},
            "receive_updates": {"action": "receive", "channel": {"$ref": "#/channels/updates"}},
        },
    }
    api, problems = decode(doc)
    assert api.point_of_view is PointOfView.APPLICATION
    assert directions(api) == {"message": {"subscribe"}, "updates": {"publish"}}
    [stated] = [p for p in problems if p.rule == v3.POINT_OF_VIEW_RULE]
    assert "--point-of-view client" in stated.message
    # One WSO2 marker (its x-auth-type on a channel) and the names are WSO2's.
    doc["channels"]["message"]["x-auth-type"] = "Any"
    assert decode(doc)[0].point_of_view is PointOfView.CLIENT


@pytest.mark.parametrize(
    ("publish", "pov"),
    [
        ("receive", PointOfView.APPLICATION),
        ("send", PointOfView.CLIENT),
    ],
)
def test_the_official_converters_names_keep_the_2x_direction(
    publish: str, pov: PointOfView
) -> None:
    subscribe = "send" if publish == "receive" else "receive"
    doc = {
        "asyncapi": "3.0.0",
        "info": {"title": "T", "version": "1"},
        "channels": {"/in": {"address": "/in"}, "/out": {"address": "/out"}},
        "operations": {
            "/in.publish": {"action": publish, "channel": {"$ref": "#/channels/~1in"}},
            "/out.subscribe": {"action": subscribe, "channel": {"$ref": "#/channels/~1out"}},
        },
    }
    api, problems = decode(doc)
    assert api.point_of_view is pov
    assert directions(api) == {"/in": {"publish"}, "/out": {"subscribe"}}
    stated = [p.message for p in problems if p.rule == v3.POINT_OF_VIEW_RULE]
    assert len(stated) == (pov is PointOfView.CLIENT)
    assert all("official converter" in m for m in stated)


@pytest.mark.parametrize(
    ("twin_3x", "twin_2x", "pov"),
    [
        ("chatroom.yaml", "chatroom.yaml", PointOfView.APPLICATION),
        ("wso2-4.7.yaml", "wso2-chats.yaml", PointOfView.CLIENT),
    ],
)
def test_a_3x_document_reads_like_its_2x_twin(twin_3x: str, twin_2x: str, pov: PointOfView) -> None:
    api, _ = decode(V3 / twin_3x)
    assert api.point_of_view is pov
    twin = load_asyncapi(FIXTURES / twin_2x)

    def served(a: StreamingAPI) -> Any:
        return (
            a.name,
            a.version,
            a.context,
            a.production_endpoint,
            a.sandbox_endpoint,
            [(s.name, s.kind, dict(s.scopes), dict(s.scope_bindings)) for s in a.security],
            [
                (
                    t.name,
                    t.auth_type,
                    [p.name for p in t.parameters],
                    dict(t.bindings),
                    [
                        (
                            op.operation,
                            op.operation_id,
                            op.uri_mapping,
                            op.scopes,
                            op.message and op.message["payload"],
                        )
                        for op in t.operations
                    ],
                )
                for t in a.topics
            ],
        )

    assert served(api) == served(twin)


def test_the_specification_twin_has_no_problems() -> None:
    assert decode(V3 / "chatroom.yaml")[1] == []


def test_spec_style_websocket_examples() -> None:
    api, problems = decode(V3 / "market-feed.yaml")
    assert api.point_of_view is PointOfView.APPLICATION
    assert api.production_endpoint == Endpoint(url="wss://ws.example.com")
    assert directions(api) == {
        "/v1/marketdata/{symbol}": {"subscribe"},
        "/": {"publish", "subscribe"},  # five channels on one address, replies included
        "status": {"subscribe"},
    }
    feed = api.topic("/v1/marketdata/{symbol}")
    assert feed.parameters == (
        Parameter(
            name="symbol",
            description="A currency pair.",
            schema={"type": "string", "enum": ["btcusd", "ethusd"], "default": "btcusd"},
        ),
    )
    assert feed.subscribe is not None
    assert feed.subscribe.operation_id is None  # the official converter's generated name
    assert feed.subscribe.summary == "Market updates on a given symbol."
    root = api.topic("/")
    assert root.publish is not None
    assert root.subscribe is not None
    assert root.publish.operation_id == "pingPong"
    assert [
        m["payload"]["properties"]["event"]["const"] for m in root.publish.message["oneOf"][:1]
    ] == ["ping"]
    assert len(root.publish.message["oneOf"]) == 2  # ping, subscribe
    assert len(root.subscribe.message["oneOf"]) == 3  # heartbeat, pong, subscriptionStatus
    warned = {p.pointer: p.message for p in problems}
    assert 'its topic is named after its key, "status"' in warned["/channels/status/address"]
    assert 'no operation sends or receives on channel "audit"' in warned["/channels/audit"]


def test_a_reply_to_a_runtime_address_is_allowed_on_the_operations_topic() -> None:
    doc = {
        "asyncapi": "3.0.0",
        "info": {"title": "Q", "version": "1"},
        "channels": {
            "ask": {"address": "/ask"},
            "answers": {"address": None},
        },
        "operations": {
            "ask": {
                "action": "receive",
                "channel": {"$ref": "#/channels/ask"},
                "reply": {
                    "address": {"location": "$message.header#/replyTo"},
                    "channel": {"$ref": "#/channels/answers"},
                },
            },
        },
    }
    api, problems = decode(doc)
    assert directions(api) == {"/ask": {"publish", "subscribe"}}
    assert any(p.pointer == "/operations/ask/reply" and "runtime" in p.message for p in problems)


def test_wso2_unescaped_channel_references_are_read_with_a_warning() -> None:
    api, problems = decode(V3 / "wso2-4.7-nested.yaml", lenient=True)
    assert api.point_of_view is PointOfView.CLIENT
    assert directions(api) == {"/rooms/{roomId}": {"publish", "subscribe"}}
    assert api.topic("/rooms/{roomId}").publish.uri_mapping == "/rooms/{uri.var.roomId}"
    read = [p for p in problems if p.pointer.endswith("/channel/$ref")]
    assert len(read) == 2
    assert '"#/channels/rooms~1{roomId}"' in read[0].message


def _two_channels(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "T", "version": "1"},
        "channels": {"a": {"address": "/x", **first}, "b": {"address": "x", **second}},
        "operations": {
            "in": {
                "action": "receive",
                "channel": {"$ref": "#/channels/a"},
                "x-uri-mapping": "/one",
            },
            "in2": {
                "action": "receive",
                "channel": {"$ref": "#/channels/b"},
                "x-uri-mapping": first.get("x-test-mapping", "/one"),
            },
        },
    }


@pytest.mark.parametrize(
    ("first", "second", "named"),
    [
        ({"x-auth-type": "Any"}, {"x-auth-type": "None"}, "different x-auth-type (Any, None)"),
        ({"x-test-mapping": "/two"}, {}, 'different x-uri-mapping ("/one", "/two")'),
    ],
)
def test_channels_of_one_topic_that_disagree_cannot_be_one_topic(
    first: dict[str, Any], second: dict[str, Any], named: str
) -> None:
    doc = _two_channels(first, second)
    with pytest.raises(ConversionError) as caught:
        decode(doc)
    [problem] = [p for p in caught.value.problems if p.severity is Severity.ERROR]
    assert problem.rule == "model-conversion"
    assert named in problem.message
    api, problems = decode(doc, lenient=True)
    assert directions(api) == {"/x": {"publish"}}
    assert any(named in p.message for p in problems)


def test_channels_of_one_address_make_one_topic() -> None:
    api, _ = decode(_two_channels({"description": "first"}, {"description": "second"}))
    [topic] = api.topics
    assert (topic.name, topic.description) == ("/x", "first")
    assert topic.publish is not None
    assert topic.publish.operation_id == "in"


# ------------------------------------------------------------------ writing


@pytest.mark.parametrize("path", sorted(V3.glob("*.yaml")), ids=lambda p: p.name)
def test_an_unchanged_api_writes_its_source_back(path: Path) -> None:
    api, _ = decode(path, lenient=True)
    out, problems = export(api)
    source = documents.read_document(path).data
    assert problems == []
    assert out == source
    assert list(out) == list(source)


def test_turning_the_point_of_view_flips_every_action_and_back() -> None:
    wso2, _ = decode(WSO2)
    spec, problems = export(wso2, point_of_view=PointOfView.APPLICATION)
    assert problems == []
    assert {k: op["action"] for k, op in spec["operations"].items()} == {
        "notifications.subscribe": "send",
        "chat.subscribe": "send",
        "chat.publish": "receive",
        "feed.publish": "receive",
    }
    assert spec["channels"] == documents.read_document(WSO2).data["channels"]
    again, problems = decode(spec)
    assert v3.POINT_OF_VIEW_RULE not in rules(problems)
    assert again.point_of_view is PointOfView.APPLICATION
    assert source_free(attrs.evolve(again, point_of_view=None)) == source_free(
        attrs.evolve(wso2, point_of_view=None)
    )
    back, problems = export(again, point_of_view=PointOfView.CLIENT)
    assert problems == []
    assert back == documents.read_document(WSO2).data


@pytest.mark.parametrize("pov", list(PointOfView))
def test_a_new_api_written_from_either_side_reads_back_as_itself(pov: PointOfView) -> None:
    api = chat_api()
    out, problems = v3.encode(api, version="3.0.0", point_of_view=pov)
    assert problems == []
    back, problems = decode(out)
    assert back.point_of_view is pov
    assert source_free(attrs.evolve(back, point_of_view=None)) == source_free(api)
    names = set(out["operations"])
    if pov is PointOfView.CLIENT:
        assert names == {
            "send_/rooms/{roomId}",
            "receive_/rooms/{roomId}",
            "receive_/notifications",
            "send_/feed",
        }
        assert [p.rule for p in problems] == [v3.POINT_OF_VIEW_RULE]
        assert out["operations"]["send_/feed"]["channel"] == {"$ref": "#/channels/feed"}
    else:
        assert names == {
            "rooms/{roomId}.publish",
            "rooms/{roomId}.subscribe",
            "notifications.subscribe",
            "feed.publish",
        }
        assert out["operations"]["feed.publish"]["action"] == "receive"
    assert out["servers"]["production"] == {
        "host": "localhost:8080",
        "pathname": "/ws",
        "protocol": "ws",
        "security": [{"$ref": "#/components/securitySchemes/oauth2"}],
    }
    assert out["components"]["securitySchemes"]["oauth2"]["flows"]["implicit"] == {
        "authorizationUrl": "http://localhost:9999",
        "availableScopes": {"chat:write": "chat:write", "chat:read": "chat:read"},
    }


def test_a_2x_api_is_written_as_3x_from_the_model() -> None:
    twin = load_asyncapi(FIXTURES / "chatroom.yaml")
    out, problems = v3.encode(twin, version="3.1.0")
    assert out["asyncapi"] == "3.1.0"
    assert out["info"]["contact"] == {"name": "Chat team", "email": "chat@example.com"}
    assert out["x-asyncapi-gw-context"] == "/chats"
    # Its schemas stay: the messages written out may reference them (ChatMessage.replyTo).
    source = documents.read_document(FIXTURES / "chatroom.yaml").data
    assert out["components"]["schemas"] == source["components"]["schemas"]
    assert list(out)[-1] == "components"
    notifications = out["channels"]["notifications"]
    assert list(notifications["messages"]) == ["notification"]  # its 2.x messageId
    assert "messageId" not in notifications["messages"]["notification"]
    assert out["operations"]["receiveNotification"] == {
        "action": "send",
        "channel": {"$ref": "#/channels/notifications"},
        "x-uri-mapping": "/notifications",
        "x-scopes": ["chat:read"],
        "messages": [{"$ref": "#/channels/notifications/messages/notification"}],
    }
    # A 2.x parameter schema with a pattern has no 3.x spelling: named, not dropped silently.
    [unwritten] = problems
    assert unwritten.rule == "model-conversion"
    assert unwritten.pointer == "/channels/rooms~1{roomId}/parameters/roomId"
    assert "pattern" in unwritten.message
    back, _ = decode(out)
    assert directions(back) == directions(twin)


def test_an_edited_topic_keeps_the_rest_of_its_channel_and_operations() -> None:
    api, _ = decode(V3 / "chatroom.yaml")
    room = api.topic("/rooms/{roomId}")
    assert room.subscribe is not None
    subscribe = attrs.evolve(room.subscribe, uri_mapping="/r/{uri.var.roomId}")
    changed = attrs.evolve(room, subscribe=subscribe, publish=None)
    edited = api.with_topics([changed if t is room else t for t in api.topics])
    out, problems = export(edited)
    assert problems == []
    source = documents.read_document(V3 / "chatroom.yaml").data
    assert "sendChatMessage" not in out["operations"]
    assert out["operations"]["receiveChatMessage"] == {
        **source["operations"]["receiveChatMessage"],
        "x-uri-mapping": "/r/{uri.var.roomId}",
    }
    assert out["channels"] == source["channels"]
    assert out["components"] == source["components"]
    back, _ = decode(out)
    assert source_free(back) == source_free(edited)


def test_a_topic_added_to_a_wso2_document_is_written_as_wso2_writes_it() -> None:
    api, _ = decode(WSO2)
    added = builder_topic("/alerts", "sub", uri_mapping="/alerts")
    out, _ = export(api.with_topics([*api.topics, added]))
    assert out["channels"]["alerts"] == {"address": "/alerts"}
    assert out["operations"]["receive_/alerts"] == {
        "action": "receive",
        "channel": {"$ref": "#/channels/alerts"},
        "x-uri-mapping": "/alerts",
    }
    back, _ = decode(out)
    assert back.point_of_view is PointOfView.CLIENT
    assert back.topic("/alerts") == added


def test_removing_a_topic_drops_its_channels_operations_and_replies() -> None:
    api, _ = decode(V3 / "market-feed.yaml")
    out, _ = export(api.with_topics(t for t in api.topics if t.name != "/"))
    assert set(out["channels"]) == {"/v1/marketdata/{symbol}", "status", "audit"}
    assert set(out["operations"]) == {"/v1/marketdata/{symbol}.subscribe", "status"}


# ------------------------------------------------------------------ properties


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(v3_documents())
def test_round_trip_is_identity(doc: dict[str, Any]) -> None:
    api, _ = decode(doc)
    out, problems = export(api)
    assert problems == []
    assert out == doc


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(v3_documents(), st.data(), st.sampled_from([None, *PointOfView]))
def test_an_edited_api_reads_back_as_the_edit(
    doc: dict[str, Any], data: st.DataObject, pov: PointOfView | None
) -> None:
    api, _ = decode(doc)
    edited = edit(api, data)
    out, problems = export(edited, point_of_view=pov)
    assert problems == []
    back, _ = decode(out)
    written = pov or api.point_of_view
    if edited.topics:  # without operations a document reads the same from either side
        assert back.point_of_view is written
    expected = attrs.evolve(edited, point_of_view=back.point_of_view)
    if written is PointOfView.CLIENT:  # operations get WSO2's names, which are no ids
        expected = expected.with_topics(
            attrs.evolve(
                t,
                **{op.operation.value: attrs.evolve(op, operation_id=None) for op in t.operations},
            )
            for t in edited.topics
        )
    assert source_free(back) == source_free(expected)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(v3_documents(), st.data(), st.booleans(), st.sampled_from([None, *PointOfView]))
def test_any_mutation_decodes_and_encodes_or_gives_a_typed_error(
    doc: dict[str, Any], data: st.DataObject, lenient: bool, pov: PointOfView | None
) -> None:
    broken = mutate(doc, data)
    if not isinstance(broken, dict):
        return
    try:
        api, _ = decode(broken, lenient=lenient)
        export(api, point_of_view=pov)
    except ConversionError:
        pass
