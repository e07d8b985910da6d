"""Whatever api.yaml holds, a project imports, or fails with a typed error; what imports exports."""

from __future__ import annotations

import contextlib
from pathlib import Path

import attrs
from asyncapi.document_strategies import JSON, mutate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncapi_gw import AsyncAPIGwError, Endpoint, Throttling, ThrottlingUnit
from asyncapi_gw.documents import dump_document, parse_document
from asyncapi_gw.wso2 import ProjectFiles, decode_project, encode_project, read_project

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "wso2"
MARKET = read_project(FIXTURES / "MarketFeed-1.0.0")
META = parse_document(MARKET.files["api.yaml"]).data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_api_yaml_imports_or_fails_typed(data: st.DataObject) -> None:
    meta = mutate(META, data)
    files = ProjectFiles(files={**MARKET.files, "api.yaml": dump_document(meta).encode()}, name="p")
    try:
        result = decode_project(files, lenient=data.draw(st.booleans()))
    except AsyncAPIGwError:
        return
    assert result.project is not None
    edited = data.draw(
        st.sampled_from(
            [
                result.api,
                attrs.evolve(result.api, context="/elsewhere"),
                attrs.evolve(result.api, production_endpoint=Endpoint(url="ws://other:1")),
                attrs.evolve(result.api, security=()),
                attrs.evolve(result.api, topics=result.api.topics[:1]),
                attrs.evolve(
                    result.api,
                    throttling=Throttling(events=5, unit=ThrottlingUnit.SECOND, per_principal=1),
                ),
            ]
        )
    )
    try:
        written = encode_project(
            edited,
            source=result.project,
            version=data.draw(st.sampled_from([None, "4.2", "4.7"])),
            lenient=True,
        )
    except AsyncAPIGwError:
        return
    again = decode_project(attrs.evolve(written, name="again"), lenient=True)
    assert again.api.context == edited.context
    assert [t.path for t in again.api.topics] == [t.path for t in edited.topics]


@given(value=JSON)
def test_api_yaml_that_is_not_a_mapping_fails_typed(value: object) -> None:
    files = ProjectFiles(
        files={**MARKET.files, "api.yaml": dump_document(value).encode()}, name="p"
    )
    with contextlib.suppress(AsyncAPIGwError):
        decode_project(files)
