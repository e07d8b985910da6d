"""AsyncAPI 3.x through the loader: validated import, export, the Python API's point of view.

The codec on its own is tested in test_v3.py; here documents go through validation first, and
what export writes is validated against the target version's official schema.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from codec_helpers import FIXTURES, V3, WSO2, chat_api
from document_strategies import SOURCE_FIELDS

from asyncapi_gw import documents
from asyncapi_gw.asyncapi import (
    convert_asyncapi,
    dump_asyncapi,
    export_asyncapi,
    import_asyncapi,
    load_asyncapi,
    loads_asyncapi,
    v3,
    validate_document,
)
from asyncapi_gw.errors import Problem, ValidationError
from asyncapi_gw.model import PointOfView

VALID = [V3 / "chatroom.yaml", V3 / "market-feed.yaml", WSO2]


def directions(source: Any, **options: Any) -> dict[str, set[str]]:
    api = load_asyncapi(source, **options)
    return {t.name: {op.operation.value for op in t.operations} for t in api.topics}


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_an_unchanged_import_exports_equal_data(path: Any) -> None:
    exported = export_asyncapi(load_asyncapi(path))
    source = documents.read_document(path).data
    assert exported == source
    assert list(exported) == list(source)


def test_wso2_reading_is_recognised_stated_and_located() -> None:
    result = import_asyncapi(WSO2)
    assert result.api.point_of_view is PointOfView.CLIENT
    [stated] = [w for w in result.warnings if w.rule == v3.POINT_OF_VIEW_RULE]
    assert (stated.file, stated.line) == (str(WSO2), 35)  # where `operations:` is written
    assert directions(WSO2) == {
        "/notifications": {"subscribe"},
        "/chat": {"publish", "subscribe"},
        "/feed": {"publish"},
    }


def test_the_point_of_view_is_an_import_option() -> None:
    assert directions(WSO2, point_of_view=PointOfView.APPLICATION)["/feed"] == {"subscribe"}
    text = WSO2.read_text(encoding="utf-8")
    api = loads_asyncapi(text, point_of_view=PointOfView.CLIENT)
    assert api.point_of_view is PointOfView.CLIENT


def test_wso2_unescaped_references_import_leniently() -> None:
    path = V3 / "wso2-4.7-nested.yaml"
    assert not validate_document(path).valid  # as the official parser says
    result = import_asyncapi(path, lenient=True)
    assert [t.name for t in result.api.topics] == ["/rooms/{roomId}"]
    assert any("WSO2 API Manager's spelling" in w.message for w in result.warnings)


def test_a_strict_import_of_wso2_references_says_how_to_read_them() -> None:
    with pytest.raises(ValidationError) as raised:
        import_asyncapi(V3 / "wso2-4.7-nested.yaml")
    assert "WSO2 API Manager's spelling" in raised.value.message
    assert "--lenient" in raised.value.message


@pytest.mark.parametrize("version", ["3.0.0", "3.1.0"])
@pytest.mark.parametrize("pov", list(PointOfView))
def test_a_new_api_dumps_as_3x_and_loads_back(version: str, pov: PointOfView) -> None:
    api = chat_api()
    text = dump_asyncapi(api, asyncapi_version=version, point_of_view=pov)
    back = loads_asyncapi(text)
    assert back.point_of_view is pov
    assert attrs.evolve(back, point_of_view=None, **SOURCE_FIELDS) == api


@pytest.mark.parametrize("version", ["3.0.0", "3.1.0"])
def test_a_2x_document_exports_as_3x_as_converted(version: str) -> None:
    warnings: list[Problem] = []
    out = export_asyncapi(
        load_asyncapi(FIXTURES / "wso2-chats.yaml"),
        asyncapi_version=version,
        point_of_view=PointOfView.CLIENT,
        warnings=warnings,
    )
    assert not [w for w in warnings if w.rule == "model-conversion"]
    converted = convert_asyncapi(
        FIXTURES / "wso2-chats.yaml", version, point_of_view=PointOfView.CLIENT
    )
    assert out == converted.data
    assert directions(out) == directions(FIXTURES / "wso2-chats.yaml")


def test_a_3x_document_exports_as_2x() -> None:
    out = export_asyncapi(load_asyncapi(WSO2), asyncapi_version="2.6.0")
    assert out["channels"]["/feed"] == {
        "publish": {"operationId": "send_/feed", "x-uri-mapping": "/feed"},
        "x-auth-type": "None",
        "x-channelId": "feed",
    }
    assert directions(out) == directions(WSO2)


def test_conversion_takes_the_same_point_of_view() -> None:
    converted = convert_asyncapi(
        FIXTURES / "wso2-chats.yaml", "3.0.0", point_of_view=PointOfView.CLIENT
    )
    assert directions(converted.data) == directions(FIXTURES / "wso2-chats.yaml")
    assert load_asyncapi(converted.data).point_of_view is PointOfView.CLIENT
