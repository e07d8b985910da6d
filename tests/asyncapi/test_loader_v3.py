"""AsyncAPI 3.0.0 and 3.1.0 documents through the loader and the command line: validated like
2.x documents (official schema, official rules, located problems) before they are imported
(the import itself is tested in test_import_export_v3.py)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from asyncapi_gw import documents
from asyncapi_gw.asyncapi import import_asyncapi, load_asyncapi, validate_document
from asyncapi_gw.cli import main
from asyncapi_gw.errors import ValidationError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
CHAT = FIXTURES / "chatroom-3.0.yaml"


def chat(version: str = "3.0.0") -> dict[str, Any]:
    data = copy.deepcopy(documents.read_document(CHAT).data)
    data["asyncapi"] = version
    return data


def pairs(problems: Any) -> list[tuple[str, str]]:
    return [(p.rule, p.pointer) for p in problems]


@pytest.mark.parametrize("version", ["3.0.0", "3.1.0"])
def test_a_valid_document_is_valid(version: str) -> None:
    report = validate_document(chat(version))
    assert report.valid
    assert report.asyncapi == version
    assert pairs(report.warnings) == []


def test_problems_of_both_versions_are_located_in_the_file() -> None:
    report = validate_document(FIXTURES / "invalid" / "asyncapi3-channel-parameters.yaml")
    assert not report.valid
    assert [(p.line, p.column) for p in report.errors] == [(8, 5), (11, 7), (18, 7)]
    assert all(
        p.file == str(FIXTURES / "invalid" / "asyncapi3-channel-parameters.yaml")
        for p in report.errors
    )


def test_a_schema_error_in_a_shared_message_is_reported_once(tmp_path: Path) -> None:
    data = chat()
    data["components"]["messages"]["Joined"]["payload"]["type"] = "objet"
    path = tmp_path / "chat.json"
    path.write_text(json.dumps(data, indent=1))
    report = validate_document(path)
    # The message is reached through components, a channel, two operations and a reply.
    assert pairs(report.errors) == [("asyncapi-schema", "/components/messages/Joined/payload/type")]


# --- $ref ------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["3.0.0", "3.1.0"])
def test_a_ref_where_the_schema_allows_none_is_an_error(tmp_path: Path, version: str) -> None:
    """The official parser checks the document as written too: "Referencing in this place is
    not allowed"."""
    path = tmp_path / "info.yaml"
    path.write_text(
        f"asyncapi: {version}\n"
        "info:\n"
        "  $ref: '#/x-info'\n"
        "x-info: {title: t, version: '1'}\n"
        + ("channels: {}\n" if version.startswith("2.") else "")
    )
    report = validate_document(path)
    assert pairs(report.errors) == [("asyncapi-ref-placement", "/info")]
    assert (report.errors[0].line, report.errors[0].column) == (2, 1)
    assert "not allowed here" in report.errors[0].message


def test_a_broken_reference_where_an_object_belongs_is_reported_once() -> None:
    data = chat()
    data["operations"]["receiveLobby"]["channel"] = {"$ref": "#/channels/nowhere"}
    report = validate_document(data)
    assert pairs(report.errors) == [("asyncapi-ref", "/operations/receiveLobby/channel")]


def test_an_unescaped_slash_in_a_channel_reference_is_an_error_with_a_hint() -> None:
    """Some generators write ``#/channels/rooms/{roomId}`` for the channel key
    ``rooms/{roomId}``; the official parser answers "'#/channels/rooms/{roomId}' does not
    exist", and so do we, naming the pointer meant."""
    data = chat()
    data["channels"]["rooms/{roomId}"] = data["channels"].pop("room")
    for operation in ("sendChatMessage", "receiveChatMessage"):
        data["operations"][operation]["channel"] = {"$ref": "#/channels/rooms/{roomId}"}
        del data["operations"][operation]["messages"]
    del data["operations"]["sendChatMessage"]["reply"]
    report = validate_document(data)
    assert pairs(report.errors) == [
        ("asyncapi-ref", "/operations/sendChatMessage/channel"),
        ("asyncapi-ref", "/operations/receiveChatMessage/channel"),
    ]
    assert 'did you mean "#/channels/rooms~1{roomId}"?' in report.errors[0].message
    for operation in ("sendChatMessage", "receiveChatMessage"):
        data["operations"][operation]["channel"] = {"$ref": "#/channels/rooms~1{roomId}"}
    assert validate_document(data).valid


# --- bindings ----------------------------------------------------------------------------------


def test_bindings_are_checked_by_their_binding_version() -> None:
    data = chat()
    data["channels"]["room"]["bindings"]["ws"]["method"] = "PUT"
    data["servers"]["sandbox"]["bindings"] = {"kafka": {"bindingVersion": "9.9.9"}}
    assert sorted(pairs(validate_document(data).errors)) == [
        ("asyncapi-schema", "/channels/room/bindings/ws/method"),
        ("asyncapi-schema", "/servers/sandbox/bindings/kafka/bindingVersion"),
    ]


def test_a_binding_without_a_version_is_checked_against_the_latest() -> None:
    data = chat()
    del data["channels"]["room"]["bindings"]["ws"]["bindingVersion"]
    data["channels"]["room"]["bindings"]["ws"]["method"] = "PUT"
    assert pairs(validate_document(data).errors) == [
        ("asyncapi-schema", "/channels/room/bindings/ws/method")
    ]


# --- import: validated first ------------------------------------------------------------------


@pytest.mark.parametrize("lenient", [False, True])
def test_a_valid_document_imports(lenient: bool) -> None:
    result = import_asyncapi(CHAT, lenient=lenient)
    assert (result.api.name, result.api.asyncapi_version) == ("ChatRoom", "3.0.0")
    assert [t.name for t in result.api.topics] == ["/notifications", "/rooms/{roomId}", "/lobby"]


def test_import_of_an_invalid_document_reports_its_problems_first() -> None:
    path = FIXTURES / "invalid" / "asyncapi3-channel-parameters.yaml"
    with pytest.raises(ValidationError):
        load_asyncapi(path)
    result = import_asyncapi(path, lenient=True)
    assert {w.rule for w in result.warnings} >= {"asyncapi3-channel-parameters"}


# --- the command line --------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_reports_a_3x_document_like_any_other(capsys: pytest.CaptureFixture[str]) -> None:
    invalid = FIXTURES / "invalid" / "asyncapi3-operation-messages-from-referred-channel.yaml"
    warned = FIXTURES / "invalid" / "asyncapi3-server-variables.yaml"
    code, out, err = run(
        capsys, "validate", "--format", "json", str(CHAT), str(invalid), str(warned)
    )
    assert code == 1
    assert err == ""
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(line["asyncapi"], line["valid"]) for line in lines] == [
        ("3.0.0", True),
        ("3.0.0", False),
        ("3.0.0", True),
    ]
    assert {e["rule"] for e in lines[1]["errors"]} == {
        "asyncapi3-operation-messages-from-referred-channel"
    }
    assert {w["rule"] for w in lines[2]["warnings"]} == {"asyncapi3-server-variables"}
    code, out, _ = run(capsys, "validate", str(warned))
    assert code == 0
    assert "AsyncAPI 3.0.0 valid" in out
    assert "warning: " in out


@pytest.mark.parametrize("command", ["inspect", "export"])
def test_commands_that_import_read_a_3x_document(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    code, out, err = run(capsys, command, str(CHAT))
    assert code == 0
    assert "Traceback" not in err
    if command == "export":
        assert documents.parse_document(out).data == documents.read_document(CHAT).data
    else:
        assert "point of view: application" in out
