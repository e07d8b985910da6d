"""Our verdicts on AsyncAPI 3.x documents against those of the official JavaScript parser, run
on the same files in the same test run.

Needs ``node`` and the npm package ``@asyncapi/parser``: set ``ASYNCAPI_PARSER_NODE_MODULES`` to
the ``node_modules`` folder that holds it (``bench/validation.py`` installs one into
``bench/build/node_modules``, used when present); skipped otherwise.  The documents:

- every ``fixtures/invalid/asyncapi3-*`` file and ``fixtures/chatroom-3.0.yaml``;
- the 3.0.0 and 3.1.0 object examples of ``@asyncapi/specs``, each wrapped into a document, when
  ``ASYNCAPI_EXAMPLES`` names that package's ``examples`` folder (as for
  ``test_official_examples.py``);
- the AsyncAPI specification repository's examples (its ``examples/`` folder at the ``v3.0.0``
  tag, or any folder of 3.x documents), when ``ASYNCAPI_SPEC_EXAMPLES`` names it: every
  ``*asyncapi.yml`` and ``asyncapi.yaml`` below it, references outside a document's folder
  allowed (the social-media example shares files between services).

For each document the verdicts must agree, and so must the errors of the official v3 rules
(rule and pointer).  A document that references the network (a remote ``$ref``) is invalid for
both here: nothing is fetched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from asyncapi_gw.asyncapi import validate_document
from asyncapi_gw.asyncapi.rules_v3 import ERROR_RULES

ROOT = Path(__file__).resolve().parents[2]
_MODULES = os.environ.get("ASYNCAPI_PARSER_NODE_MODULES") or str(ROOT / "bench/build/node_modules")
_EXAMPLES = os.environ.get("ASYNCAPI_EXAMPLES")
_SPEC_EXAMPLES = os.environ.get("ASYNCAPI_SPEC_EXAMPLES")
_NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(
    _NODE is None or not (Path(_MODULES) / "@asyncapi" / "parser").is_dir(),
    reason="needs node and @asyncapi/parser (set ASYNCAPI_PARSER_NODE_MODULES)",
)

_PARSE = r"""
const { Parser, fromFile } = require('@asyncapi/parser');
const parser = new Parser();
const token = p => String(p).replace(/~/g, '~0').replace(/\//g, '~1');
(async () => {
  const out = {};
  for (const file of process.argv.slice(1)) {
    const { document, diagnostics } = await fromFile(parser, file).parse();
    out[file] = {
      valid: document !== undefined,
      errors: diagnostics.filter(d => d.severity === 0)
        .map(d => [d.code, d.path.map(p => '/' + token(p)).join('')]),
    };
  }
  console.log(JSON.stringify(out));
})();
"""


def _wrap(kind: str, obj: Any, version: str) -> dict[str, Any]:
    """An object example of ``@asyncapi/specs`` placed where its kind belongs in a document."""
    info = {"title": "Example", "version": "1.0.0"}
    placed: dict[str, Any] = {
        "info": {"info": obj},
        "contact": {"info": {**info, "contact": obj}},
        "license": {"info": {**info, "license": obj}},
        "externalDocs": {"info": {**info, "externalDocs": obj}},
        "tag": {"info": {**info, "tags": [obj]}},
        "servers": {"servers": obj},
        "channels": {"channels": obj},
        "operations": {"operations": obj},
        "operation": {"operations": {"o": obj}},
        "components": {"components": obj},
        "operationTrait": {"components": {"operationTraits": {"t": obj}}},
        "messageObject": {"components": {"messages": {"m": obj}}},
        "messageTrait": {"components": {"messageTraits": {"t": obj}}},
        "correlationId": {"components": {"correlationIds": {"c": obj}}},
        "operationReplyAddress": {"components": {"replyAddresses": {"a": obj}}},
        "ReferenceObject": {"components": {"schemas": {"s": obj}}},
        "oauth2Flow": {
            "components": {
                "securitySchemes": {"s": {"type": "oauth2", "flows": {"authorizationCode": obj}}}
            }
        },
    }
    # The examples of servers' variables and of channels' parameters are whole objects.
    where = placed.get(kind)
    if where is None and kind in ("server", "serverVariable"):
        where = {"servers": {"s": obj}}
    elif where is None and kind in ("channel", "parameter", "parameters"):
        where = {"channels": {"c": obj}}
    elif where is None:  # the security schemes
        where = {"components": {"securitySchemes": {"s": obj}}}
    return {"asyncapi": version, "info": info, **where}


def _documents(tmp: Path) -> list[tuple[str, Path]]:
    found = [
        (p.name, p)
        for p in sorted((ROOT / "fixtures").rglob("*.yaml"))
        if p.name.startswith("asyncapi3-") or p.name == "chatroom-3.0.yaml"
    ]
    if _EXAMPLES:
        for version in ("3.0.0", "3.1.0"):
            for path in sorted((Path(_EXAMPLES) / version).glob("*.json")):
                for index, obj in enumerate(json.loads(path.read_text(encoding="utf-8"))):
                    name = f"{version}-{path.stem}-{index}"
                    target = tmp / f"{name}.json"
                    target.write_text(json.dumps(_wrap(path.stem, obj, version)))
                    found.append((name, target))
    if _SPEC_EXAMPLES:
        root = Path(_SPEC_EXAMPLES)
        found.extend(
            (str(p.relative_to(root)), p)
            for p in sorted(root.rglob("*"))
            if p.name.endswith(("asyncapi.yml", "asyncapi.yaml"))
        )
    return found


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``{name: (path, the official parser's answer)}`` for every document."""
    documents = _documents(tmp_path_factory.mktemp("v3"))
    done = subprocess.run(
        [str(_NODE), "-e", _PARSE, *(str(path) for _, path in documents)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
        env={**os.environ, "NODE_PATH": _MODULES},
    )
    answers = json.loads(done.stdout)
    return {name: (path, answers[str(path)]) for name, path in documents}


def test_the_documents_are_there(verdicts: dict[str, Any]) -> None:
    assert len(verdicts) >= 2 * (len(ERROR_RULES) + 6) + 1
    if _EXAMPLES:
        assert sum(name.startswith("3.") for name in verdicts) >= 50
    if _SPEC_EXAMPLES:
        assert len(verdicts) > 2 * (len(ERROR_RULES) + 6) + 1 + (50 if _EXAMPLES else 0)


def test_verdicts_and_official_rule_errors_agree(verdicts: dict[str, Any]) -> None:
    disagreements = []
    for name, (path, official) in verdicts.items():
        report = validate_document(path, allow_outside_refs=True)
        ours = {(p.rule, p.pointer) for p in report.errors if p.rule in ERROR_RULES}
        theirs = {(code, pointer) for code, pointer in official["errors"] if code in ERROR_RULES}
        if report.valid != official["valid"] or ours != theirs:
            disagreements.append((name, report.valid, official, sorted(ours)))
    assert disagreements == []
