"""Export across major versions: a source of the other major version is converted as
``convert`` converts it, and the API's own edits apply on top."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest
from codec_helpers import FIXTURES, WSO2

from asyncapi_gw import documents
from asyncapi_gw.asyncapi import convert_asyncapi, export_asyncapi, import_asyncapi, load_asyncapi
from asyncapi_gw.asyncapi.convert import convert_document
from asyncapi_gw.builder import topic
from asyncapi_gw.errors import ConversionError, Problem
from asyncapi_gw.model import Endpoint, PointOfView, StreamingAPI

TO_3 = [
    FIXTURES / "chatroom.yaml",
    FIXTURES / "convert" / "features-2.6.yaml",
    FIXTURES / "streetlights.yaml",
]
TO_2 = [WSO2]


def source(path: Path) -> dict[str, Any]:
    return documents.read_document(path).data


@pytest.mark.parametrize("path", TO_3, ids=lambda p: p.name)
@pytest.mark.parametrize("version", ["3.0.0", "3.1.0"])
def test_an_unchanged_2x_api_exports_as_convert_writes_it(path: Path, version: str) -> None:
    warnings: list[Problem] = []
    exported = export_asyncapi(load_asyncapi(path), asyncapi_version=version, warnings=warnings)
    assert exported == convert_document(source(path), version).data
    assert not any(w.rule == "model-conversion" for w in warnings)


@pytest.mark.parametrize("path", TO_2, ids=lambda p: p.name)
def test_an_unchanged_3x_api_exports_as_convert_writes_it(path: Path) -> None:
    api = load_asyncapi(path)
    pov = (api.point_of_view or PointOfView.APPLICATION).value
    exported = export_asyncapi(api, asyncapi_version="2.6.0")
    assert exported == convert_document(source(path), "2.6.0", point_of_view=pov).data


def test_a_converted_document_exports_back_as_convert_writes_it() -> None:
    upgraded = convert_document(source(FIXTURES / "chatroom.yaml"), "3.0.0").data
    exported = export_asyncapi(load_asyncapi(upgraded), asyncapi_version="2.6.0")
    assert exported == convert_document(upgraded, "2.6.0").data
    assert exported["channels"] == source(FIXTURES / "chatroom.yaml")["channels"]


def test_the_point_of_view_of_the_export_call_writes_the_3x_operations() -> None:
    path = FIXTURES / "wso2-chats.yaml"
    exported = export_asyncapi(
        load_asyncapi(path), asyncapi_version="3.0.0", point_of_view=PointOfView.CLIENT
    )
    assert exported == convert_document(source(path), "3.0.0", point_of_view="client").data


def edited(api: StreamingAPI) -> StreamingAPI:
    """``api`` with its first topic removed, a topic added and its endpoint changed."""
    return attrs.evolve(
        api,
        topics=(*api.topics[1:], topic("/added", "sub", description="new")),
        production_endpoint=Endpoint(url="wss://elsewhere.example:9443/ws"),
    )


def comparable(api: StreamingAPI) -> tuple[Any, ...]:
    return (
        {
            t.name: (t.description, sorted(op.operation.value for op in t.operations))
            for t in api.topics
        },
        api.production_endpoint,
    )


@pytest.mark.parametrize(
    ("path", "version"),
    [
        (FIXTURES / "chatroom.yaml", "3.0.0"),
        (FIXTURES / "streetlights.yaml", "3.0.0"),
        (WSO2, "2.6.0"),
    ],
    ids=lambda v: getattr(v, "name", v),
)
def test_an_edited_api_exports_across_majors_as_edited(path: Path, version: str) -> None:
    api = edited(load_asyncapi(path))
    exported = export_asyncapi(api, asyncapi_version=version)
    back = load_asyncapi(exported)
    assert back.asyncapi_version == version
    assert comparable(back) == comparable(api)
    removed = load_asyncapi(path).topics[0].name
    assert removed not in {t.name for t in back.topics}
    # what the edit did not touch is still written as the conversion writes it
    converted = convert_document(
        source(path), version, point_of_view=(api.point_of_view or PointOfView.APPLICATION).value
    ).data
    assert exported["info"] == converted["info"]
    assert exported.get("components", {}).get("schemas") == converted.get("components", {}).get(
        "schemas"
    )


def test_a_kept_topic_keeps_its_converted_detail() -> None:
    path = FIXTURES / "chatroom.yaml"
    api = load_asyncapi(path)
    api = attrs.evolve(api, topics=(*api.topics, topic("/added", "pub")))
    exported = export_asyncapi(api, asyncapi_version="3.0.0")
    converted = convert_document(source(path), "3.0.0").data
    for name, channel in converted["channels"].items():
        assert exported["channels"][name] == channel
    for name, operation in converted["operations"].items():
        assert exported["operations"][name] == operation


def test_a_refused_conversion_is_located_in_the_source() -> None:
    path = FIXTURES / "chatroom-3.0.yaml"
    result = import_asyncapi(path)
    with pytest.raises(ConversionError) as refused:
        convert_asyncapi(path, "2.6.0")
    with pytest.raises(ConversionError) as caught:
        export_asyncapi(result.api, asyncapi_version="2.6.0", source_document=result.document)
    assert caught.value.problems == refused.value.problems
    assert all(p.line is not None for p in caught.value.problems)


def test_lenient_export_drops_what_the_target_cannot_hold_with_a_warning() -> None:
    warnings: list[Problem] = []
    exported = export_asyncapi(
        load_asyncapi(FIXTURES / "chatroom-3.0.yaml"),
        asyncapi_version="2.6.0",
        lenient=True,
        warnings=warnings,
    )
    lossy = convert_asyncapi(FIXTURES / "chatroom-3.0.yaml", "2.6.0", lossy=True)
    assert exported == lossy.data
    assert {w.pointer for w in warnings} >= {w.pointer for w in lossy.warnings}
