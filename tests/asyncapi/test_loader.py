from __future__ import annotations

import gc
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest

from asyncapi_gw import documents
from asyncapi_gw.asyncapi import (
    dump_asyncapi,
    export_asyncapi,
    import_asyncapi,
    load_asyncapi,
    loads_asyncapi,
    validate_document,
)
from asyncapi_gw.builder import new_api, topic
from asyncapi_gw.errors import (
    ConversionError,
    DocumentError,
    Severity,
    UnsupportedVersionError,
    ValidationError,
)
from asyncapi_gw.model import AuthKind, AuthType, Endpoint, Operation, Throttling
from asyncapi_gw.schema import VALIDATION_VERSIONS

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
VERSIONED = sorted((FIXTURES / "versions").glob("*.yaml"))
VALID = [
    FIXTURES / "chatroom.yaml",
    FIXTURES / "wso2-export.yaml",
    FIXTURES / "wso2-choreo-connect.yaml",
    *VERSIONED,
]


def source_data(path: Path) -> Any:
    return documents.read_document(path).data


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_fixtures_validate(path: Path) -> None:
    report = validate_document(path)
    assert report.valid, report.errors
    assert report.asyncapi == source_data(path)["asyncapi"]


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_unchanged_import_exports_equal_data(path: Path) -> None:
    exported = export_asyncapi(load_asyncapi(path))
    assert exported == source_data(path)
    assert list(exported) == list(source_data(path))  # key order kept


def test_chatroom_model() -> None:
    api = load_asyncapi(FIXTURES / "chatroom.yaml")
    assert (api.name, api.version, api.context) == ("ChatRoom", "1.0.0", "/chats")
    assert api.gateway_path == "/chats/1.0.0"
    assert api.production_endpoint == Endpoint(url="ws://localhost:8080/ws")
    assert api.sandbox_endpoint == Endpoint(url="ws://localhost:8081/ws")
    assert api.asyncapi_version == "2.6.0"
    assert [s.kind for s in api.security] == [AuthKind.OAUTH2]
    assert set(api.security[0].scopes) == {"chat:read", "chat:write"}
    room = api.topic("/rooms/{roomId}")
    assert room.publish is not None
    assert room.subscribe is not None
    assert room.publish.uri_mapping == "/rooms/{uri.var.roomId}"
    assert room.publish.scopes == ("chat:write",)
    assert room.scopes == ("chat:write", "chat:read")
    assert [p.name for p in room.parameters] == ["roomId"]
    assert room.publish.message is not None
    assert room.publish.message["payload"]["required"] == ("user", "text")  # $ref resolved
    assert room.bindings["ws"]["bindingVersion"] == "0.1.0"
    assert api.topic("/lobby").is_open
    assert not api.topic("/notifications").allows(Operation.PUBLISH)


def test_wso2_extensions() -> None:
    api = load_asyncapi(FIXTURES / "wso2-export.yaml")
    assert api.context == "/market-feed"  # no context extension: from the title
    prices = api.topic("/prices")
    assert prices.subscribe is not None
    assert prices.subscribe.scopes == ("trader", "viewer")
    assert prices.auth_type is AuthType.ANY
    orders = api.topic("/orders/{account}")
    assert orders.publish is not None
    assert orders.publish.uri_mapping == "/orders?account={uri.var.account}"
    assert orders.auth_type is AuthType.APPLICATION_USER
    assert api.topic("/status").is_open
    assert dict(api.security[0].scope_bindings) == {
        "trader": "internal/trader",
        "viewer": "internal/everyone",
    }


def test_wso2_disable_security_opens_a_channel() -> None:
    result = import_asyncapi(FIXTURES / "wso2-choreo-connect.yaml")
    assert result.warnings == ()
    api = result.api
    assert api.topic("/public").auth_type is AuthType.NONE
    assert api.topic("/public").is_open
    assert api.topic("/alerts").auth_type is None  # false: the API's security applies
    assert not api.topic("/private").is_open


def _marked(channel: dict[str, Any], **root: Any) -> dict[str, Any]:
    return {
        "asyncapi": "2.6.0",
        "info": {"title": "M", "version": "1"},
        **root,
        "channels": {"/a": {"subscribe": {}, **channel}},
    }


