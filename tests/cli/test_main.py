from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from asyncapi_gw import documents
from asyncapi_gw.cli import main
from asyncapi_gw.cli.main import EXIT_UNSUPPORTED

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
CHAT = str(FIXTURES / "chatroom.yaml")
WSO2 = str(FIXTURES / "wso2-export.yaml")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_valid_and_invalid(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run(capsys, "validate", CHAT, WSO2)[0] == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("asyncapi: 2.6.0\ninfo:\n  title: x\nchannels: {}\n")
    code, out, _ = run(capsys, "validate", CHAT, str(bad))
    assert code == 1
    assert "version" in out
    assert "bad.yaml:2:" in out


def test_validate_json_lines(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("asyncapi: 2.6.0\ninfo:\n  title: x\nchannels: {}\n")
    code, out, _ = run(capsys, "validate", "--format", "json", CHAT, str(bad))
    assert code == 1
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["valid"] for line in lines] == [True, False]
    for line in lines:
        assert set(line) == {"file", "valid", "supported", "asyncapi", "errors", "warnings"}
        assert line["supported"] is True
    assert lines[0]["file"] == CHAT
    assert lines[0]["asyncapi"] == "2.6.0"
    error = lines[1]["errors"][0]
    assert set(error) >= {"pointer", "line", "column", "rule", "message"}
    assert error["line"] == 2
    assert error["pointer"] == "/info"


def test_validate_unreadable_file_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run(capsys, "validate", "--format", "json", str(tmp_path / "missing.yaml"))
    assert code == 2
    assert json.loads(out)["valid"] is False
    assert run(capsys, "validate", CHAT, str(tmp_path))[0] == 2


def test_validate_syntax_error_is_invalid(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "syntax.yaml"
    bad.write_text("asyncapi: 2.6.0\ninfo: [\n")
    code, out, _ = run(capsys, "validate", str(bad))
    assert code == 1
    assert "syntax.yaml:" in out


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["validate"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["export", CHAT, "--asyncapi-version", "9.9.9"])
    assert info.value.code == 2


def test_export_unchanged_equals_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "export", CHAT)
    assert code == 0
    assert documents.parse_document(out).data == documents.read_document(CHAT).data
    target = tmp_path / "out.json"
    assert run(capsys, "export", WSO2, "--format", "json", "-o", str(target))[0] == 0
    assert json.loads(target.read_text()) == documents.read_document(WSO2).data


def test_export_to_older_version_fails_clearly(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "export", CHAT, "--asyncapi-version", "2.0.0")
    assert code == 1
    assert "2.0.0" in err
    assert "Traceback" not in err


def test_export_lenient(capsys: pytest.CaptureFixture[str]) -> None:
    lenient = str(FIXTURES / "wso2-lenient.yaml")
    assert run(capsys, "export", lenient)[0] == 1
    code, out, err = run(capsys, "export", "--lenient", lenient)
    assert code == 0
    assert "warning:" in err
    assert documents.parse_document(out).data["channels"]


def test_new_writes_a_valid_document(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "new.yaml"
    code, _, _ = run(
        capsys,
        "new",
        "--name",
        "Chats",
        "--version",
        "1.0.0",
        "--endpoint",
        "ws://localhost:8080",
        "--sandbox-endpoint",
        "ws://localhost:8081",
        "--topic",
        "/rooms/{roomId}:pubsub=/rooms?room={uri.var.roomId}",
        "--topic",
        "/notifications:sub=/notifications",
        "--auth",
        "oauth2",
        "--description",
        "Chat rooms",
        "-o",
        str(target),
    )
    assert code == 0
    assert run(capsys, "validate", str(target))[0] == 0
    code, out, _ = run(capsys, "inspect", "--format", "json", str(target))
    info = json.loads(out)
    assert info["context"] == "/chats"
    assert [t["name"] for t in info["topics"]] == ["/rooms/{roomId}", "/notifications"]
    assert info["topics"][0]["operations"] == ["publish", "subscribe"]
    assert info["topics"][1]["operations"] == ["subscribe"]


def test_new_default_topic_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "new",
        "--name",
        "Echo",
        "--version",
        "1",
        "--endpoint",
        "wss://echo.example",
        "--format",
        "json",
    )
    assert code == 0
    doc = json.loads(out)
    assert list(doc["channels"]) == ["/*"]
    assert set(doc["channels"]["/*"]) >= {"publish", "subscribe"}


def test_new_sets_scopes_open_topics_and_throttling(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "secured.yaml"
    code, _, err = run(
        capsys,
        "new",
        "--name",
        "Chats",
        "--version",
        "1.0.0",
        "--endpoint",
        "ws://localhost:8080",
        "--auth",
        "oauth2",
        "--topic",
        "/rooms/{roomId}",
        "--topic",
        "/news:sub",
        "--scope",
        "/rooms/{roomId}=chat:write",
        "--scope",
        "rooms/{roomId}=chat:admin",
        "--open-topic",
        "/news",
        "--throttling",
        "100/minute",
        "--per-principal",
        "10",
        "-o",
        str(target),
    )
    assert code == 0, err
    assert run(capsys, "validate", str(target))[0] == 0
    doc = documents.parse_document(target.read_text()).data
    assert doc["x-asyncapi-gw-throttling"] == {"events": 100, "per": "minute", "perPrincipal": 10}
    rooms = doc["channels"]["/rooms/{roomId}"]
    assert (
        rooms["publish"]["x-scopes"]
        == rooms["subscribe"]["x-scopes"]
        == ["chat:write", "chat:admin"]
    )
    assert doc["channels"]["/news"]["x-auth-type"] == "None"
    flows = doc["components"]["securitySchemes"]["oauth2"]["flows"]["implicit"]
    assert set(flows["scopes"]) == {"chat:write", "chat:admin"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--scope", "/nope=s", "--auth", "oauth2"], "not one of the topics"),
        (["--open-topic", "/*"], "need an API with auth"),
        (["--throttling", "10/hour"], "second, minute or day"),
        (["--per-principal", "5"], "--per-principal needs --throttling"),
    ],
)
def test_new_refuses_bad_security_and_throttling(
    capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    code, _, err = run(
        capsys, "new", "--name", "X", "--version", "1", "--endpoint", "ws://h", *extra
    )
    assert code in (1, 2)
    assert message in err


@pytest.mark.parametrize(
    ("topics", "message"),
    [
        # WSO2's placeholder is {uri.var.NAME}; a bare {room} would be refused by serve
        (["--topic", "/rooms/{room}=/r/{room}"], "{uri.var.NAME}"),
        (["--topic", "/rooms/{room}=/r/{uri.var.id}"], "no such parameter"),
        (["--topic", "/a/{x}", "--topic", "/a/{y}"], "match the same paths"),
    ],
)
def test_new_refuses_what_serve_would_refuse(
    capsys: pytest.CaptureFixture[str], topics: list[str], message: str
) -> None:
    """`new` writes only documents that `serve` loads unedited."""
    code, out, err = run(
        capsys, "new", "--name", "X", "--version", "1", "--endpoint", "ws://h", *topics
    )
    assert code == 2
    assert message in err
    assert out == ""


def test_new_bad_values_exit_nonzero(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "new", "--name", "X", "--version", "1", "--endpoint", "http://nope")
    assert code in (1, 2)
    assert "endpoint" in err


def test_inspect_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "inspect", CHAT)
    assert code == 0
    assert "ws://localhost:9099/chats/1.0.0" in out
    assert "wss://localhost:8099/chats/1.0.0" in out
    code, out, _ = run(capsys, "inspect", CHAT, "--format", "json", "--context", "/{version}/c")
    info = json.loads(out)
    assert info["gateway_urls"] == ["ws://localhost:9099/1.0.0/c", "wss://localhost:8099/1.0.0/c"]
    room = next(t for t in info["topics"] if t["name"] == "/rooms/{roomId}")
    assert room["parameters"] == ["roomId"]
    assert room["backend_url"] == "ws://localhost:8080/ws/rooms/{uri.var.roomId}"


def test_python_dash_m_and_console_script() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "asyncapi_gw", "validate", CHAT],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "valid" in proc.stdout


