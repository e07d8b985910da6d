"""What the official parser's JavaScript YAML readers make of YAML texts, for comparison.

Runs node once over a batch of texts and reads each with ``@stoplight/spectral-parsers``' Yaml
parser (what ``@asyncapi/parser`` reads documents with: ``@stoplight/yaml``) and with the
``js-yaml`` that ``@asyncapi/parser`` depends on (its default schema).  The packages are found
from ``NODE_PATH``, else from ``bench/build/node_modules``, where ``python bench/validation.py``
installs ``@asyncapi/parser``.  Without node or the packages the calling test is skipped.

Readings come back as JSON data with JavaScript's numbers as floats (``NaN`` and infinities
included) and js-yaml's dates as ``("date", ISO text)``; a reader's failure as ``("error",
message)``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

BENCH_MODULES = Path(__file__).resolve().parents[1] / "bench" / "build" / "node_modules"

SCRIPT = r"""
const path = require('path');
const parserDir = path.dirname(require.resolve('@asyncapi/parser/package.json'));
const near = (name) => require(require.resolve(name, { paths: [parserDir] }));
const { Yaml } = near('@stoplight/spectral-parsers');
const jsyaml = near('js-yaml');
function enc(v) {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint') return { number: String(v) };
  if (v instanceof Date) return { date: v.toISOString() };
  if (Array.isArray(v)) return v.map(enc);
  if (typeof v === 'object') {
    const out = {};
    for (const k of Object.keys(v)) out[k] = enc(v[k]);
    return { mapping: out };
  }
  return { other: String(v) };
}
function read(parse) {
  try { return { ok: enc(parse()) }; } catch (e) { return { error: String(e && e.message || e) }; }
}
const texts = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const out = texts.map((text) => ({
  official: read(() => {
    const parsed = Yaml.parse(text);
    const errors = parsed.diagnostics.filter((d) => d.severity === 0);
    if (errors.length) throw new Error(errors[0].message);
    return parsed.data;
  }),
  jsyaml: read(() => jsyaml.load(text)),
}));
process.stdout.write(JSON.stringify(out));
"""


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(item) for item in value]
    if not isinstance(value, dict):
        return value
    if "number" in value:
        return float(value["number"].replace("Infinity", "inf"))
    if "date" in value:
        return ("date", value["date"])
    if "mapping" in value:
        return {key: _decode(item) for key, item in value["mapping"].items()}
    return ("other", value["other"])


def _reading(result: dict[str, Any]) -> Any:
    if "error" in result:
        return ("error", result["error"])
    return _decode(result["ok"])


def read_with_javascript(texts: list[str]) -> list[tuple[Any, Any]]:
    """(official reader's reading, js-yaml's reading) of each text; skips without node."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    paths = [p for p in os.environ.get("NODE_PATH", "").split(os.pathsep) if p]
    env = {**os.environ, "NODE_PATH": os.pathsep.join([*paths, str(BENCH_MODULES)])}
    done = subprocess.run(
        [node, "-e", SCRIPT],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    if done.returncode != 0 and "Cannot find module" in done.stderr:
        pytest.skip("@asyncapi/parser not found: set NODE_PATH or run bench/validation.py")
    assert done.returncode == 0, done.stderr
    return [(_reading(r["official"]), _reading(r["jsyaml"])) for r in json.loads(done.stdout)]


def as_javascript(value: Any) -> Any:
    """Python data as JavaScript reads it: every number a float."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):
        return [as_javascript(item) for item in value]
    return {key: as_javascript(item) for key, item in value.items()}


def same_reading(a: Any, b: Any) -> bool:
    """Equality of two readings, with NaN equal to NaN and a bool never equal to a number."""
    if type(a) is not type(b) and not (isinstance(a, str) and isinstance(b, str)):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_reading(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same_reading(a[k], b[k]) for k in a)
    return bool(a == b)
