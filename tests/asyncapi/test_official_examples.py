"""The official AsyncAPI 2.6.0 object examples, wrapped into whole documents, through the CLI.

The examples ship in the npm package ``@asyncapi/specs`` (``package/examples``); they are not
committed.  Set ``ASYNCAPI_EXAMPLES`` to that folder to run these tests, for instance after
``npm pack @asyncapi/specs@6.11.1 && tar xzf asyncapi-specs-6.11.1.tgz``.  The expected verdicts
are those of the official JavaScript parser (@asyncapi/parser) on the same wrapped documents.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from asyncapi_gw import documents
from asyncapi_gw.cli import main

_FOLDER = os.environ.get("ASYNCAPI_EXAMPLES")

pytestmark = pytest.mark.skipif(
    not _FOLDER, reason="set ASYNCAPI_EXAMPLES to @asyncapi/specs' examples folder"
)

VERSIONS = ("2.0.0", "2.1.0", "2.2.0", "2.3.0", "2.4.0", "2.5.0", "2.6.0")

# Wrapped documents the official parser rejects (mostly $refs to components the fragment lacks).
OFFICIALLY_INVALID = frozenset(
    {
        "ReferenceObject-0",
        "SecurityRequirement-0",
        "channelItem-0",
        "channelItem-1",
        "channelItem-2",
        "channels-0",
        "components-0",
        "info-0",
        "message-0",
        "message-1",
        "operation-0",
        "parameter-0",
        "parameters-0",
        "schema-1",
    }
)

# Valid 2.6.0 documents that use features older versions lack: export must refuse those.
NOT_WRITABLE = {
    "Sasl-0": {"2.0.0"},
    "servers-0": {"2.0.0", "2.1.0", "2.2.0", "2.3.0", "2.4.0"},
}


def _wrap(kind: str, obj: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "asyncapi": "2.6.0",
        "info": {"title": "Example", "version": "1.0.0"},
        "channels": {},
    }
    placed: dict[str, Any] = {
        "info": {"info": obj},
        "contact": {"info": {**doc["info"], "contact": obj}},
        "license": {"info": {**doc["info"], "license": obj}},
        "externalDocs": {"externalDocs": obj},
        "tag": {"tags": [obj]},
        "servers": {"servers": obj},
        "server": {"servers": {"s": obj}},
        "channels": {"channels": obj},
        "parameter": {"channels": obj},
        "parameters": {"channels": obj},
        "channelItem": {"channels": {"c": obj}},
        "operation": {"channels": {"c": {"publish": obj}}},
        "message": {"components": {"messages": {"m": obj}}},
        "messageTrait": {"components": {"messageTraits": {"t": obj}}},
        "operationTrait": {"components": {"operationTraits": {"t": obj}}},
        "correlationId": {"components": {"correlationIds": {"c": obj}}},
        "schema": {"components": {"schemas": {"s": obj}}},
        "ReferenceObject": {"components": {"schemas": {"s": obj}}},
        "components": obj,
        "SecurityRequirement": {
            "servers": {"s": {"url": "x", "protocol": "ws", "security": [obj]}},
        },
    }.get(kind, {"components": {"securitySchemes": {"s": obj}}})
    return {**doc, **placed}


def _documents() -> list[tuple[str, dict[str, Any]]]:
    if not _FOLDER:
        return []
    found = []
    for path in sorted((Path(_FOLDER) / "2.6.0").glob("*.json")):
        for index, obj in enumerate(json.loads(path.read_text(encoding="utf-8"))):
            found.append((f"{path.stem}-{index}", _wrap(path.stem, obj)))
    return found


DOCUMENTS = _documents()


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def write(tmp_path: Path) -> Any:
    def _write(name: str, doc: dict[str, Any]) -> Path:
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        return path

    return _write


def test_the_examples_are_there() -> None:
    assert len(DOCUMENTS) >= 30


@pytest.mark.parametrize(("name", "doc"), DOCUMENTS, ids=[name for name, _ in DOCUMENTS])
def test_verdict_matches_the_official_parser(
    capsys: pytest.CaptureFixture[str], write: Any, name: str, doc: dict[str, Any]
) -> None:
    code, out, err = _cli(capsys, "validate", "--format", "json", str(write(name, doc)))
    report = json.loads(out.splitlines()[0])
    assert "Traceback" not in err
    assert report["valid"] is (name not in OFFICIALLY_INVALID)
    assert code == (1 if name in OFFICIALLY_INVALID else 0)
    for problem in report["errors"]:
        assert {"pointer", "line", "column", "rule", "message"} <= problem.keys()


VALID = [(name, doc) for name, doc in DOCUMENTS if name not in OFFICIALLY_INVALID]


@pytest.mark.parametrize(("name", "doc"), VALID, ids=[name for name, _ in VALID])
def test_valid_examples_round_trip(
    capsys: pytest.CaptureFixture[str],
    write: Any,
    tmp_path: Path,
    name: str,
    doc: dict[str, Any],
) -> None:
    source = write(name, doc)
    as_yaml, as_json = tmp_path / "out.yaml", tmp_path / "out.json"
    assert _cli(capsys, "export", str(source), "--format", "yaml", "-o", str(as_yaml))[0] == 0
    assert documents.parse_document(as_yaml.read_text(encoding="utf-8")).data == doc
    assert _cli(capsys, "export", str(source), "--format", "json", "-o", str(as_json))[0] == 0
    assert json.loads(as_json.read_text(encoding="utf-8")) == doc
    for fmt in ("text", "json"):
        code, _, err = _cli(capsys, "inspect", str(source), "--format", fmt)
        assert code == 0, err


@pytest.mark.parametrize(("name", "doc"), VALID, ids=[name for name, _ in VALID])
def test_valid_examples_export_to_every_version(
    capsys: pytest.CaptureFixture[str],
    write: Any,
    tmp_path: Path,
    name: str,
    doc: dict[str, Any],
) -> None:
    source = write(name, doc)
    for version in VERSIONS:
        target = tmp_path / f"{version}.yaml"
        code, _, err = _cli(
            capsys, "export", str(source), "--asyncapi-version", version, "-o", str(target)
        )
        assert "Traceback" not in err
        if version in NOT_WRITABLE.get(name, set()):
            assert code == 1
            assert f"cannot be written as AsyncAPI {version}" in err
            continue
        assert code == 0, err
        assert _cli(capsys, "validate", str(target))[0] == 0
