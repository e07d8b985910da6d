"""The commands that load or write AsyncAPI 3 documents, and their point-of-view options."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from asyncapi_gw import documents
from asyncapi_gw.cli import main
from asyncapi_gw.cli.main import build_parser

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
CHATS = str(FIXTURES / "wso2-chats.yaml")  # 2.0.0, the twin of WSO2
WSO2 = str(FIXTURES / "v3" / "wso2-4.7.yaml")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def operations(info: dict[str, Any]) -> dict[str, list[str]]:
    return {t["name"]: t["operations"] for t in info["topics"]}


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["inspect", "F"], "point_of_view"),
        (["serve", "F"], "point_of_view"),
        (["new", "--name", "N", "--version", "1", "--endpoint", "ws://h"], "point_of_view"),
        (["export", "F"], "point_of_view"),
        (["export", "F"], "input_point_of_view"),
    ],
)
def test_commands_that_load_or_write_3x_take_a_point_of_view(argv: list[str], option: str) -> None:
    flag = "--" + option.replace("_", "-")
    assert getattr(build_parser().parse_args([*argv, flag, "client"]), option) == "client"
    with pytest.raises(SystemExit) as usage:
        build_parser().parse_args([*argv, flag, "server"])
    assert usage.value.code == 2


def test_inspect_states_the_point_of_view(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "inspect", WSO2)
    assert code == 0
    assert "point of view: client (send = clients publish" in out
    assert "[point-of-view]" in err
    code, out, _ = run(capsys, "inspect", WSO2, "--format", "json")
    info = json.loads(out)
    assert (info["asyncapi"], info["point_of_view"]) == ("3.0.0", "client")
    assert operations(info)["/feed"] == ["publish"]


def test_inspect_reads_as_told(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "inspect", WSO2, "--format", "json", "--point-of-view", "application"
    )
    assert code == 0
    assert "[point-of-view]" not in err
    info = json.loads(out)
    assert info["point_of_view"] == "application"
    assert operations(info)["/feed"] == ["subscribe"]


def test_export_writes_for_wso2_and_reads_back(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "chats.yaml"
    code, _, _ = run(
        capsys,
        "export",
        CHATS,
        "--asyncapi-version",
        "3.0.0",
        "--point-of-view",
        "client",
        "-o",
        str(target),
    )
    assert code == 0
    written = documents.read_document(target).data
    feed = [op for op in written["operations"].values() if op["channel"]["$ref"].endswith("feed")]
    assert [op["action"] for op in feed] == ["send"]
    assert run(capsys, "validate", str(target))[0] == 0
    _, out, _ = run(capsys, "inspect", str(target), "--format", "json")
    info = json.loads(out)
    assert info["point_of_view"] == "client"
    _, original, _ = run(capsys, "inspect", CHATS, "--format", "json")
    assert operations(info) == operations(json.loads(original))


def test_export_turns_a_wso2_document_and_back(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    spec = tmp_path / "spec.yaml"
    assert run(capsys, "export", WSO2, "--point-of-view", "application", "-o", str(spec))[0] == 0
    assert documents.read_document(spec).data["operations"]["feed.publish"]["action"] == "receive"
    code, out, _ = run(capsys, "export", str(spec), "--point-of-view", "client", "--format", "json")
    assert code == 0
    assert json.loads(out) == documents.read_document(Path(WSO2)).data


def test_new_writes_3x_from_either_side(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "new",
        "--name",
        "Echo",
        "--version",
        "1",
        "--endpoint",
        "ws://h:1",
        "--asyncapi-version",
        "3.0.0",
        "--point-of-view",
        "client",
        "--format",
        "json",
    )
    assert code == 0
    assert set(json.loads(out)["operations"]) == {"send_/*", "receive_/*"}
