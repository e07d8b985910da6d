"""Document-level conversion between AsyncAPI 2.x and 3.x (asyncapi_gw.asyncapi.convert).

Outputs are checked against the vendored official 3.0.0 schema with jsonschema (the document
as written: 3.0 requires Reference Objects in places, so it is checked unresolved, as the
official parser does) and, when node and ``@asyncapi/parser`` are found (``NODE_PATH``), by the
official parser itself. ``ASYNCAPI_SPEC_EXAMPLES`` may name a folder of the AsyncAPI
specification repository's 2.6.0 examples (``*.yml``) to convert them all.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import referencing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from referencing.jsonschema import DRAFT7

from asyncapi_gw import convert_asyncapi, documents, schema
from asyncapi_gw.asyncapi.convert import (
    BINDING_VERSIONS,
    V2,
    V3,
    convert_document,
)
from asyncapi_gw.errors import ConversionError, ValidationError
from asyncapi_gw.schema.bundle import bundled_schema
from tests.asyncapi.test_roundtrip_properties import documents as wso2_documents

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "convert"
FEATURES = FIXTURES / "features-2.6.yaml"
REQUEST_REPLY = FIXTURES / "request-reply-3.0.yaml"
EXAMPLES = os.environ.get("ASYNCAPI_SPEC_EXAMPLES")


def _validator() -> jsonschema.Draft7Validator:
    bundle = bundled_schema("3.0.0", resolved=False)
    resources = [(bundle["$id"], DRAFT7.create_resource(bundle))] + [
        (uri, DRAFT7.create_resource(contents)) for uri, contents in bundle["definitions"].items()
    ]
    registry: referencing.Registry[Any] = referencing.Registry().with_resources(resources)
    return jsonschema.Draft7Validator(bundle, registry=registry)


VALIDATOR_3_0 = _validator()


def schema_errors(data: dict[str, Any]) -> list[str]:
    plain = json.loads(json.dumps(data))
    return [f"{list(e.absolute_path)}: {e.message[:200]}" for e in VALIDATOR_3_0.iter_errors(plain)]


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = documents.read_document(path).data
    return data


def official_parser_errors(paths: list[Path]) -> dict[str, list[str]] | None:
    """The official parser's errors per file, or None when node or the parser is missing."""
    node = shutil.which("node")
    if node is None or not os.environ.get("NODE_PATH"):
        return None
    script = (
        "const {Parser, fromFile} = require('@asyncapi/parser'); const p = new Parser();"
        "(async () => { const out = {}; for (const f of process.argv.slice(1)) {"
        "const {diagnostics} = await fromFile(p, f).parse();"
        "out[f] = diagnostics.filter(d => d.severity === 0)"
        ".map(d => d.path.join('/') + ': ' + d.message); }"
        "console.log(JSON.stringify(out)); })();"
    )
    found = subprocess.run(
        [node, "-e", "require.resolve('@asyncapi/parser')"], capture_output=True, check=False
    )
    if found.returncode != 0:
        return None
    run = subprocess.run(
        [node, "-e", script, *map(str, paths)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result: dict[str, list[str]] = json.loads(run.stdout)
    return result


# ---------------------------------------------------------------------------------------------
# 2.x -> 3.0


def test_features_convert_to_valid_3_0_with_official_naming() -> None:
    source = load(FEATURES)
    out = convert_document(source, "3.0.0").data
    assert schema_errors(out) == []
    assert out["info"]["tags"] == [{"name": "trading"}]
    assert "tags" not in out
    server = out["servers"]["production"]
    assert (server["host"], server["pathname"], server["protocol"]) == (
        "feed.example.com",
        "/v1/{region}",
        "wss",
    )
    assert f"{V2}url" not in server  # wss:// + host + pathname spells the url back
    assert out["servers"]["broker"][f"{V2}url"] == "mqtt://broker.example.com:1883"
    # channel ids: x-channelId, else the address; operation ids: operationId, else derived
    assert set(out["channels"]) == {"prices/{symbol}", "legacyFeed"}
    assert out["channels"]["legacyFeed"]["address"] == "legacy"
    assert set(out["operations"]) == {"sendPrices", "receiveOrders", "legacyFeed.subscribe"}
    assert out["operations"]["sendPrices"]["action"] == "send"
    assert out["operations"]["receiveOrders"]["action"] == "receive"
    prices = out["channels"]["prices/{symbol}"]
    assert set(prices["messages"]) == {"priceTick", "heartbeat", "receiveOrders.message"}
    assert out["operations"]["sendPrices"]["messages"] == [
        {"$ref": "#/channels/prices~1{symbol}/messages/priceTick"},
        {"$ref": "#/channels/prices~1{symbol}/messages/heartbeat"},
    ]
    assert prices["messages"]["priceTick"] == {"$ref": "#/components/messages/tick"}
    assert prices["servers"] == [{"$ref": "#/servers/production"}]
    # a custom schema format becomes a multi-format payload
    avro = prices["messages"]["receiveOrders.message"]["payload"]
    assert avro["schemaFormat"] == "application/vnd.apache.avro;version=1.9.0"
    # security: a scoped requirement is the scheme with its scopes, as the official converter
    security = out["operations"]["sendPrices"]["security"][0]
    assert security["scopes"] == ["feed:read", "feed:write"]
    assert "availableScopes" in security["flows"]["clientCredentials"]
    assert out["servers"]["production"]["security"][1] == {
        "$ref": "#/components/securitySchemes/key"
    }
    # what 3.0 lacks is carried
    assert out["channels"]["legacyFeed"][f"{V2}deprecated"] is True
    assert out["components"]["messages"]["tick"][f"{V2}messageId"] == "priceTick"
    trait = out["components"]["messageTraits"]["versioned"]
    assert trait[f"{V2}messageId"] == "versionedTrait"
    assert out["components"]["operationTraits"]["tracked"][f"{V2}operationId"] == "trackedTrait"


def test_parameter_schema_is_kept_and_extensions_are_not_corrupted() -> None:
    out = convert_document(load(FEATURES), "3.0.0").data
    parameter = out["channels"]["prices/{symbol}"]["parameters"]["symbol"]
    assert parameter["default"] == "EURUSD"
    assert parameter["description"] == "The instrument."
    assert parameter["x-wso2-note"] == "kept as written"
    assert parameter[f"{V2}schema"] == {
        "type": "string",
        "pattern": "^[A-Z]{3,6}$",
        "maxLength": 6,
        "default": "EURUSD",
    }
    # a plain string schema with an enum needs no extension
    assert out["components"]["parameters"]["region"] == {"enum": ["eu", "us"]}


def test_bindings_migrate_to_versions_the_3_0_schema_accepts() -> None:
    out = convert_document(load(FEATURES), "3.0.0").data
    send = out["operations"]["sendPrices"]["bindings"]
    assert send["http"] == {f"{V2}type": "response"}  # 0.1.0's type: 0.3.0 has none
    assert send["kafka"] == {
        "bindingVersion": "0.5.0",
        "groupId": {"type": "string"},
        f"{V2}bindingVersion": "0.1.0",
    }
    receive = out["operations"]["receiveOrders"]["bindings"]
    assert receive["amqp"] == {
        "bindingVersion": "0.3.0",
        "ack": True,
        f"{V2}replyTo": "orders.replies",
        f"{V2}bindingVersion": "0.2.0",
    }
    server = out["servers"]["production"]["bindings"]["mqtt"]
    assert server == {"bindingVersion": "0.2.0", "clientId": "feed", f"{V2}bindingVersion": "0.1.0"}
    channel = out["channels"]["prices/{symbol}"]["bindings"]["ws"]
    assert channel["bindingVersion"] == "0.1.0"  # ws 0.1.0 is still the only version
    legacy = out["channels"]["legacyFeed"]["messages"]["legacy.message"]
    assert legacy["bindings"]["http"]["bindingVersion"] == "0.3.0"
    for protocol, kind, binding in (
        ("http", "operation", send["http"]),
        ("kafka", "operation", send["kafka"]),
        ("amqp", "operation", receive["amqp"]),
        ("mqtt", "server", server),
        ("http", "message", legacy["bindings"]["http"]),
    ):
        assert schema.validate_binding(binding, protocol=protocol, kind=kind, pointer="") == []


@pytest.mark.parametrize(
    ("protocol", "kind", "binding"),
    [
        ("http", "operation", {"type": "request", "method": "POST"}),
        ("http", "operation", {"bindingVersion": "0.1.0", "type": "response"}),
        ("http", "message", {"bindingVersion": "0.1.0", "headers": {"type": "object"}}),
        ("amqp", "operation", {"bindingVersion": "0.2.0", "replyTo": "r", "priority": 1}),
        ("amqp", "channel", {"bindingVersion": "0.2.0", "is": "queue", "queue": {"durable": True}}),
        ("amqp", "message", {"bindingVersion": "0.2.0", "messageType": "m"}),
        ("kafka", "operation", {"bindingVersion": "0.1.0", "clientId": {"type": "string"}}),
        ("kafka", "message", {"bindingVersion": "0.1.0", "key": {"type": "string"}}),
        ("mqtt", "operation", {"bindingVersion": "0.1.0", "qos": 2, "retain": True}),
        ("mqtt", "server", {"bindingVersion": "0.1.0", "cleanSession": True, "keepAlive": 60}),
        ("mqtt", "message", {"bindingVersion": "0.1.0"}),
    ],
)
def test_each_binding_migration_validates_and_reverts(
    protocol: str,
    kind: str,
    binding: dict[str, Any],
) -> None:
    folder = "messages" if kind == "message" else None
    doc: dict[str, Any] = {
        "asyncapi": "2.6.0",
        "info": {"title": "t", "version": "1"},
        "channels": {"c": {"publish": {"message": {"payload": {}}}}},
    }
    if kind == "server":
        doc["servers"] = {"s": {"url": "h", "protocol": protocol, "bindings": {protocol: binding}}}
    elif kind == "channel":
        doc["channels"]["c"]["bindings"] = {protocol: binding}
    elif folder:
        doc["channels"]["c"]["publish"]["message"]["bindings"] = {protocol: binding}
    else:
        doc["channels"]["c"]["publish"]["bindings"] = {protocol: binding}
    out = convert_document(doc, "3.0.0").data
    assert schema_errors(out) == []
    migrated = json.dumps(out)
    assert "0.1.0" not in migrated.replace(f'"{V2}bindingVersion": "0.1.0"', "") or protocol == "ws"
    assert convert_document(out, "2.6.0").data == doc


def test_binding_versions_table_matches_the_vendored_3_0_schema() -> None:
    definitions = bundled_schema("3.0.0")["definitions"]
    found: dict[tuple[str, str], tuple[str, ...]] = {}
    for kind in ("server", "channel", "operation", "message"):
        holder = definitions[f"http://asyncapi.com/definitions/3.0.0/{kind}BindingsObject.json"]
        for protocol, rule in holder["properties"].items():
            versions = rule.get("properties", {}).get("bindingVersion", {}).get("enum")
            if versions:
                found[protocol, kind] = tuple(versions)
    assert {k: set(v) for k, v in found.items()} == {
        k: set(v) for k, v in BINDING_VERSIONS["3.0.0"].items()
    }


def test_an_unknown_binding_version_is_refused_or_dropped() -> None:
    doc: dict[str, Any] = {
        "asyncapi": "2.6.0",
        "info": {"title": "t", "version": "1"},
        "channels": {"c": {"publish": {"bindings": {"kafka": {"bindingVersion": "9.9.9"}}}}},
    }
    with pytest.raises(ConversionError) as caught:
        convert_document(doc, "3.0.0")
    problem = caught.value.problems[0]
    assert problem.pointer == "/channels/c/publish/bindings/kafka/bindingVersion"
    assert "0.5.0" in problem.message
    lossy = convert_document(doc, "3.0.0", lossy=True)
    assert (
        "bindings" not in lossy.data["operations"]["c.publish"]
        or lossy.data["operations"]["c.publish"]["bindings"] == {}
    )
    assert [w.pointer for w in lossy.warnings] == [problem.pointer]


def test_point_of_view_client_inverts_the_actions() -> None:
    client = convert_document(load(FEATURES), "3.0.0", point_of_view="client").data
    assert client["operations"]["sendPrices"]["action"] == "receive"
    assert client["operations"]["receiveOrders"]["action"] == "send"
    back = convert_document(client, "2.6.0", point_of_view="client").data
    assert back == load(FEATURES)
    with pytest.raises(ValueError, match="point_of_view"):
        convert_document(load(FEATURES), "3.0.0", point_of_view="server")


# ---------------------------------------------------------------------------------------------
# round trips


def test_2_6_to_3_0_to_2_6_is_identity() -> None:
    source = load(FEATURES)
    there = convert_document(source, "3.0.0").data
    assert convert_document(there, "2.6.0").data == source
    assert convert_document(source, "3.1.0").data["asyncapi"] == "3.1.0"


def test_3_0_to_2_6_to_3_0_is_identity_for_what_2_6_can_hold() -> None:
    three = convert_document(load(FEATURES), "3.0.0").data
    # a 3.0-only field of each kind 2.6 lacks
    three["channels"]["prices/{symbol}"]["title"] = "Prices"
    three["operations"]["sendPrices"]["title"] = "Send prices"
    three["servers"]["production"]["summary"] = "Feed"
    two = convert_document(three, "2.6.0").data
    assert two["channels"]["prices/{symbol}"][f"{V3}title"] == "Prices"
    assert convert_document(two, "3.0.0").data == three


def test_refusals_name_the_field_its_location_and_the_version_holding_it() -> None:
    with pytest.raises(ConversionError) as caught:
        convert_asyncapi(REQUEST_REPLY, "2.6.0")
    problems = {p.pointer: p for p in caught.value.problems}
    assert set(problems) == {
        "/operations/ping/reply",
        "/operations/pingAgain",
        "/channels/ping/messages/pong",
        "/channels/ping/messages/unused",
    }
    reply = problems["/operations/ping/reply"]
    assert (reply.file, reply.line, reply.column) == (str(REQUEST_REPLY), 28, 5)
    assert "2.6.0" in reply.message
    assert "3.x" in reply.message
    lossy = convert_asyncapi(REQUEST_REPLY, "2.6.0", lossy=True)
    assert {w.pointer for w in lossy.warnings} == set(problems)
    channel = lossy.data["channels"]["/ping"]
    assert channel["x-channelId"] == "ping"
    assert channel[f"{V3}title"] == "Ping channel"
    assert "reply" not in channel["publish"]


def test_a_security_requirement_3_0_cannot_express_is_refused() -> None:
    doc = load(FEATURES)
    doc["servers"]["production"]["security"] = [{"oauth": [], "key": []}]
    with pytest.raises(ConversionError) as caught:
        convert_document(doc, "3.0.0")
    assert caught.value.problems[0].pointer == "/servers/production/security/0"
    assert "several schemes" in caught.value.problems[0].message


# ---------------------------------------------------------------------------------------------
# multi-file documents


def test_multi_file_documents_keep_external_refs_where_the_object_is_unchanged(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "api"
    shutil.copytree(FIXTURES / "multifile", folder)
    result = convert_asyncapi(folder / "main.yaml", "3.0.0")
    out = result.data
    assert schema_errors(out) == []
    changed = out["channels"]["comment/{commentId}/changed"]["messages"]
    # a message 3.0 reads the same stays a reference to its file
    assert changed == {"subscribe.message": {"$ref": "./common/messages.yaml#/commentChanged"}}
    liked = out["channels"]["comment/{commentId}/liked"]["messages"]["commentLiked"]
    # one with a messageId is converted in place, its reference carried, its own references
    # rewritten relative to the root document
    assert liked[f"{V2}ref"] == "./common/messages.yaml#/commentLiked"
    assert liked["payload"] == {"$ref": "common/schemas.yaml#/Liked"}
    assert out["components"]["schemas"]["Envelope"] == {"$ref": "./common/schemas.yaml#/Envelope"}
    written = folder / "main3.yaml"
    written.write_text(documents.dump_document(out), encoding="utf-8")
    back = convert_asyncapi(written, "2.6.0")
    assert back.data == load(folder / "main.yaml")
    assert back.warnings == ()
    files = official_parser_errors([written])
    if files is not None:
        assert files == {str(written): []}


def test_a_changed_object_is_written_in_place_with_a_warning(tmp_path: Path) -> None:
    folder = tmp_path / "api"
    shutil.copytree(FIXTURES / "multifile", folder)
    out = convert_asyncapi(folder / "main.yaml", "3.0.0").data
    liked = out["channels"]["comment/{commentId}/liked"]["messages"]["commentLiked"]
    liked["summary"] = "edited in 3.0"
    written = folder / "main3.yaml"
    written.write_text(documents.dump_document(out), encoding="utf-8")
    back = convert_asyncapi(written, "2.6.0")
    message = back.data["channels"]["comment/{commentId}/liked"]["publish"]["message"]
    assert message["summary"] == "edited in 3.0"
    assert [w.pointer for w in back.warnings] == [
        "/channels/comment~1{commentId}~1liked/messages/commentLiked"
    ]


def test_an_invalid_source_is_refused_before_conversion(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("asyncapi: 2.6.0\ninfo: {title: t}\nchannels: {}\n", encoding="utf-8")
    with pytest.raises(ValidationError):
        convert_asyncapi(bad, "3.0.0")


def test_older_2_x_targets_refuse_or_drop_what_they_lack() -> None:
    with pytest.raises(ConversionError) as caught:
        convert_asyncapi(FEATURES, "2.0.0")
    assert any(p.pointer.endswith("/messageId") for p in caught.value.problems)
    lossy = convert_asyncapi(FEATURES, "2.0.0", lossy=True)
    assert lossy.data["asyncapi"] == "2.0.0"
    assert "messageId" not in lossy.data["components"]["messages"]["tick"]
    assert any(w.pointer == "/components/messages/tick/messageId" for w in lossy.warnings)
    assert convert_asyncapi(FEATURES, "2.6.0").data == load(FEATURES)


# ---------------------------------------------------------------------------------------------
# generated documents


WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=6)


@st.composite
def rich_documents(draw: st.DrawFn) -> dict[str, Any]:
    """2.6.0 documents using parameters, oneOf messages, message ids, traits and bindings."""
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for index in range(draw(st.integers(1, 4))):
        name = f"{draw(WORD)}{index}/{{p{index}}}"
        channel: dict[str, Any] = {
            "parameters": {
                f"p{index}": draw(
                    st.sampled_from(
                        [
                            {"schema": {"type": "string"}},
                            {
                                "description": "d",
                                "schema": {"type": "string", "enum": ["a", "b"], "default": "a"},
                            },
                            {"schema": {"type": "integer", "minimum": 1}, "x-note": draw(WORD)},
                            {"schema": {"type": "string", "const": "only"}},
                            {"description": "no schema"},
                        ]
                    )
                )
            }
        }
        for kind in draw(st.sampled_from([["publish"], ["subscribe"], ["publish", "subscribe"]])):
            operation: dict[str, Any] = {}
            if draw(st.booleans()):
                operation["operationId"] = f"{kind}{index}{draw(WORD)}"
            count = draw(st.integers(0, 3))
            entries = []
            for m in range(count):
                entry: dict[str, Any] = {"payload": {"type": "string"}}
                if draw(st.booleans()):
                    entry["messageId"] = f"m{index}{kind}{m}"
                if draw(st.booleans()):
                    key = f"shared{index}{kind}{m}"
                    messages[key] = entry
                    entry = {"$ref": f"#/components/messages/{key}"}
                entries.append(entry)
            if count == 1:
                operation["message"] = entries[0]
            elif count > 1:
                operation["message"] = {"oneOf": entries}
            if draw(st.booleans()):
                operation["bindings"] = draw(
                    st.sampled_from(
                        [
                            {"http": {"type": "request", "method": "GET"}},
                            {"amqp": {"bindingVersion": "0.2.0", "replyTo": "r"}},
                            {"mqtt": {"qos": 1}},
                        ]
                    )
                )
            channel[kind] = operation
        channels[name] = channel
    doc: dict[str, Any] = {
        "asyncapi": "2.6.0",
        "info": {"title": "g", "version": "1"},
        "channels": channels,
    }
    if messages:
        doc["components"] = {"messages": messages}
    return doc


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(rich_documents(), wso2_documents()))
def test_generated_documents_convert_to_valid_3_0_and_back(doc: dict[str, Any]) -> None:
    source = copy.deepcopy(doc)
    out = convert_document(doc, "3.0.0").data
    assert doc == source  # the input is not changed
    assert schema_errors(out) == []
    assert convert_document(out, doc["asyncapi"]).data == doc


# ---------------------------------------------------------------------------------------------
# the specification's own examples


def _examples() -> list[Path]:
    return sorted(Path(EXAMPLES).glob("*.yml")) if EXAMPLES else []


@pytest.mark.skipif(
    not EXAMPLES, reason="set ASYNCAPI_SPEC_EXAMPLES to the spec's 2.6.0 examples folder"
)
def test_specification_examples_convert_to_valid_3_0_and_back(tmp_path: Path) -> None:
    written = []
    for path in _examples():
        source = load(path)
        result = convert_asyncapi(path, "3.0.0")
        assert schema_errors(result.data) == [], path.name
        assert convert_document(result.data, "2.6.0").data == source, path.name
        target = tmp_path / path.name
        target.write_text(documents.dump_document(result.data), encoding="utf-8")
        written.append(target)
    files = official_parser_errors(written)
    if files is not None:
        assert {k: v for k, v in files.items() if v} == {}
