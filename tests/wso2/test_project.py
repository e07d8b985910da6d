"""WSO2 API projects: reading them by WSO2's precedence, writing them back, checking api.yaml."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import attrs
import pytest

from asyncapi_gw import (
    AuthKind,
    AuthType,
    ConversionError,
    DocumentError,
    Endpoint,
    Operation,
    Problem,
    Throttling,
    ThrottlingUnit,
    UnsupportedVersionError,
    ValidationError,
    import_asyncapi,
    load_asyncapi,
)
from asyncapi_gw.documents import parse_document
from asyncapi_gw.wso2 import (
    encode_project,
    import_project,
    read_project,
    validate_project,
    wso2_version,
)

ROOT = Path(__file__).resolve().parents[2]


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def _data(raw: bytes) -> object:
    return parse_document(raw).data


def test_a_42_project_imports_by_api_yaml_and_its_definition(market: Path) -> None:
    result = import_project(market)
    api = result.api
    assert result.warnings == ()
    assert (api.name, api.version, api.context) == ("MarketFeed", "1.0.0", "/market")
    assert api.gateway_path == "/market/1.0.0"
    assert api.production_endpoint == Endpoint(url="ws://localhost:7070")
    assert api.sandbox_endpoint == Endpoint(url="ws://localhost:7071")
    assert api.throttling == Throttling(events=10_000, unit=ThrottlingUnit.MINUTE)
    assert api.auth_kinds == {AuthKind.OAUTH2, AuthKind.API_KEY}
    oauth2 = next(s for s in api.security if s.kind is AuthKind.OAUTH2)
    assert dict(oauth2.scopes) == {"trader": "Place orders", "viewer": "See prices"}
    assert dict(oauth2.scope_bindings) == {
        "trader": "internal/trader,admin",
        "viewer": "internal/everyone",
    }
    orders = api.topic("/orders/{account}")
    assert orders.subscribe is None
    assert orders.publish is not None
    assert orders.publish.uri_mapping == "/orders?account={uri.var.account}"
    assert orders.auth_type is AuthType.APPLICATION_USER
    assert api.topic("/status").is_open
    assert api.topic("/prices").subscribe is not None
    assert api.topic("/prices").subscribe.scopes == ("trader", "viewer")  # type: ignore[union-attr]


def test_the_project_is_its_definition_plus_its_api_yaml(market: Path) -> None:
    """What `inspect` shows for the definition, with api.yaml's context: the same topics."""
    alone = load_asyncapi(market / "Definitions" / "asyncapi.yaml", context="/market")
    api = import_project(market).api
    assert api.topics == alone.topics
    assert api.document == alone.document
    assert api.context == "/market"


def test_a_47_project_reads_its_30_definition_as_wso2_does(chats: Path) -> None:
    result = import_project(chats)
    api = result.api
    assert api.asyncapi_version == "3.0.0"
    assert api.context == "/{version}/chats"
    assert api.gateway_path == "/2.0.0/chats"
    # receive_/notifications is SUBSCRIBE in WSO2's reading, send_/chat PUBLISH.
    notifications = api.topic("/notifications")
    assert notifications.publish is None
    assert notifications.subscribe is not None
    assert {op.operation for op in api.topic("/chat").operations} == set(Operation)
    assert api.auth_kinds == {AuthKind.API_KEY}
    # ws://localhost:8080 and the definition's host + pathname "/" are one backend: no warning.
    assert result.warnings == ()


def test_an_unchanged_import_exports_equal_data_for_both_files(market: Path, chats: Path) -> None:
    for folder in (market, chats):
        source = read_project(folder)
        result = import_project(folder)
        assert result.project is not None
        written = encode_project(result.api, source=result.project)
        assert set(written.files) == set(source.files)
        for path, raw in source.files.items():
            assert _data(written.files[path]) == _data(raw), path
        assert written.folder == folder.name
    # Scalars are written as read: WSO2's unquoted timestamp stays a plain scalar.
    written = encode_project(import_project(market).api, source=import_project(market).project)
    assert b"\n  lastUpdatedTime: 2023-11-14 22:21:40.0\n" in written.files["api.yaml"]


