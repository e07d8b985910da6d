"""Shared by the 3.x codec tests: the fixtures, and the codec run as the loader runs it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from asyncapi_gw import documents, schema
from asyncapi_gw.asyncapi import v3
from asyncapi_gw.builder import new_api
from asyncapi_gw.builder import topic as builder_topic
from asyncapi_gw.errors import Problem
from asyncapi_gw.model import AuthType, StreamingAPI

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
V3 = FIXTURES / "v3"
WSO2 = V3 / "wso2-4.7.yaml"


def resolve(source: Path | dict[str, Any]) -> tuple[Any, Any]:
    """The document as written and with its ``$ref`` resolved."""
    doc = (
        documents.read_document(source)
        if isinstance(source, Path)
        else documents.document_from_data(source)
    )
    resolved = schema.resolve_refs(doc, load=lambda uri: documents.read_document(uri[7:]))
    return doc.data, resolved.data


def decode(source: Path | dict[str, Any], **options: Any) -> tuple[StreamingAPI, list[Problem]]:
    data, resolved = resolve(source)
    return v3.decode(resolved, source=data, **options)


def export(api: StreamingAPI, **options: Any) -> tuple[dict[str, Any], list[Problem]]:
    """``api`` written as 3.x, with what its source decodes to as the baseline."""
    version = options.pop("version", api.asyncapi_version or "3.0.0")
    if api.document is None or not str(api.document.get("asyncapi")).startswith("3."):
        return v3.encode(api, version=version, **options)
    data, resolved = resolve(dict(api.document))
    baseline, _ = v3.decode(resolved, source=data, point_of_view=api.point_of_view, lenient=True)
    return v3.encode(api, version=version, baseline=baseline, resolved=resolved, **options)


def chat_api() -> StreamingAPI:
    return new_api(
        name="Chats",
        version="1.0.0",
        endpoint="ws://localhost:8080/ws",
        auth="oauth2",
        sandbox_endpoint="wss://sandbox.example:8443",
        topics=[
            builder_topic(
                "/rooms/{roomId}",
                "pubsub",
                uri_mapping="/rooms/{uri.var.roomId}",
                scopes=["chat:write"],
            ),
            builder_topic("/notifications", "sub", scopes=["chat:read"]),
            builder_topic("/feed", "pub", auth_type=AuthType.NONE),
        ],
    )
