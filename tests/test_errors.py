"""Problem messages quote document values as JSON."""

from __future__ import annotations

import math

import pytest

from asyncapi_gw.errors import json_excerpt


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "null"),
        (True, "true"),
        (["on", "off"], '["on", "off"]'),
        ({"a": 1}, '{"a": 1}'),
        ("é", '"é"'),
        (math.inf, "inf"),
    ],
)
def test_values_are_written_as_json(value: object, text: str) -> None:
    assert json_excerpt(value) == text


def test_long_values_are_cut() -> None:
    text = json_excerpt("x" * 500, limit=20)
    assert len(text) == 20
    assert text.endswith("…")
