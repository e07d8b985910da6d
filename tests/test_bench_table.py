"""The benchmark's table (``bench/run.py``): the ratios the notes in ``bench/README.md`` quote
are columns of the run that measured them."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

RUN = Path(__file__).parents[1] / "bench" / "run.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", RUN)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["bench_run"]
    return module


def sample(median: float) -> dict[str, float]:
    return {"median": median, "min": median, "max": median}


@pytest.mark.parametrize("variant", ["relay-redis", "relay-jwt"])
def test_a_relay_variant_is_compared_with_the_plain_relay_in_the_same_run(
    bench: ModuleType, variant: str, capsys: pytest.CaptureFixture[str]
) -> None:
    names = ["nginx", "relay", variant]
    by_target = {"nginx": sample(100.0), "relay": sample(80.0), variant: sample(72.0)}
    bench.print_table(names, [("pingpong", "msg/s", by_target)])
    header, _, row = capsys.readouterr().out.splitlines()
    columns = header.split()
    assert f"{variant}/relay" in columns
    assert row.split()[columns.index(f"{variant}/relay")] == "0.90"
    assert "relay/relay" not in columns


@pytest.mark.parametrize("auth", ["key", "jwt"])
def test_the_handshake_cost_script_drives_a_whole_bench_cycle(auth: str) -> None:
    """``bench/handshake_cost.py``, whose figures ``bench/README.md`` quotes, runs: each cycle
    ends with the close code 1000 both ways (it asserts so) and it prints its figures."""
    script = RUN.parent / "handshake_cost.py"
    done = subprocess.run(
        [sys.executable, str(script), "--auth", auth, "--cycles", "20", "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(
        rf"{auth}: [\d.]+ µs of the relay's Python per handshake cycle "
        r"\([\d.]+ with the backend's part, [\d.]+\), \d+ Python calls\n",
        done.stdout,
    ), done.stdout
