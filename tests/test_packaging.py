"""The vendored schemas are found from a wheel, an editable install and a plain checkout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBE = (
    "import asyncapi_gw, asyncapi_gw.schema as s, sys;"
    "from asyncapi_gw import validate_document;"
    "print(asyncapi_gw.__file__); print(s.schema_root());"
    "print(validate_document(sys.argv[1]).valid)"
)


def probe(pythonpath: Path | None, cwd: Path) -> list[str]:
    """Where the package and its schemas are found in a fresh interpreter."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT / "fixtures" / "chatroom.yaml")],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


def test_from_a_wheel(tmp_path: Path) -> None:
    pytest.importorskip("hatchling")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "dist"),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next((tmp_path / "dist").glob("asyncapi_gw-*.whl"))
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    package, root, valid = probe(site, tmp_path)
    assert Path(package).is_relative_to(site)
    assert Path(root) == site / "asyncapi_gw" / "schemas"
    assert (Path(root) / "2.6.0.json").is_file()
    assert (Path(root) / "LICENSE").is_file()
    assert valid == "True"
    # the demo's bundled example ships in the wheel
    assert (site / "asyncapi_gw" / "examples" / "chatroom.yaml").is_file()


def test_from_a_checkout(tmp_path: Path) -> None:
    package, root, valid = probe(ROOT, tmp_path)
    assert Path(package).is_relative_to(ROOT)
    assert Path(root) == ROOT / "schemas"
    assert valid == "True"


def test_from_the_installed_package(tmp_path: Path) -> None:
    """The test environment's own install: editable in development and CI."""
    package, root, valid = probe(None, tmp_path)
    if not Path(package).is_relative_to(ROOT):
        pytest.skip("the package is not installed in editable mode here")
    assert Path(root) == ROOT / "schemas"
    assert valid == "True"
