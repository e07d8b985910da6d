"""Refresh the vendored official AsyncAPI JSON Schemas in ``schemas/``.

Usage: python scripts/refresh_schemas.py [SPECS_VERSION]

Downloads the npm package ``@asyncapi/specs`` at the pinned (or given) version with
``npm pack``, copies the bundled single-file schema of every supported version, the binding
schemas, the LICENSE and NOTICE, and writes ``schemas/PROVENANCE.json`` with the package version,
the tarball's integrity string and a SHA-256 checksum of every vendored file.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PINNED = "6.11.1"
VERSIONS = ("2.0.0", "2.1.0", "2.2.0", "2.3.0", "2.4.0", "2.5.0", "2.6.0", "3.0.0", "3.1.0")
ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "schemas"


def main(argv: list[str]) -> int:
    version = argv[0] if argv else PINNED
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            ["npm", "pack", f"@asyncapi/specs@{version}", "--json"],
            cwd=tmp,
            check=True,
            capture_output=True,
            text=True,
        )
        info = json.loads(out.stdout)[0]
        with tarfile.open(Path(tmp) / info["filename"]) as tar:
            tar.extractall(tmp, filter="data")
        package = Path(tmp) / "package"
        for old in TARGET.glob("*"):
            if old.is_dir():
                shutil.rmtree(old)
            elif old.name != "README.md":
                old.unlink()
        for v in VERSIONS:
            shutil.copyfile(package / "schemas" / f"{v}.json", TARGET / f"{v}.json")
        shutil.copytree(package / "bindings", TARGET / "bindings")
        for name in ("LICENSE", "NOTICE"):
            shutil.copyfile(package / name, TARGET / name)
    files = sorted(
        p
        for p in TARGET.rglob("*")
        if p.is_file() and p.name not in ("PROVENANCE.json", "README.md")
    )
    provenance = {
        "package": "@asyncapi/specs",
        "version": version,
        "integrity": info["integrity"],
        "license": "Apache-2.0",
        "versions": list(VERSIONS),
        "sha256": {
            p.relative_to(TARGET).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in files
        },
    }
    (TARGET / "PROVENANCE.json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(f"vendored @asyncapi/specs@{version}: {len(files)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