def test_wso2_disable_security_wins_over_a_secured_auth_type() -> None:
    # As in WSO2 Choreo Connect: the marker opens the topic whatever x-auth-type says.
    doc = _marked({"x-auth-type": "Application", "x-wso2-disable-security": True})
    result = import_asyncapi(doc)
    assert result.api.topic("/a").is_open
    assert [(p.pointer, p.rule, p.severity) for p in result.warnings] == [
        ("/channels/~1a/x-auth-type", "model-conversion", Severity.WARNING)
    ]
    assert "x-wso2-disable-security: true" in result.warnings[0].message


def test_wso2_disable_security_must_be_a_boolean() -> None:
    doc = _marked({"x-wso2-disable-security": "yes"})
    with pytest.raises(ConversionError) as raised:
        import_asyncapi(doc)
    [problem] = raised.value.problems
    assert problem.pointer == "/channels/~1a/x-wso2-disable-security"
    assert '"yes"' in problem.message
    lenient = import_asyncapi(doc, lenient=True)
    assert not lenient.api.topic("/a").is_open
    assert [p.pointer for p in lenient.warnings] == ["/channels/~1a/x-wso2-disable-security"]


def test_wso2_disable_security_elsewhere_is_ignored_with_a_word() -> None:
    doc = _marked({}, **{"x-wso2-disable-security": True})
    doc["channels"]["/a"]["subscribe"] = {"x-wso2-disable-security": True}
    result = import_asyncapi(doc)
    assert not result.api.topic("/a").is_open
    assert [p.pointer for p in result.warnings] == [
        "/x-wso2-disable-security",
        "/channels/~1a/subscribe/x-wso2-disable-security",
    ]
    assert all("read on channels only" in p.message for p in result.warnings)


def test_wso2_disable_security_round_trips_through_edits() -> None:
    path = FIXTURES / "wso2-choreo-connect.yaml"
    api = load_asyncapi(path)
    public = api.topic("/public")
    described = export_asyncapi(
        api.with_topics(
            [attrs.evolve(public, description="open") if t is public else t for t in api.topics]
        )
    )
    assert described["channels"]["/public"] == {
        **source_data(path)["channels"]["/public"],
        "description": "open",
    }
    secured = export_asyncapi(
        api.with_topics(
            [attrs.evolve(public, auth_type=AuthType.ANY) if t is public else t for t in api.topics]
        )
    )
    assert "x-wso2-disable-security" not in secured["channels"]["/public"]
    assert secured["channels"]["/public"]["x-auth-type"] == "Any"
    assert load_asyncapi(secured).topic("/public").auth_type is AuthType.ANY
    unstated = export_asyncapi(
        api.with_topics(
            [attrs.evolve(public, auth_type=None) if t is public else t for t in api.topics]
        )
    )
    assert not load_asyncapi(unstated).topic("/public").is_open


def test_server_variables_expand_to_defaults() -> None:
    api = load_asyncapi(FIXTURES / "versions" / "2.6.0.yaml")
    assert api.production_endpoint == Endpoint(url="ws://localhost:9000/ticker")
    assert api.topic("ticks/{symbol}").name == "ticks/{symbol}"
    assert [s.kind for s in api.security] == [AuthKind.API_KEY]


def test_context_override() -> None:
    api = load_asyncapi(FIXTURES / "chatroom.yaml", context="/{version}/talk")
    assert api.gateway_path == "/1.0.0/talk"
    out = export_asyncapi(api)
    assert out["x-asyncapi-gw-context"] == "/{version}/talk"
    with pytest.raises(ConversionError, match="cannot be represented"):
        load_asyncapi(FIXTURES / "chatroom.yaml", context="/bad{version}")


def test_edits_touch_only_what_changed() -> None:
    path = FIXTURES / "chatroom.yaml"
    api = load_asyncapi(path)
    room = api.topic("/rooms/{roomId}")
    assert room.publish is not None
    edited = attrs.evolve(
        room, publish=attrs.evolve(room.publish, uri_mapping="/r/{uri.var.roomId}")
    )
    new_topics = [edited if t is room else t for t in api.topics]
    new_topics.append(topic("/presence", "sub", uri_mapping="/presence"))
    out = export_asyncapi(api.with_topics(new_topics))
    original = source_data(path)
    assert out["channels"]["/rooms/{roomId}"]["publish"]["x-uri-mapping"] == "/r/{uri.var.roomId}"
    assert out["channels"]["/rooms/{roomId}"]["publish"]["message"] == {
        "$ref": "#/components/messages/ChatMessage"
    }  # $ref kept
    assert out["channels"]["/notifications"] == original["channels"]["/notifications"]
    assert out["channels"]["/presence"]["subscribe"] == {"x-uri-mapping": "/presence"}
    assert out["components"] == original["components"]
    reloaded = loads_asyncapi(documents.dump_document(out))
    assert reloaded.topic("/presence").subscribe is not None


