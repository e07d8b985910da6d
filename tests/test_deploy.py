"""The shipped systemd unit (``deploy/asyncapi-gw.service``): systemd accepts it and its
command line is one ``asyncapi-gw serve`` reads. (``deploy/haproxy.cfg`` runs in
``tests/cli/test_scale_out.py``.)"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from asyncapi_gw.cli.main import build_parser

UNIT = Path(__file__).parents[1] / "deploy" / "asyncapi-gw.service"
INSTALLED = "/opt/asyncapi-gw/bin/asyncapi-gw"  # where the unit expects the package


def _directives() -> dict[str, str]:
    text = UNIT.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def test_the_units_command_line_is_a_serve_command_with_workers() -> None:
    program, *argv = shlex.split(_directives()["ExecStart"])
    assert program == INSTALLED
    args = build_parser().parse_args(argv)
    assert args.handler.__module__ == "asyncapi_gw.cli.serve"
    assert args.workers >= 1  # auto: one per CPU
    assert args.admin_host != "127.0.0.1"  # the load balancer's health checks reach it


def test_the_unit_stops_the_supervisor_only_and_waits_out_its_drain() -> None:
    directives = _directives()
    assert directives["KillMode"] == "mixed"  # SIGTERM to the supervisor, which drains
    argv = shlex.split(directives["ExecStart"])[1:]
    drain = build_parser().parse_args(argv).drain_timeout
    assert int(directives["TimeoutStopSec"]) > drain
    assert directives["ExecReload"] == "/bin/kill -HUP $MAINPID"


ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(ANALYZE is None, reason="no systemd-analyze")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    assert ANALYZE is not None
    script = Path(sys.executable).parent / "asyncapi-gw"
    if not script.exists():
        pytest.skip("the asyncapi-gw script is not installed next to this Python")
    unit = tmp_path / UNIT.name  # the same unit, with this machine's asyncapi-gw
    unit.write_text(UNIT.read_text().replace(INSTALLED, str(script)))
    done = subprocess.run(
        [ANALYZE, "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "asyncapi-gw.service" not in done.stderr, done.stderr