def test_changes_reach_api_yaml_and_the_definition_where_each_says_them(market: Path) -> None:
    result = import_project(market)
    changed = attrs.evolve(
        result.api,
        context="/markets",
        production_endpoint=Endpoint(url="wss://feed.example.com/v1"),
        throttling=Throttling(events=20_000, unit=ThrottlingUnit.MINUTE),
    )
    written = encode_project(changed, source=result.project)
    meta = _data(written.files["api.yaml"])
    assert isinstance(meta, dict)
    data = meta["data"]
    assert data["context"] == "/markets"
    assert data["endpointConfig"]["production_endpoints"] == {"url": "wss://feed.example.com/v1"}
    assert data["apiThrottlingPolicy"] == "20KPerMin"
    assert data["businessInformation"]["businessOwner"] == "Trading Desk"  # unknown: kept
    definition = _data(written.files["Definitions/asyncapi.yaml"])
    assert isinstance(definition, dict)
    assert definition["servers"]["production"]["url"] == "wss://feed.example.com/v1"
    # The context and the quota are api.yaml's to say: the definition keeps quiet about them.
    assert "x-asyncapi-gw-context" not in definition
    assert "x-asyncapi-gw-throttling" not in definition


def test_the_definition_decides_the_topics_and_each_difference_is_a_warning(market: Path) -> None:
    api_yaml = market / "api.yaml"
    _edit(api_yaml, "target: /status", "target: /health")
    _edit(api_yaml, "uriMapping: /prices\n", "uriMapping: /quotes\n")
    _edit(api_yaml, "name: MarketFeed", "name: Market-Feed")
    result = import_project(market)
    assert result.api.name == "Market-Feed"  # api.yaml's
    assert [t.name for t in result.api.topics] == ["/prices", "/orders/{account}", "/status"]
    assert result.api.topic("/prices").subscribe.uri_mapping == "/prices"  # type: ignore[union-attr]
    messages = [str(w) for w in result.warnings if w.rule == "wso2-precedence"]
    assert len(messages) == 4, messages
    health = next(m for m in messages if "/health" in m)
    assert "api.yaml:" in health
    assert "asyncapi.yaml" in health
    status = next(m for m in messages if "SUBSCRIBE /status" in m)
    assert "asyncapi.yaml:" in status  # where the definition writes it
    mapping = next(m for m in messages if "uriMapping" in m)
    assert "/quotes" in mapping
    assert "asyncapi.yaml:" in mapping
    name = next(m for m in messages if "the name" in m)
    assert "/info/title" in name
    assert "api.yaml's" in name
    # Both locations: the warning is located in api.yaml and names the definition's place.
    located = next(w for w in result.warnings if "/health" in w.message)
    assert located.file is not None
    assert located.file.endswith("api.yaml")
    assert located.line is not None


def test_api_yaml_scopes_and_security_decide_over_the_definition(market: Path) -> None:
    api_yaml = market / "api.yaml"
    _edit(api_yaml, "description: See prices", "description: Read prices")
    _edit(api_yaml, "   - api_key\n", "")
    result = import_project(market)
    assert result.api.auth_kinds == {AuthKind.OAUTH2}
    oauth2 = result.api.security[0]
    assert oauth2.scopes["viewer"] == "Read prices"
    assert any(w.rule == "wso2-precedence" and "viewer" in w.message for w in result.warnings)


def test_the_json_definition_wins_and_api_yaml_wins_over_api_json(market: Path) -> None:
    definition = import_asyncapi(market / "Definitions" / "asyncapi.yaml").document
    assert definition is not None
    data = json.loads(json.dumps(definition.data))
    data["channels"]["/extra"] = {"subscribe": {}}
    (market / "Definitions" / "asyncapi.json").write_text(json.dumps(data))
    (market / "api.json").write_text(json.dumps({"type": "api", "data": {"name": "Other"}}))
    result = import_project(market)
    assert result.api.name == "MarketFeed"
    assert "/extra" in [t.name for t in result.api.topics]
    assert result.project is not None
    assert result.project.definition_file == "Definitions/asyncapi.json"


def test_a_project_without_a_definition_is_refused_in_wso2s_words(market: Path) -> None:
    (market / "Definitions" / "asyncapi.yaml").unlink()
    with pytest.raises(DocumentError) as caught:
        import_project(market)
    assert "Missing AsyncAPI definition file." in str(caught.value)
    assert caught.value.problems[0].rule == "wso2-missing-definition"


@pytest.mark.parametrize(
    ("kind", "words"), [("SSE", "not supported yet"), ("HTTP", "not a WebSocket")]
)
def test_other_api_types_are_refused_clearly(market: Path, kind: str, words: str) -> None:
    _edit(market / "api.yaml", "type: WS", f"type: {kind}")
    with pytest.raises(ConversionError) as caught:
        import_project(market, lenient=True)
    problem = caught.value.problems[-1]
    assert words in problem.message
    assert problem.pointer == "/data/type"
    assert problem.line is not None


def test_a_project_of_another_kind_is_refused(market: Path) -> None:
    _edit(market / "api.yaml", "type: api\n", "type: api_product\n")
    with pytest.raises(ConversionError, match="cannot be imported"):
        import_project(market)