def test_remove_topic_endpoint_and_throttling_roundtrip() -> None:
    api = load_asyncapi(FIXTURES / "wso2-export.yaml")
    changed = attrs.evolve(
        api,
        topics=[t for t in api.topics if t.name != "/*"],
        sandbox_endpoint=None,
        production_endpoint=Endpoint(url="wss://prices.example:443/feed"),
        throttling=Throttling(events=10),
    )
    out = export_asyncapi(changed)
    assert "/*" not in out["channels"]
    assert "sandbox" not in out["servers"]
    assert out["servers"]["production"] == {
        "url": "wss://prices.example:443/feed",
        "protocol": "wss",
    }
    again = load_asyncapi(out)
    assert again.throttling == Throttling(events=10)
    assert again.production_endpoint == changed.production_endpoint


def test_per_principal_throttling_round_trips_as_per_principal() -> None:
    api = load_asyncapi(FIXTURES / "wso2-export.yaml")
    limited = attrs.evolve(api, throttling=Throttling(events=100, per_principal=10))
    out = export_asyncapi(limited)
    assert out["x-asyncapi-gw-throttling"] == {"events": 100, "per": "minute", "perPrincipal": 10}
    assert load_asyncapi(out).throttling == limited.throttling
    out["x-asyncapi-gw-throttling"]["perPrincipal"] = 0
    with pytest.raises(ConversionError, match="perPrincipal must be a positive integer"):
        load_asyncapi(out)


def test_new_api_exports_valid_and_reimports_equal() -> None:
    api = new_api(
        name="Chats",
        version="2.0.0",
        endpoint="ws://localhost:8080",
        auth="oauth2",
        sandbox_endpoint="ws://localhost:8081",
        topics=[
            topic("/rooms/{roomId}", uri_mapping="/rooms/{uri.var.roomId}", scopes=["chat"]),
            topic("/news", "sub", auth_type=AuthType.NONE),
        ],
    )
    for version in ("2.0.0", "2.3.0", "2.6.0"):
        out = export_asyncapi(api, asyncapi_version=version)
        assert validate_document(out).valid
        back = load_asyncapi(out)
        strip = {"document": None, "asyncapi_version": None, "base_uri": None}
        assert attrs.evolve(back, **strip) == attrs.evolve(api, **strip)


def test_export_to_a_version_lacking_a_feature_is_an_error() -> None:
    api = load_asyncapi(FIXTURES / "chatroom.yaml")  # messageId needs 2.4.0+
    with pytest.raises(ConversionError) as info:
        export_asyncapi(api, asyncapi_version="2.0.0")
    assert any("messageId" in p.message or "messageId" in p.pointer for p in info.value.problems)
    assert export_asyncapi(api, asyncapi_version="2.4.0")["asyncapi"] == "2.4.0"


def test_export_to_newer_version() -> None:
    api = load_asyncapi(FIXTURES / "wso2-export.yaml")
    out = export_asyncapi(api, asyncapi_version="2.6.0")
    assert out["asyncapi"] == "2.6.0"
    assert {k: v for k, v in out.items() if k != "asyncapi"} == {
        k: v for k, v in source_data(FIXTURES / "wso2-export.yaml").items() if k != "asyncapi"
    }


def test_dump_formats() -> None:
    api = load_asyncapi(FIXTURES / "wso2-export.yaml")
    assert json.loads(dump_asyncapi(api, fmt="json"))["info"]["title"] == "Market Feed"
    assert loads_asyncapi(dump_asyncapi(api)).name == "Market Feed"


