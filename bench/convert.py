"""Conversion of a large AsyncAPI 2.6.0 document to 3.0.0: asyncapi-gw against @asyncapi/converter.

    python bench/convert.py [--channels 2000] [--repeat 3]

The document is the one of ``bench/validation.py`` (publish and subscribe on every channel,
messages with ids, shared component messages, a parameter with a ``pattern`` on every tenth
channel) plus an http operation binding written for bindingVersion 0.1.0 (``type: request``)
on every hundredth operation. Times, best of ``--repeat``, in one process each:

- ours: ``convert_document`` on the parsed data (in Python), and the whole ``asyncapi-gw
  convert`` command (a new process: read, validate the source, convert, write YAML);
- ``@asyncapi/converter`` 2.0.2 (npm, installed on demand into bench/build/node_modules):
  ``convert(text, '3.0.0')`` on the YAML text, in node, start-up excluded.

Each output is then parsed by the official ``@asyncapi/parser`` 3, which says whether it is a
valid 3.0.0 document. Prints a table and writes bench/out/convert-<channels>.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
BUILD = BENCH / "build"
OUT = BENCH / "out"
PACKAGES = ("@asyncapi/parser@3", "@asyncapi/converter@2.0.2")

sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))
from validation import generate  # noqa: E402

from asyncapi_gw import documents  # noqa: E402
from asyncapi_gw.asyncapi.convert import convert_document  # noqa: E402

NODE_CONVERT = r"""
const { convert } = require('@asyncapi/converter');
const fs = require('fs');
const [input, output, repeat] = process.argv.slice(2);
const text = fs.readFileSync(input, 'utf8');
let best = Infinity, out;
for (let i = 0; i < Number(repeat); i++) {
  const t = performance.now();
  out = convert(text, '3.0.0');
  best = Math.min(best, (performance.now() - t) / 1000);
}
fs.writeFileSync(output, out);
console.log(JSON.stringify({ seconds: best }));
"""

NODE_PARSE = r"""
const { Parser, fromFile } = require('@asyncapi/parser');
const parser = new Parser();
(async () => {
  const out = {};
  for (const path of process.argv.slice(2)) {
    const { document, diagnostics } = await fromFile(parser, path).parse();
    const errors = diagnostics.filter(d => d.severity === 0);
    out[path] = { valid: document !== undefined, errors: errors.length,
                  first: errors.slice(0, 3).map(d => d.path.join('/') + ': ' + d.message) };
  }
  console.log(JSON.stringify(out));
})();
"""


def ensure_node_packages() -> str | None:
    """Installs the official packages into bench/build on demand; a reason when unavailable."""
    modules = BUILD / "node_modules" / "@asyncapi"
    if (modules / "parser").exists() and (modules / "converter").exists():
        return None
    if not shutil.which("node") or not shutil.which("npm"):
        return "node and npm are required for the official converter and parser"
    BUILD.mkdir(exist_ok=True)
    print(f"installing {', '.join(PACKAGES)} into bench/build (once)", flush=True)
    done = subprocess.run(
        ["npm", "install", "--prefix", str(BUILD), "--no-audit", "--no-fund", *PACKAGES],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        return f"npm install failed: {done.stderr.strip()[-400:]}"
    return None


def with_old_http_bindings(doc: dict[str, Any]) -> dict[str, Any]:
    for index, channel in enumerate(doc["channels"].values()):
        if index % 100 == 0:
            channel["publish"]["bindings"] = {"http": {"type": "request", "method": "POST"}}
    return doc


def node(script: str, *args: str) -> Any:
    path = BUILD / "convert-bench.cjs"
    path.write_text(script)
    done = subprocess.run(
        ["node", str(path), *args],
        capture_output=True,
        text=True,
        cwd=BUILD,
        timeout=1800,
        check=True,
    )
    return json.loads(done.stdout)


def main(argv: list[str] | None = None) -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--channels", type=int, default=2000)
    options.add_argument("--repeat", type=int, default=3)
    args = options.parse_args(argv)
    reason = ensure_node_packages()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    OUT.mkdir(exist_ok=True)
    source = OUT / f"convert-{args.channels}.yaml"
    data = with_old_http_bindings(generate(args.channels))
    source.write_text(documents.dump_document(data), encoding="utf-8")

    ours_out = OUT / f"convert-{args.channels}-ours.yaml"
    best = float("inf")
    for _ in range(args.repeat):
        t = time.perf_counter()
        converted = convert_document(data, "3.0.0").data
        best = min(best, time.perf_counter() - t)
    ours_out.write_text(documents.dump_document(converted), encoding="utf-8")
    command = float("inf")
    for _ in range(args.repeat):
        t = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "asyncapi_gw",
                "convert",
                str(source),
                "--to",
                "3.0.0",
                "-o",
                str(ours_out),
            ],
            check=True,
            cwd=BENCH.parent,
        )
        command = min(command, time.perf_counter() - t)

    official_out = OUT / f"convert-{args.channels}-official.yaml"
    official = node(NODE_CONVERT, str(source), str(official_out), str(args.repeat))
    verdicts = node(NODE_PARSE, str(ours_out), str(official_out))
    results = {
        "channels": args.channels,
        "ours_convert_document_s": round(best, 3),
        "ours_cli_s": round(command, 3),
        "official_convert_s": round(official["seconds"], 3),
        "ours_valid": verdicts[str(ours_out)],
        "official_valid": verdicts[str(official_out)],
    }
    (OUT / f"convert-{args.channels}.json").write_text(json.dumps(results, indent=2))
    print(f"{args.channels} channels, best of {args.repeat}:")
    print(
        f"  asyncapi-gw convert_document   {best:8.3f} s   "
        f"valid 3.0.0: {results['ours_valid']['valid']}"
    )
    print(f"  asyncapi-gw convert (command)  {command:8.3f} s   (read, validate, convert, write)")
    print(
        f"  @asyncapi/converter convert    {official['seconds']:8.3f} s   "
        f"valid 3.0.0: {results['official_valid']['valid']} "
        f"({results['official_valid']['errors']} errors)"
    )
    for line in results["official_valid"]["first"]:
        print(f"    {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