def test_a_bad_verb_is_invalid_and_a_lenient_import_warns(market: Path) -> None:
    _edit(market / "api.yaml", "verb: PUBLISH", "verb: POST")
    with pytest.raises(ValidationError) as caught:
        import_project(market)
    assert [p.rule for p in caught.value.problems] == ["wso2-verb"]
    result = import_project(market, lenient=True)
    assert any(w.rule == "wso2-verb" for w in result.warnings)


def test_validate_checks_api_yaml_itself(market: Path) -> None:
    assert validate_project(market).valid
    _edit(market / "api.yaml", "     - viewer\n", "     - viewer\n     - admin\n")
    _edit(market / "api.yaml", "target: /status", "target: /health")
    report = validate_project(market)
    assert [p.rule for p in report.errors] == ["wso2-scope-undefined"]
    assert report.errors[0].file is not None
    assert report.errors[0].file.endswith("api.yaml")
    assert any("/health" in w.message for w in report.warnings)


def test_validate_reports_missing_fields_and_the_definitions_problems(market: Path) -> None:
    _edit(market / "api.yaml", "  context: /market\n", "")
    _edit(market / "Definitions" / "asyncapi.yaml", "  title: MarketFeed\n", "")
    report = validate_project(market)
    rules = {p.rule for p in report.errors}
    assert "wso2-api-field" in rules
    assert any(p.file and p.file.endswith("asyncapi.yaml") for p in report.errors)


def test_a_new_api_exports_for_46_and_for_47() -> None:
    api = load_asyncapi(ROOT / "fixtures" / "wso2-chats.yaml", context="/chats")
    old = encode_project(api, version="4.6")
    assert sorted(old.files) == ["Definitions/asyncapi.yaml", "api.yaml"]
    assert old.folder == "Chats-1.0.0"
    meta = _data(old.files["api.yaml"])
    assert isinstance(meta, dict)
    assert (meta["type"], meta["version"]) == ("api", "v4.6.0")
    data = meta["data"]
    assert (data["name"], data["version"], data["context"], data["type"]) == (
        "Chats",
        "1.0.0",
        "/chats",
        "WS",
    )
    assert data["endpointConfig"]["production_endpoints"] == {"url": "ws://localhost:8080/"}
    assert data["securityScheme"] == ["oauth2"]
    assert data["scopes"] == [
        {
            "scope": {
                "name": "creator",
                "displayName": "creator",
                "description": "creator",
                "bindings": ["admin"],
            },
            "shared": False,
        }
    ]
    verbs = {(op["target"], op["verb"]) for op in data["operations"]}
    assert verbs == {
        ("/notifications", "SUBSCRIBE"),
        ("/chat", "PUBLISH"),
        ("/chat", "SUBSCRIBE"),
        ("/feed", "PUBLISH"),
    }
    feed = next(op for op in data["operations"] if op["target"] == "/feed")
    assert feed["authType"] == "None"
    assert feed["uriMapping"] == "/feed"
    definition = _data(old.files["Definitions/asyncapi.yaml"])
    assert isinstance(definition, dict)
    assert definition["asyncapi"] == "2.0.0"
    assert "x-asyncapi-gw-context" not in definition

    new = encode_project(api, version="4.7.0")
    definition = _data(new.files["Definitions/asyncapi.yaml"])
    assert isinstance(definition, dict)
    assert definition["asyncapi"] == "3.0.0"
    channels = definition["channels"]
    actions = set()
    for op in definition["operations"].values():
        key = op["channel"]["$ref"].rsplit("/", 1)[1].replace("~1", "/")
        actions.add((channels[key]["address"], op["action"]))
    # WSO2 4.7's reading: send = clients publish.
    assert ("/feed", "send") in actions
    assert ("/notifications", "receive") in actions


def test_wso2_versions() -> None:
    assert wso2_version("4.7") == "4.7.0"
    assert wso2_version("v4.2.0") == "4.2.0"
    with pytest.raises(UnsupportedVersionError):
        wso2_version("3.2.0")


def test_a_20_project_exported_for_47_is_keyed_as_47_reads_it(market: Path, tmp_path: Path) -> None:
    """API-M 4.7 takes the text after ``#/channels/`` as the channel's key, unescaped."""
    result = import_project(market)
    warnings: list[Problem] = []
    written = encode_project(result.api, source=result.project, version="4.7", warnings=warnings)
    definition = _data(written.files["Definitions/asyncapi.yaml"])
    assert isinstance(definition, dict)
    assert definition["asyncapi"] == "3.0.0"
    assert list(definition["channels"]) == ["prices", "orders/{account}", "status"]
    refs = {op["channel"]["$ref"] for op in definition["operations"].values()}
    assert refs == {"#/channels/prices", "#/channels/orders~1{account}", "#/channels/status"}
    # The one 4.7 cannot follow is said, not hidden.
    assert [w.rule for w in warnings] == ["wso2-reference"]
    out = tmp_path / "out"
    out.mkdir()
    for path, raw in written.files.items():
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_bytes(raw)
    assert validate_project(out).valid
    again = import_project(out).api
    assert [t.path for t in again.topics] == [t.path for t in result.api.topics]
    assert again.topic("/status").publish is None