def test_lenient_import_of_a_schema_invalid_wso2_document() -> None:
    path = FIXTURES / "wso2-lenient.yaml"
    with pytest.raises(ValidationError) as info:
        load_asyncapi(path)
    problem = info.value.problems[0]
    assert problem.line is not None
    assert problem.column is not None
    assert "authorizationUrl" in problem.message
    result = import_asyncapi(path, lenient=True)
    assert result.api.topic("/alerts").subscribe is not None
    assert result.warnings
    assert all(w.severity is Severity.WARNING for w in result.warnings)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("asyncapi: 4.0.0\ninfo: {title: x, version: '1'}\n", UnsupportedVersionError),
        ("asyncapi: 1.2.0\ninfo: {title: x, version: '1'}\n", UnsupportedVersionError),
        ("info: {title: x, version: '1'}\n", ValidationError),  # not an AsyncAPI document
        ("asyncapi: 2.6\ninfo: {title: x, version: '1'}\n", ValidationError),
        ("- a\n- b\n", DocumentError),
        ("asyncapi: 2.6.0\ninfo: [\n", DocumentError),
    ],
)
def test_unsupported_and_unreadable(text: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        loads_asyncapi(text)


def test_unsupported_version_is_reported_with_supported_list() -> None:
    report = validate_document({"asyncapi": "4.0.0", "info": {"title": "x", "version": "1"}})
    assert not report.valid
    assert report.errors[0].rule == "asyncapi-version"
    assert "2.6.0" in report.errors[0].message


@pytest.mark.parametrize(("declared", "release"), [("2.0.0-rc1", "2.0.0"), ("2.0.0-rc2", "2.0.0")])
def test_pre_release_versions_are_not_supported(declared: str, release: str) -> None:
    # The official parser refuses them too ("Version "2.0.0-rc2" is not supported").
    text = f"asyncapi: {declared}\ninfo: {{title: x, version: '1'}}\nchannels: {{}}\n"
    report = validate_document(documents.parse_document(text))
    [problem] = report.errors
    assert (problem.rule, problem.pointer, problem.line) == ("asyncapi-version", "/asyncapi", 1)
    assert problem.message == (
        f'AsyncAPI "{declared}" is a pre-release of {release}: pre-releases are not supported '
        f"(nor by the official parser); declare a released version: "
        f"{', '.join(VALIDATION_VERSIONS)}"
    )
    with pytest.raises(UnsupportedVersionError, match="pre-release"):
        loads_asyncapi(text)


@pytest.mark.parametrize(("declared", "written"), [("1.2.0", '"1.2.0"'), ("2.6", '"2.6"')])
def test_an_unsupported_version_is_quoted_as_json(declared: object, written: str) -> None:
    report = validate_document({"asyncapi": declared, "info": {"title": "x", "version": "1"}})
    assert report.errors[0].message.startswith(f"AsyncAPI version {written} is not supported")


@pytest.mark.parametrize(("declared", "written"), [(2.6, "2.6"), (None, "null")])
def test_a_version_that_is_not_a_string_is_quoted_as_json(declared: object, written: str) -> None:
    report = validate_document({"asyncapi": declared, "info": {"title": "x", "version": "1"}})
    assert report.errors[0].message.endswith(f"not {written}")


def test_problems_are_located(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "asyncapi: 2.6.0\n"
        "info:\n  title: T\n  version: '1'\n"
        "channels:\n"
        "  /rooms/{id}:\n"
        "    parameters:\n"
        "      other: {schema: {type: string}}\n"
        "    publish:\n"
        "      operationId: x\n"
        "  /other:\n"
        "    subscribe:\n"
        "      operationId: x\n"
    )
    report = validate_document(path)
    rules = {p.rule for p in report.errors}
    assert "asyncapi2-channel-parameters" in rules
    assert "asyncapi2-operation-operationId-uniqueness" in rules
    for problem in report.errors:
        assert problem.line is not None
        assert problem.line > 1
        assert problem.file == str(path)


def test_bindings_are_errors_only_when_their_version_is_declared() -> None:
    def doc(binding: dict[str, object]) -> dict[str, object]:
        return {
            "asyncapi": "2.6.0",
            "info": {"title": "B", "version": "1"},
            "channels": {"/a": {"subscribe": {}, "bindings": {"ws": binding}}},
        }

    declared = validate_document(doc({"method": "PUT", "bindingVersion": "0.1.0"}))
    assert [p.rule for p in declared.errors] == ["asyncapi-binding"]
    assumed = validate_document(doc({"method": "PUT"}))
    assert assumed.valid
    assert [p.rule for p in assumed.warnings] == ["asyncapi-binding"]
    assert "the binding declares none" in assumed.warnings[0].message
    assert import_asyncapi(doc({"method": "PUT"})).warnings
    unknown = validate_document(doc({"method": "PUT", "bindingVersion": "0.9.0"}))
    assert unknown.valid
    assert [(p.rule, p.pointer) for p in unknown.warnings] == [
        ("asyncapi-binding", "/channels/~1a/bindings/ws/bindingVersion"),
        ("asyncapi-binding", "/channels/~1a/bindings/ws/method"),
    ]


def test_export_follows_refs_under_the_import_policy(tmp_path: Path) -> None:
    (tmp_path / "shared.yaml").write_text("Tick:\n  payload:\n    type: number\n")
    api_dir = tmp_path / "api"
    api_dir.mkdir()
    (api_dir / "api.yaml").write_text(
        "asyncapi: 2.6.0\ninfo: {title: T, version: '1'}\n"
        "channels:\n  /t:\n    subscribe:\n      message:\n"
        "        $ref: '../shared.yaml#/Tick'\n"
    )
    with pytest.raises(ValidationError):
        load_asyncapi(api_dir / "api.yaml")
    api = load_asyncapi(api_dir / "api.yaml", allow_outside_refs=True)
    topic_ = api.topic("/t")
    assert topic_.subscribe is not None
    assert topic_.subscribe.message == {"payload": {"type": "number"}}
    assert export_asyncapi(api, allow_outside_refs=True) == source_data(api_dir / "api.yaml")
    changed = api.with_topics([*api.topics, topic("/u", "pub")])
    with pytest.raises(ConversionError) as info:
        export_asyncapi(changed)
    assert {p.rule for p in info.value.problems} == {"asyncapi-ref"}


def test_a_changed_channel_written_as_a_ref_is_written_out_whole() -> None:
    doc = {
        "asyncapi": "2.6.0",
        "info": {"title": "R", "version": "1"},
        "channels": {"/rooms/{id}": {"$ref": "#/components/channels/Room"}},
        "components": {
            "channels": {
                "Room": {
                    "description": "a room",
                    "parameters": {"id": {"schema": {"type": "string", "minLength": 2}}},
                    "publish": {"x-uri-mapping": "/r/{uri.var.id}"},
                }
            }
        },
    }
    api = load_asyncapi(doc)
    assert export_asyncapi(api) == doc
    room = api.topic("/rooms/{id}")
    changed = attrs.evolve(room, description="renamed")
    out = export_asyncapi(api.with_topics([changed]))
    channel = out["channels"]["/rooms/{id}"]
    assert channel["description"] == "renamed"
    assert channel["parameters"] == {"id": {"schema": {"type": "string", "minLength": 2}}}
    assert channel["publish"] == {"x-uri-mapping": "/r/{uri.var.id}"}
    assert out["components"] == doc["components"]


class _Watched(Mapping[str, Any]):
    """A document that notes whether the cyclic garbage collector runs while it is read."""

    def __init__(self, data: Mapping[str, Any], seen: list[bool]) -> None:
        self._data, self._seen = data, seen

    def __getitem__(self, key: str) -> Any:
        self._seen.append(gc.isenabled())
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        self._seen.append(gc.isenabled())
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


@pytest.mark.parametrize("enabled", [True, False])
def test_loading_leaves_the_garbage_collector_alone(enabled: bool) -> None:
    # A library must not switch process-wide state, not even for the time of a call.
    data = documents.read_document(FIXTURES / "chatroom.yaml").data
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        for call in (validate_document, import_asyncapi, load_asyncapi):
            seen: list[bool] = []
            call(_Watched(data, seen))
            assert seen, call.__name__
            assert set(seen) == {enabled}, call.__name__
            assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


SHARED_MAIN = """\
asyncapi: 2.6.0
info: {title: T, version: '1'}
channels:
  a:
    publish:
      message: {$ref: '#/components/messages/M'}
      bindings: {$ref: '#/components/operationBindings/B'}
  b:
    publish:
      message: {$ref: '#/components/messages/M'}
      bindings: {$ref: '#/components/operationBindings/B'}
  c: {subscribe: {message: {$ref: '#/components/messages/M'}}}
  d: {subscribe: {message: {$ref: '#/components/messages/Wrap'}}}
  e: {subscribe: {message: {$ref: 'other.yaml#/Ext'}}}
  f: {subscribe: {message: {$ref: 'other.yaml#/Ext'}}}
components:
  messages:
    M:
      contentType: 5
      payload:
        type: object
        properties:
          n: {type: integer}
      examples:
        - payload: {n: x}
    Wrap:
      $ref: '#/components/messages/M'
  operationBindings:
    B:
      http: {type: get, bindingVersion: 0.1.0}
"""
SHARED_OTHER = """\
Ext:
  payload: {type: strin}
"""


def test_a_problem_in_a_shared_component_is_reported_once_where_it_is_written(
    tmp_path: Path,
) -> None:
    """M is used by channels a, b, c, by Wrap (and so d); Ext, in another file, by e and f;
    the operation bindings B by a and b."""
    (tmp_path / "main.yaml").write_text(SHARED_MAIN)
    (tmp_path / "other.yaml").write_text(SHARED_OTHER)
    report = validate_document(tmp_path / "main.yaml")
    main, other = str(tmp_path / "main.yaml"), str(tmp_path / "other.yaml")
    found = [(p.file, p.line, p.pointer, p.rule, p.message) for p in report.errors]
    assert sorted(found, key=lambda f: (str(f[0]), f[1] or 0)) == [
        (
            main,
            19,
            "/components/messages/M/contentType",
            "asyncapi-schema",
            '5 is not of type "string" (used in 5 places)',
        ),
        (
            main,
            25,
            "/components/messages/M/examples/0/payload/n",
            "asyncapi2-message-examples",
            '"x" is not of type "integer" (used in 5 places)',
        ),
        (
            main,
            30,
            "/components/operationBindings/B/http/type",
            "asyncapi-binding",
            '"get" is not one of ["request", "response"] (used in 2 places)',
        ),
        (
            other,
            2,
            "/Ext/payload/type",
            "asyncapi-schema",
            '"strin" is not one of ["array", "boolean", "integer", "null", "number", '
            '"object", "string"]; did you mean "string"? (used in 2 places)',
        ),
    ]


def test_a_shared_component_of_a_mapping_is_reported_once_without_lines() -> None:
    bad = {"contentType": 5, "payload": {"type": "object"}}
    doc = {
        "asyncapi": "2.6.0",
        "info": {"title": "T", "version": "1"},
        "channels": {
            f"c{i}": {"publish": {"message": {"$ref": "#/components/messages/M"}}} for i in range(5)
        },
        "components": {"messages": {"M": bad}},
    }
    report = validate_document(doc)
    assert [(p.line, p.pointer, p.message) for p in report.errors] == [
        (
            None,
            "/components/messages/M/contentType",
            '5 is not of type "string" (used in 5 places)',
        ),
    ]
    doc["components"]["messages"]["M"] = None  # a shared node of the wrong type
    report = validate_document(doc)
    assert [(p.pointer, p.message) for p in report.errors] == [
        ("/components/messages/M", 'null is not of type "object" (used in 5 places)'),
    ]
    del doc["components"]
    doc["channels"] = {f"c{i}": {"publish": {"message": dict(bad)}} for i in range(3)}
    report = validate_document(doc)  # the same mistake written three times is three problems
    assert [(p.pointer, p.message) for p in report.errors] == [
        (f"/channels/c{i}/publish/message/contentType", '5 is not of type "string"')
        for i in range(3)
    ]


# ---------------------------------------------------------------- lenient import failures


def test_a_lenient_import_that_cannot_build_an_api_carries_its_warnings(tmp_path: Path) -> None:
    path = tmp_path / "doc.yaml"
    path.write_text("asyncapi: 2.6.0\ninfo:\n  description: no title, no version\nchannels: {}\n")
    with pytest.raises(ConversionError) as info:
        import_asyncapi(path, lenient=True)
    error = info.value
    assert error.message == (
        f"{path} cannot be imported, even leniently: info.title is missing, and an API needs "
        "a name; info.version is missing, and an API needs a version (it is part of the "
        "gateway path)"
    )
    warnings = [p for p in error.problems if p.severity is Severity.WARNING]
    errors = [p for p in error.problems if p.severity is Severity.ERROR]
    assert {p.rule for p in warnings} == {"asyncapi-schema"}
    assert all((p.file, p.line) == (str(path), 2) for p in error.problems)
    assert [(p.pointer, p.rule) for p in errors] == [("/info", "model-conversion")] * 2
    # Strictly, the schema problems are the error.
    with pytest.raises(ValidationError):
        import_asyncapi(path)


def test_blank_and_non_text_identity_fields_are_named() -> None:
    data = {"asyncapi": "2.6.0", "info": {"title": " ", "version": 1}, "channels": {}}
    with pytest.raises(ConversionError) as info:
        import_asyncapi(data, lenient=True)
    assert "info.title is empty, and an API needs a name" in info.value.message
    assert "info.version is 1, not text, and an API needs a version" in info.value.message
    assert [p.pointer for p in info.value.problems if p.severity is Severity.ERROR] == [
        "/info/title",
        "/info/version",
    ]


# ---------------------------------------------------------------- export to older versions

# Valid 2.6.0, using every member that a 2.x version added to the official schema.
ALL_FEATURES: dict[str, Any] = {
    "asyncapi": "2.6.0",
    "info": {"title": "Everything", "version": "1.0.0"},
    "servers": {
        "production": {
            "url": "ws://localhost:8080",
            "protocol": "ws",
            "tags": [{"name": "env:prod"}],
        }
    },
    "channels": {
        "/a": {
            "servers": ["production"],
            "publish": {
                "security": [{"sasl": []}],
                "traits": [{"$ref": "#/components/operationTraits/Secure"}],
                "message": {"$ref": "#/components/messages/Hello"},
            },
            "subscribe": {
                "message": {
                    "oneOf": [
                        {
                            "payload": {"type": "string"},
                            "messageId": "inline",
                            "examples": [{"payload": "x", "name": "ex", "summary": "An example"}],
                        },
                        {"payload": {"type": "number"}},
                    ]
                },
            },
        },
    },
    "components": {
        "messages": {
            "Hello": {
                "payload": {"type": "string"},
                "traits": [{"$ref": "#/components/messageTraits/Common"}],
            }
        },
        "messageTraits": {"Common": {"messageId": "common"}},
        "operationTraits": {"Secure": {"security": [{"sasl": []}]}},
        "servers": {"spare": {"url": "ws://localhost:9090", "protocol": "ws"}},
        "channels": {"/spare": {"subscribe": {"message": {"payload": {"type": "string"}}}}},
        "serverVariables": {"port": {"default": "8080"}},
        "securitySchemes": {"sasl": {"type": "scramSha256"}},
    },
}
FEATURES = {  # pointer -> the version that introduced it
    "/components/messageTraits/Common/messageId": "2.4.0",
    "/components/operationTraits/Secure/security": "2.4.0",
    "/components/servers": "2.3.0",
    "/components/channels": "2.3.0",
    "/components/serverVariables": "2.4.0",
    "/components/securitySchemes/sasl": "2.1.0",
    "/servers/production/tags": "2.5.0",
    "/channels/~1a/servers": "2.2.0",
    "/channels/~1a/publish/security": "2.4.0",
    "/channels/~1a/subscribe/message/oneOf/0/messageId": "2.4.0",
    "/channels/~1a/subscribe/message/oneOf/0/examples/0/name": "2.1.0",
    "/channels/~1a/subscribe/message/oneOf/0/examples/0/summary": "2.1.0",
}


@pytest.mark.parametrize("version", ["2.0.0", "2.1.0", "2.2.0", "2.3.0", "2.4.0", "2.5.0"])
def test_export_to_an_older_version_names_each_feature_it_lacks(version: str) -> None:
    assert validate_document(ALL_FEATURES).errors == ()
    api = load_asyncapi(ALL_FEATURES)
    key = tuple(int(n) for n in version.split("."))
    expected = {
        pointer: since
        for pointer, since in FEATURES.items()
        if tuple(int(n) for n in since.split(".")) > key
    }
    if not expected:  # 2.5.0 has them all
        assert export_asyncapi(api, asyncapi_version=version)["asyncapi"] == version
        return
    with pytest.raises(ConversionError) as info:
        export_asyncapi(api, asyncapi_version=version)
    problems = info.value.problems
    # Every schema error is explained by a feature: no other problem is left.
    assert {p.rule for p in problems} == {"asyncapi-version-feature"}
    found = {p.pointer: p.message for p in problems}
    assert set(found) == set(expected)
    for pointer, since in expected.items():
        assert (
            f"introduced in AsyncAPI {since}; AsyncAPI {version} cannot express it"
            in found[pointer]
        )
    assert str(len(expected)) in info.value.message


def test_export_problems_are_located_in_the_source_document() -> None:
    path = FIXTURES / "chatroom.yaml"
    result = import_asyncapi(path)
    with pytest.raises(ConversionError) as info:
        export_asyncapi(result.api, asyncapi_version="2.3.0")
    [problem] = info.value.problems
    assert (problem.file, problem.line) == (None, None)  # no source given: a pointer only
    with pytest.raises(ConversionError) as info:
        export_asyncapi(result.api, asyncapi_version="2.3.0", source_document=result.document)
    [problem] = info.value.problems
    assert (problem.file, problem.line, problem.column) == (str(path), 84, 7)
    assert problem.pointer == "/components/messages/Notification/messageId"


def test_export_problems_in_another_file_are_located_there(tmp_path: Path) -> None:
    (tmp_path / "messages.yaml").write_text(
        "Hello:\n  messageId: hello\n  payload: {type: string}\n"
    )
    doc = tmp_path / "api.yaml"
    doc.write_text(
        "asyncapi: 2.6.0\ninfo: {title: T, version: '1'}\nchannels:\n  /a:\n"
        "    subscribe:\n      message: {$ref: 'messages.yaml#/Hello'}\n"
    )
    result = import_asyncapi(doc)
    with pytest.raises(ConversionError) as info:
        export_asyncapi(result.api, asyncapi_version="2.2.0", source_document=result.document)
    [problem] = info.value.problems
    assert (problem.file, problem.line, problem.column) == (str(tmp_path / "messages.yaml"), 2, 3)


def test_a_lenient_import_survives_a_security_scheme_type_that_is_not_text() -> None:
    data = {
        "asyncapi": "2.6.0",
        "info": {"title": "T", "version": "1"},
        "channels": {},
        "components": {"securitySchemes": {"k": {"type": {"a": 1}, "name": "n", "in": "header"}}},
    }
    result = import_asyncapi(data, lenient=True)
    assert result.api.security == ()
    assert result.warnings


def test_a_lenient_export_to_an_older_version_survives_a_scheme_type_that_is_not_text() -> None:
    data = {
        "asyncapi": "2.6.0",
        "info": {"title": "T", "version": "1"},
        "channels": {},
        "components": {"securitySchemes": {"k": {"type": ["plain"]}}},
    }
    result = import_asyncapi(data, lenient=True)
    warnings: list[Any] = []
    export_asyncapi(result.api, asyncapi_version="2.0.0", lenient=True, warnings=warnings)
    assert warnings
    assert all(w.rule != "asyncapi-version-feature" for w in warnings)


def test_encoded_slashes_extension_round_trips() -> None:
    original = source_data(FIXTURES / "chatroom.yaml")
    assert load_asyncapi(original).allow_encoded_slashes is False
    allowed = {**original, "x-asyncapi-gw-allow-encoded-slashes": True}
    api = load_asyncapi(allowed)
    assert api.allow_encoded_slashes is True
    assert export_asyncapi(api) == allowed  # unchanged: exported as it came
    out = export_asyncapi(attrs.evolve(api, allow_encoded_slashes=False))
    assert "x-asyncapi-gw-allow-encoded-slashes" not in out
    added = export_asyncapi(attrs.evolve(load_asyncapi(original), allow_encoded_slashes=True))
    assert added["x-asyncapi-gw-allow-encoded-slashes"] is True
    assert validate_document(added).valid
    with pytest.raises(ConversionError) as info:
        load_asyncapi({**original, "x-asyncapi-gw-allow-encoded-slashes": "yes"})
    assert [p.pointer for p in info.value.problems] == ["/x-asyncapi-gw-allow-encoded-slashes"]


def test_conversion_messages_quote_values_as_json_never_as_python() -> None:
    # x-auth-type true, a non-ws server without a protocol, two channels for one topic and a
    # scheme the gateway cannot enforce: every value is written as the document writes it.
    data = {
        "asyncapi": "2.6.0",
        "info": {"title": "T", "version": "1"},
        "servers": {
            "production": {"url": "ws://x", "protocol": "ws", "security": [{"k": []}]},
            "sandbox": {"url": "mqtt://x", "protocol": "mqtt"},
        },
        "channels": {
            "/a": {"x-auth-type": True, "subscribe": {}},
            "a": {"subscribe": {}},
        },
        "components": {"securitySchemes": {"k": {"type": "plain"}}},
    }
    result = import_asyncapi(data, lenient=True)
    warnings: list[Any] = []
    export_asyncapi(result.api, asyncapi_version="2.0.0", lenient=True, warnings=warnings)
    messages = [p.message for p in (*result.warnings, *warnings)]
    text = "\n".join(messages)
    assert "x-auth-type true " in text
    assert "True" not in text
    assert "'" not in text
    assert '"/a" and "a"' in text
    assert 'server "sandbox" uses protocol "mqtt"' in text
    assert 'security scheme "k" of type "plain"' in text
    assert 'security scheme type "plain" was introduced' in text
