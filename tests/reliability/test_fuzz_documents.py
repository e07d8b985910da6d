"""Short fuzz of the importer and validator: mutations of every fixture and hypothesis-drawn
documents give a result or a typed error through every entry point (the long run is
``fuzz/fuzz_documents.py``)."""

from __future__ import annotations

import importlib.util
import pathlib
import random
import sys
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncapi_gw.documents import dump_document


def _fuzz_module() -> ModuleType:
    path = pathlib.Path(__file__).resolve().parents[2] / "fuzz" / "fuzz_documents.py"
    spec = importlib.util.spec_from_file_location("fuzz_documents", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


fuzz = _fuzz_module()
SEEDS: list[tuple[str, bytes]] = fuzz.fixture_seeds()
ENTRIES = list(fuzz.ENTRY_POINTS)
OUTCOMES = {
    "valid",
    "invalid",
    "imported",
    "DocumentError",
    "ValidationError",
    "UnsupportedVersionError",
    "ConversionError",
}


def test_every_fixture_is_a_seed() -> None:
    names = {name for name, _ in SEEDS}
    assert "fixtures/chatroom.yaml" in names
    assert any(name.startswith("fixtures/refs/") for name in names)
    assert len(names) >= 40


@pytest.mark.parametrize(("name", "raw"), SEEDS, ids=[name for name, _ in SEEDS])
def test_mutations_of_each_fixture(name: str, raw: bytes) -> None:
    """Six mutants per fixture (seeded by its name), each through every entry point."""
    mutator = fuzz.Mutator(random.Random(name))
    for _ in range(6):
        mutant = mutator.mutate(raw)
        for entry in ENTRIES:
            outcome, _ = fuzz.run_case(mutant, entry)
            assert outcome in OUTCOMES


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SEEDS), st.integers(0, 2**32), st.sampled_from(ENTRIES))
def test_hypothesis_driven_mutations(seed: tuple[str, bytes], number: int, entry: str) -> None:
    mutant = fuzz.Mutator(random.Random(number)).mutate(seed[1])
    outcome, _ = fuzz.run_case(mutant, entry)
    assert outcome in OUTCOMES


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fuzz.document_strategy(), st.sampled_from(["yaml", "json"]), st.sampled_from(ENTRIES))
def test_structured_documents(document: dict[str, Any], fmt: str, entry: str) -> None:
    outcome, rules = fuzz.run_case(dump_document(document, fmt).encode(), entry)
    assert outcome in OUTCOMES
    if outcome == "UnsupportedVersionError":
        assert rules == {"asyncapi-version"}
