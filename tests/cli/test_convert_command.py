"""``asyncapi-gw convert FILE --to VERSION``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asyncapi_gw import documents
from asyncapi_gw.cli import main

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "convert"
FEATURES = str(FIXTURES / "features-2.6.yaml")
REQUEST_REPLY = str(FIXTURES / "request-reply-3.0.yaml")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_convert_writes_3_0_and_back(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "three.json"
    code, out, _ = run(
        capsys, "convert", FEATURES, "--to", "3.0.0", "--format", "json", "-o", str(target)
    )
    assert (code, out) == (0, "")
    three = json.loads(target.read_text(encoding="utf-8"))
    assert three["asyncapi"] == "3.0.0"
    assert three["operations"]["sendPrices"]["action"] == "send"
    code, out, _ = run(capsys, "convert", str(target), "--to", "2.6.0", "--format", "yaml")
    assert code == 0
    assert documents.parse_document(out).data == documents.read_document(FEATURES).data


def test_convert_point_of_view_client(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "convert", FEATURES, "--to", "3.0.0", "--point-of-view", "client")
    assert code == 0
    assert documents.parse_document(out).data["operations"]["sendPrices"]["action"] == "receive"


def test_convert_refuses_then_drops_with_lossy(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "convert", REQUEST_REPLY, "--to", "2.6.0")
    assert (code, out) == (1, "")
    assert f"{REQUEST_REPLY}:28:5: /operations/ping/reply:" in err
    assert "[asyncapi-conversion]" in err
    code, out, err = run(capsys, "convert", REQUEST_REPLY, "--to", "2.6.0", "--lossy")
    assert code == 0
    assert documents.parse_document(out).data["asyncapi"] == "2.6.0"
    assert err.count("warning:") == 4


def test_convert_usage_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["convert", FEATURES, "--to", "4.0.0"])
    assert caught.value.code == 2
    code, _, err = run(capsys, "convert", str(tmp_path / "missing.yaml"), "--to", "3.0.0")
    assert code == 2
    assert "cannot open" in err


@pytest.mark.parametrize("pov", ["application", "client"])
def test_export_across_majors_writes_what_convert_writes(
    capsys: pytest.CaptureFixture[str], pov: str
) -> None:
    common = ("--point-of-view", pov, "--format", "json")
    code, converted, _ = run(capsys, "convert", FEATURES, "--to", "3.0.0", *common)
    assert code == 0
    code, exported, err = run(capsys, "export", FEATURES, "--asyncapi-version", "3.0.0", *common)
    assert code == 0, err
    assert json.loads(exported) == json.loads(converted)


def test_export_across_majors_refuses_as_convert_does(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "export", REQUEST_REPLY, "--asyncapi-version", "2.6.0")
    assert (code, out) == (1, "")
    assert f"{REQUEST_REPLY}:28:5: /operations/ping/reply:" in err
    assert "[asyncapi-conversion]" in err