def test_a_47_project_exported_for_46_gets_a_20_definition(chats: Path) -> None:
    result = import_project(chats)
    written = encode_project(result.api, source=result.project, version="4.6")
    definition = _data(written.files["Definitions/asyncapi.json"])
    assert isinstance(definition, dict)
    assert definition["asyncapi"] == "2.0.0"
    assert set(definition["channels"]["/chat"]) >= {"publish", "subscribe"}
    assert "publish" not in definition["channels"]["/notifications"]
    meta = _data(written.files["api.yaml"])
    assert isinstance(meta, dict)
    assert meta["version"] == "v4.6.0"
    assert meta["data"]["context"] == "/{version}/chats"


def test_verbs_read_in_any_case_and_a_3x_layout_is_named(market: Path, tmp_path: Path) -> None:
    _edit(market / "api.yaml", "verb: PUBLISH", "verb: publish")
    assert import_project(market).warnings == ()
    old = tmp_path / "Old-1.0.0"
    (old / "Meta-information").mkdir(parents=True)
    (old / "Meta-information" / "api.yaml").write_text("id: {apiName: Old}\n")
    with pytest.raises(DocumentError, match=r"3\.x project"):
        import_project(_zip_folder(old, tmp_path / "old.zip"))


def _zip_folder(folder: Path, out: Path) -> Path:
    with zipfile.ZipFile(out, "w") as archive:
        for path in folder.rglob("*"):
            if path.is_file():
                archive.write(path, f"{folder.name}/{path.relative_to(folder).as_posix()}")
    return out


def test_a_bad_endpoint_is_invalid_and_a_bad_context_stops_even_a_lenient_import(
    market: Path,
) -> None:
    _edit(market / "api.yaml", "url: ws://localhost:7070", "url: http://localhost:7070")
    with pytest.raises(ValidationError) as caught:
        import_project(market)
    assert caught.value.problems[0].pointer == "/data/endpointConfig/production_endpoints/url"
    lenient = import_project(market, lenient=True)
    assert lenient.api.production_endpoint is None
    assert any("ws:// or wss://" in w.message for w in lenient.warnings)
    _edit(market / "api.yaml", "context: /market", "context: /mar ket")
    with pytest.raises(ConversionError) as stopped:
        import_project(market, lenient=True)
    assert any(p.pointer == "/data/context" for p in stopped.value.problems)


def test_a_new_projects_folder_name_stays_one_folder() -> None:
    api = load_asyncapi(ROOT / "fixtures" / "wso2-chats.yaml", context="/chats")
    assert encode_project(attrs.evolve(api, name="Chats/../Admin")).folder == "Chats_.._Admin-1.0.0"


def test_spaces_in_the_name_and_version_are_dropped_as_wso2_imports_them(market: Path) -> None:
    """WSO2's importer removes every space from data.name and data.version before it creates
    the API (ImportUtils.processRetrievedDefinition), so "Market Feed" is served as MarketFeed;
    the project still exports unchanged."""
    _edit(market / "api.yaml", "  name: MarketFeed\n", "  name: Market Feed\n")
    _edit(market / "api.yaml", "  version: 1.0.0\n", "  version: 1.0 .0\n")
    result = import_project(market)
    assert (result.api.name, result.api.version) == ("MarketFeed", "1.0.0")
    assert result.api.gateway_path == "/market/1.0.0"
    assert result.project is not None
    written = encode_project(result.api, source=result.project)
    assert _data(written.files["api.yaml"]) == _data((market / "api.yaml").read_bytes())


def test_a_definition_without_a_sandbox_server_is_silent_not_different(market: Path) -> None:
    """API Manager writes only a production server into the definitions it generates, while
    api.yaml keeps both endpoints: the definition saying nothing about the sandbox is no
    difference to warn about, and api.yaml's sandbox is served."""
    _edit(
        market / "Definitions" / "asyncapi.yaml",
        "  sandbox:\n    url: ws://localhost:7071\n    protocol: ws\n",
        "",
    )
    result = import_project(market)
    assert result.warnings == ()
    assert result.api.sandbox_endpoint == Endpoint(url="ws://localhost:7071")
