from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from asyncapi_gw import documents
from asyncapi_gw.cli import main

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
        assert set(line) == {"file", "valid", "asyncapi", "errors", "warnings"}
    assert lines[0]["file"] == CHAT
    assert lines[0]["asyncapi"] == "2.6.0"
    error = lines[1]["errors"][0]
    assert set(error) >= {"pointer", "line", "column", "rule", "message"}
    assert error["line"] == 2
    assert error["pointer"] == "/info"


def test_validate_unreadable_file_exits_2(capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    code, out, _ = run(capsys, "validate", "--format", "json", str(tmp_path / "missing.yaml"))
    assert code == 2
    assert json.loads(out)["valid"] is False
    assert run(capsys, "validate", CHAT, str(tmp_path))[0] == 2


def test_validate_syntax_error_is_invalid(capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
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


def test_export_unchanged_equals_input(capsys: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
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


def test_new_writes_a_valid_document(capsys: pytest.CaptureFixture[str],
                                     tmp_path: Path) -> None:
    target = tmp_path / "new.yaml"
    code, _, _ = run(
        capsys, "new", "--name", "Chats", "--version", "1.0.0",
        "--endpoint", "ws://localhost:8080", "--sandbox-endpoint", "ws://localhost:8081",
        "--topic", "/rooms/{roomId}:pubsub=/rooms?room={uri.var.roomId}",
        "--topic", "/notifications:sub=/notifications", "--auth", "oauth2",
        "--description", "Chat rooms", "-o", str(target),
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
    code, out, _ = run(capsys, "new", "--name", "Echo", "--version", "1",
                       "--endpoint", "wss://echo.example", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert list(doc["channels"]) == ["/*"]
    assert set(doc["channels"]["/*"]) >= {"publish", "subscribe"}


def test_new_bad_values_exit_nonzero(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "new", "--name", "X", "--version", "1",
                       "--endpoint", "http://nope")
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
    proc = subprocess.run([sys.executable, "-m", "asyncapi_gw", "validate", CHAT],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "valid" in proc.stdout


def test_validate_text_counts_errors_in_words(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    one = tmp_path / "one.yaml"
    one.write_text("asyncapi: 2.7.0\ninfo: {title: T, version: '1'}\nchannels: {}\n")
    two = tmp_path / "two.yaml"
    two.write_text("asyncapi: 2.6.0\ninfo: {title: T}\nchannels: {'a?b': {}, 'c#d': {}}\n")
    code, out, _ = run(capsys, "validate", str(one), str(two))
    assert code == 1
    assert f"{one}: AsyncAPI 2.7.0 invalid (1 error)\n" in out
    assert f"{two}: AsyncAPI 2.6.0 invalid (3 errors)\n" in out


def test_a_closed_pipe_ends_quietly() -> None:
    # Far more output than a pipe buffers, so that writing outlives the reader.
    files = [str(p) for p in sorted((FIXTURES / "invalid").glob("*.yaml"))] * 60
    proc = subprocess.Popen([sys.executable, "-m", "asyncapi_gw", "validate", *files],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
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
