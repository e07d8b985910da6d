"""What the 3.x codec writes, checked by the official JavaScript parser (``@asyncapi/parser``).

Needs Node.js and the parser, found as by ``test_official_parser_v3.py``: in
``ASYNCAPI_PARSER_NODE_MODULES``, else in ``bench/build/node_modules`` (which
``bench/validation.py`` fills).  One parser
run checks every document: the fixtures, edits of them (topics added, removed and changed,
security dropped, the point of view turned), new APIs from both points of view and 2.x
documents written as 3.0.0 and 3.1.0.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import attrs
import pytest
from codec_helpers import FIXTURES, V3, chat_api, decode, export

from asyncapi_gw.asyncapi import load_asyncapi, v3
from asyncapi_gw.builder import topic as builder_topic
from asyncapi_gw.model import PointOfView, StreamingAPI

_MODULES = os.environ.get("ASYNCAPI_PARSER_NODE_MODULES") or str(
    Path(__file__).resolve().parents[2] / "bench/build/node_modules"
)
_NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(
    _NODE is None or not (Path(_MODULES) / "@asyncapi" / "parser").is_dir(),
    reason="needs node and @asyncapi/parser (set ASYNCAPI_PARSER_NODE_MODULES)",
)

_SCRIPT = """
const { Parser } = require('@asyncapi/parser');
const fs = require('fs');
(async () => {
  const parser = new Parser();
  const verdicts = {};
  for (const file of process.argv.slice(1)) {
    const { document, diagnostics } = await parser.parse(fs.readFileSync(file, 'utf8'));
    verdicts[file] = document ? [] : diagnostics.filter(d => d.severity === 0)
      .map(d => `${d.path.join('/')}: ${d.message}`);
  }
  console.log(JSON.stringify(verdicts));
})();
"""


def _edits(api: StreamingAPI) -> list[StreamingAPI]:
    first = api.topics[0]
    # The first topic described anew and, when it has both directions, without publish.
    changed = attrs.evolve(
        first, description="edited", publish=None if first.subscribe else first.publish
    )
    return [
        api.with_topics(
            [*api.topics, builder_topic("/added/{id}", "pubsub", uri_mapping="/a/{uri.var.id}")]
        ),
        api.with_topics(api.topics[1:]),
        api.with_topics([changed, *api.topics[1:]]),
        attrs.evolve(api, security=()),
    ]


def _documents() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(V3.glob("*.yaml")):
        if path.name == "wso2-4.7-nested.yaml":  # refused by the parser as written
            continue
        api, _ = decode(path)
        for index, edited in enumerate(_edits(api)):
            found[f"{path.stem}-edit{index}"] = export(edited)[0]
        for pov in PointOfView:
            found[f"{path.stem}-{pov.value}"] = export(api, point_of_view=pov)[0]
    for pov in PointOfView:
        found[f"new-{pov.value}"] = v3.encode(chat_api(), version="3.0.0", point_of_view=pov)[0]
    for path in [
        FIXTURES / "chatroom.yaml",
        FIXTURES / "wso2-export.yaml",
        *sorted((FIXTURES / "versions").glob("*.yaml")),
    ]:
        for version in v3.VERSIONS:
            found[f"{path.stem}-as-{version}"] = v3.encode(load_asyncapi(path), version=version)[0]
    return found


def test_the_official_parser_accepts_what_the_codec_writes(tmp_path: Path) -> None:
    files = []
    for name, doc in _documents().items():
        files.append(tmp_path / f"{name}.json")
        files[-1].write_text(json.dumps(doc), encoding="utf-8")
    assert _NODE is not None
    run = subprocess.run(
        [_NODE, "-e", _SCRIPT, *map(str, files)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "NODE_PATH": str(_MODULES)},
        timeout=300,
    )
    verdicts = json.loads(run.stdout)
    assert {Path(f).stem: v for f, v in verdicts.items() if v} == {}
    assert len(verdicts) == len(files)