def test_validate_text_counts_errors_in_words(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    one = tmp_path / "one.yaml"
    one.write_text("asyncapi: 2.7.0\ninfo: {title: T, version: '1'}\nchannels: {}\n")
    two = tmp_path / "two.yaml"
    two.write_text("asyncapi: 2.6.0\ninfo: {title: T}\nchannels: {'a?b': {}, 'c#d': {}}\n")
    code, out, _ = run(capsys, "validate", str(two))
    assert code == 1
    assert f"{two}: AsyncAPI 2.6.0 invalid (3 errors)\n" in out
    code, out, _ = run(capsys, "validate", str(one), str(two))
    assert code == 3  # one file's version is not supported: that code wins over invalid
    assert f"{one}: AsyncAPI 2.7.0 not supported (supported: 2.0.0 to 2.6.0, 3.0.0, 3.1.0)\n" in out


def test_a_closed_pipe_ends_quietly() -> None:
    # Far more output than a pipe buffers, so that writing outlives the reader.
    files = [str(p) for p in sorted((FIXTURES / "invalid").glob("*.yaml"))] * 60
    proc = subprocess.Popen(
        [sys.executable, "-m", "asyncapi_gw", "validate", *files],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # as `| head -1` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err
    assert "BrokenPipeError" not in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("asyncapi-gw 0.")


# ---------------------------------------------------------------- unsupported versions

V4 = "asyncapi: 4.0.0\ninfo: {title: T, version: '1'}\nchannels: {}\n"
V1 = "asyncapi: 1.2.0\ninfo: {title: T, version: '1'}\ntopics: {}\n"


@pytest.mark.parametrize("text", [V4, V1])
def test_an_unsupported_version_is_not_an_invalid_document(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str
) -> None:
    doc = tmp_path / "doc.yaml"
    doc.write_text(text)
    declared = text.split()[1]
    code, out, _ = run(capsys, "validate", str(doc))
    assert code == EXIT_UNSUPPORTED == 3
    headline = out.splitlines()[0]
    assert headline == (
        f"{doc}: AsyncAPI {declared} not supported (supported: 2.0.0 to 2.6.0, 3.0.0, 3.1.0)"
    )
    assert "invalid" not in out
    code, out, _ = run(capsys, "validate", "--format", "json", str(doc))
    assert code == 3
    line = json.loads(out)
    assert line["supported"] is False
    assert line["valid"] is False
    assert line["asyncapi"] == declared
    for command in ("export", "inspect"):
        code, _, err = run(capsys, command, str(doc))
        assert code == 3
        assert f'AsyncAPI version "{declared}" is not supported' in err


def test_a_missing_version_is_invalid_not_unsupported(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    doc = tmp_path / "doc.yaml"
    doc.write_text("info: {title: T, version: '1'}\nchannels: {}\n")
    code, out, _ = run(capsys, "validate", "--format", "json", str(doc))
    assert code == 1
    assert json.loads(out)["supported"] is None
    code, _, err = run(capsys, "inspect", str(doc))
    assert code == 1
    assert "'asyncapi' is missing" in err


def test_exit_codes_of_several_files_take_the_most_fundamental(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    unsupported = tmp_path / "v4.yaml"
    unsupported.write_text(V4)
    invalid = tmp_path / "bad.yaml"
    invalid.write_text("asyncapi: 2.6.0\ninfo: {title: T}\nchannels: {}\n")
    missing = tmp_path / "missing.yaml"
    assert run(capsys, "validate", CHAT, str(invalid), str(unsupported))[0] == 3
    assert run(capsys, "validate", str(unsupported), str(invalid))[0] == 3
    assert run(capsys, "validate", str(unsupported), str(missing), str(invalid))[0] == 2


# ---------------------------------------------------------------- --fail-on

WARNING_ONLY = """\
asyncapi: 2.6.0
info: {title: Warn, version: '1'}
channels:
  /a:
    bindings:
      ws:
        method: PUT
    subscribe:
      message: {payload: {type: string}}
"""


@pytest.mark.parametrize("fmt", ["text", "json", "github", "sarif", "junit"])
def test_fail_on_warning(capsys: pytest.CaptureFixture[str], tmp_path: Path, fmt: str) -> None:
    doc = tmp_path / "warn.yaml"
    doc.write_text(WARNING_ONLY)
    code, out, _ = run(capsys, "validate", "--format", fmt, str(doc))
    assert code == 0
    assert "asyncapi-binding" in out
    assert run(capsys, "validate", "--format", fmt, "--fail-on", "error", str(doc))[0] == 0
    assert run(capsys, "validate", "--format", fmt, "--fail-on", "warning", str(doc))[0] == 1
    assert run(capsys, "validate", "--fail-on", "warning", CHAT)[0] == 0
    with pytest.raises(SystemExit) as info:
        main(["validate", "--fail-on", "info", CHAT])
    assert info.value.code == 2


# ---------------------------------------------------------------- --lenient

NO_VERSION = """\
asyncapi: 2.6.0
info:
  title: Chats
channels:
  /rooms:
    subscribe:
      message:
        payload: {type: string}
"""


@pytest.mark.parametrize("command", ["inspect", "export"])
def test_lenient_import_that_cannot_build_an_api_says_why(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str
) -> None:
    doc = tmp_path / "noversion.yaml"
    doc.write_text(NO_VERSION)
    code, out, err = run(capsys, command, "--lenient", str(doc))
    assert code == 1
    assert out == ""
    lines = err.splitlines()
    # The schema's problem, as a located warning.
    assert f"warning: {doc}:2:1: /info: " in err
    assert any(
        line.startswith("warning:") and '"version"' in line and "[asyncapi-schema]" in line
        for line in lines
    )
    # Why no API could be built: one sentence, without a misleading verdict or an empty value.
    [headline] = [line for line in lines if line.startswith("error:")]
    assert headline == (
        f"error: {doc} cannot be imported, even leniently: info.version is "
        "missing, and an API needs a version (it is part of the gateway path)"
    )
    assert "valid AsyncAPI" not in err
    assert "''" not in err


def test_lenient_export_does_not_repeat_the_input_warnings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    lenient = str(FIXTURES / "wso2-lenient.yaml")
    code, _, err = run(capsys, "export", "--lenient", lenient)
    assert code == 0
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert warnings
    assert len(warnings) == len(set(warnings))
    assert all(line.startswith(f"warning: {lenient}:") for line in warnings)
    assert "output:" not in err


def test_lenient_export_locates_new_problems_in_the_source(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "out.yaml"
    code, _, err = run(
        capsys, "export", "--lenient", CHAT, "--asyncapi-version", "2.3.0", "-o", str(target)
    )
    assert code == 0
    [warning] = err.splitlines()
    assert warning.startswith(f"warning: {CHAT}:84:7: /components/messages/Notification/messageId")
    assert "introduced in AsyncAPI 2.4.0" in warning


# ---------------------------------------------------------------- conversion refusals


def test_a_conversion_refusal_names_the_feature_its_place_and_version(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "export", CHAT, "--asyncapi-version", "2.0.0")
    assert code == 1
    assert err.splitlines() == [
        'error: API "ChatRoom" cannot be written as AsyncAPI 2.0.0: it uses 1 feature '
        "introduced later",
        f'  {CHAT}:84:7: /components/messages/Notification/messageId: "messageId" (Message '
        "Object) was introduced in AsyncAPI 2.4.0; AsyncAPI 2.0.0 cannot express it "
        "[asyncapi-version-feature]",
    ]


# ---------------------------------------------------------------- $ref policy

MULTI = FIXTURES / "multi-file"


def test_shared_files_beside_the_document_folder_are_read_from_a_parent_directory(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The layout of the AsyncAPI specification's multi-file example:
    # service/asyncapi.yaml -> ../common/messages.yaml -> ./schemas.yaml.
    monkeypatch.chdir(MULTI)
    assert run(capsys, "validate", "chat-service/asyncapi.yaml") == (
        0,
        "chat-service/asyncapi.yaml: AsyncAPI 2.6.0 valid\n",
        "",
    )
    code, out, _ = run(capsys, "inspect", "--format", "json", "chat-service/asyncapi.yaml")
    assert code == 0
    assert json.loads(out)["production_endpoint"] == "ws://chat.example.com/ws"
    code, out, _ = run(capsys, "export", "chat-service/asyncapi.yaml")
    assert code == 0
    assert (
        documents.parse_document(out).data
        == documents.read_document(MULTI / "chat-service" / "asyncapi.yaml").data
    )
    # From inside the service's folder, ../common is outside both folders.
    monkeypatch.chdir(MULTI / "chat-service")
    code, out, _ = run(capsys, "validate", "asyncapi.yaml")
    assert code == 1
    assert "outside the document's folder" in out
    assert "--allow-outside-refs" in out
    assert run(capsys, "validate", "--allow-outside-refs", "asyncapi.yaml")[0] == 0


def _doc_with_ref(ref: str) -> str:
    return (
        "asyncapi: 2.6.0\ninfo: {title: T, version: '1'}\nchannels:\n  /a:\n    subscribe:\n"
        f"      message: {{$ref: '{ref}'}}\n"
    )


def test_absolute_and_file_url_refs_need_the_flag_even_under_the_directory(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "messages.yaml").write_text("Hello: {payload: {type: string}}\n")
    for ref in (f"{tmp_path}/messages.yaml#/Hello", f"{tmp_path.as_uri()}/messages.yaml#/Hello"):
        (tmp_path / "doc.yaml").write_text(_doc_with_ref(ref))
        code, out, _ = run(capsys, "validate", "doc.yaml")
        assert code == 1
        assert "absolute file references are refused" in out
        assert run(capsys, "validate", "--allow-outside-refs", "doc.yaml")[0] == 0


def test_a_symlink_cannot_carry_a_ref_out_of_the_directory(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "messages.yaml").write_text("Hello: {payload: {type: string}}\n")
    project = tmp_path / "project"
    (project / "api").mkdir(parents=True)
    (project / "shared").symlink_to(outside, target_is_directory=True)
    (project / "api" / "doc.yaml").write_text(_doc_with_ref("../shared/messages.yaml#/Hello"))
    monkeypatch.chdir(project)
    code, out, _ = run(capsys, "validate", "api/doc.yaml")
    assert code == 1
    assert "outside the document's folder" in out
    # The same file through a real folder under the directory is fine.
    (project / "shared").unlink()
    (project / "shared").mkdir()
    (project / "shared" / "messages.yaml").write_text("Hello: {payload: {type: string}}\n")
    assert run(capsys, "validate", "api/doc.yaml")[0] == 0


def test_the_remote_ref_hint_does_not_suggest_fetching(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    doc = tmp_path / "doc.yaml"
    doc.write_text(_doc_with_ref("https://example.com/messages.yaml#/Hello"))
    for extra in ([], ["--allow-remote-refs"]):
        code, out, err = run(capsys, "validate", *extra, str(doc))
        assert code == 1
        assert "nothing is fetched from the network" in out
        assert "allow-remote-refs" not in out
        assert "allow_remote_refs" not in out
        assert ("has no effect" in err) == bool(extra)
