"""Hypothesis strategies for AsyncAPI documents, and the edits a user makes to an imported API.

Shared by the 2.x and 3.x round-trip property tests.  The 3.x documents come in both readings of
their operations: written as the specification writes them (the application's point of view,
operations named freely) or as WSO2 API Manager 4.7 writes them (the client's point of view,
operations named ``<action>_<address>``, channel keys without the leading ``/``).
"""

from __future__ import annotations

from typing import Any

import attrs
from hypothesis import strategies as st

from asyncapi_gw.builder import topic as builder_topic
from asyncapi_gw.model import (
    AuthKind,
    AuthType,
    Endpoint,
    Operation,
    PointOfView,
    SecurityScheme,
    StreamingAPI,
    Throttling,
    ThrottlingUnit,
)
from asyncapi_gw.pointers import escape_token

WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=8)
TEXT = st.text(max_size=20).filter(lambda s: "\x00" not in s)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(WORD, inner, max_size=3),
    max_leaves=8,
)
# Extension names, but for the two the 3.x schemas define for info (x-x, x-linkedin: strings).
EXTENSIONS = st.dictionaries(
    WORD.map(lambda w: "x-" + w).filter(lambda k: k not in ("x-x", "x-linkedin")), JSON, max_size=2
)
# What an API remembers of its source: left out when an edited API is compared with its re-import.
SOURCE_FIELDS = {"document": None, "asyncapi_version": None, "base_uri": None}


@st.composite
def info(draw: st.DrawFn) -> dict[str, Any]:
    found: dict[str, Any] = {
        "title": draw(st.text(min_size=1, max_size=20).filter(lambda s: s.strip() != "")),
        "version": draw(st.from_regex(r"\A[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\Z")),
    }
    if draw(st.booleans()):
        found["description"] = draw(TEXT)
    found.update(draw(EXTENSIONS))
    return found


def x_scopes(draw: st.DrawFn, scopes: list[str]) -> list[str] | dict[str, str] | None:
    """WSO2's ``x-scopes``, as a list or as an object, or ``None``."""
    if not scopes or not draw(st.booleans()):
        return None
    chosen = draw(st.lists(st.sampled_from(scopes), min_size=1, max_size=2, unique=True))
    return chosen if draw(st.booleans()) else {str(i): s for i, s in enumerate(chosen)}


def address(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A topic path with template parameters, and the parameters."""
    segments = draw(st.lists(WORD, min_size=1, max_size=3))
    params = draw(st.lists(WORD, max_size=2, unique=True))
    return "/" + "/".join(segments + [f"{{{p}}}" for p in params]), params


@st.composite
def v3_operation(
    draw: st.DrawFn, action: str, channel_key: str, channel: dict[str, Any], scopes: list[str]
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "action": action,
        "channel": {"$ref": "#/channels/" + escape_token(channel_key)},
    }
    if draw(st.booleans()):
        params = [p[1:-1] for p in channel["address"].split("/") if p.startswith("{")]
        op["x-uri-mapping"] = "/" + "/".join(f"{{uri.var.{p}}}" for p in params) if params else "/m"
    if (found := x_scopes(draw, scopes)) is not None:
        op["x-scopes"] = found
    if draw(st.booleans()):
        op["summary"] = draw(TEXT)
    messages = list(channel.get("messages", {}))
    if messages and draw(st.booleans()):
        ref = "#/channels/" + escape_token(channel_key) + "/messages/"
        op["messages"] = [
            {"$ref": ref + escape_token(m)}
            for m in draw(st.lists(st.sampled_from(messages), unique=True))
        ]
    op.update(draw(EXTENSIONS))
    return op


@st.composite
def v3_documents(draw: st.DrawFn, pov: PointOfView | None = None) -> dict[str, Any]:
    """A valid AsyncAPI 3.0.0 or 3.1.0 document, written from ``pov`` (drawn when ``None``):
    the application's (the specification's) or the client's (as WSO2 API Manager writes)."""
    pov = pov or draw(st.sampled_from(list(PointOfView)))
    wso2 = pov is PointOfView.CLIENT
    scopes = draw(st.lists(WORD, max_size=3, unique=True))
    doc: dict[str, Any] = {
        "asyncapi": draw(st.sampled_from(["3.0.0", "3.1.0"])),
        "info": draw(info()),
    }
    if draw(st.booleans()):
        doc["x-asyncapi-gw-context"] = "/" + draw(WORD)
    production: dict[str, Any] = {"host": f"localhost:{draw(st.integers(1, 65535))}"}
    if draw(st.booleans()):
        production["pathname"] = "/" if wso2 else "/ws"
    servers = {"production": {**production, "protocol": "ws"}}
    if draw(st.booleans()):
        servers["sandbox"] = {
            "host": "sandbox.example",
            "pathname": "/x",
            "protocol": "wss",
            "description": draw(TEXT),
        }
    doc["servers"] = servers
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for index in range(draw(st.integers(0, 4))):
        path, params = address(draw)
        key = path.lstrip("/") if wso2 or draw(st.booleans()) else f"c{index}{draw(WORD)}"
        if key in channels or any(c["address"] == path for c in channels.values()):
            continue
        channel: dict[str, Any] = {"address": path}
        if draw(st.booleans()):
            channel["description"] = draw(TEXT)
        if params:
            channel["parameters"] = {p: {"description": draw(TEXT)} for p in params}
        if not wso2 and draw(st.booleans()):
            channel["messages"] = {
                f"m{i}": {"payload": {"type": kind}}
                for i, kind in enumerate(
                    draw(
                        st.lists(
                            st.sampled_from(["string", "object", "number"]),
                            min_size=1,
                            max_size=2,
                            unique=True,
                        )
                    )
                )
            }
        if draw(st.booleans()):
            channel["x-auth-type"] = draw(st.sampled_from(["Any", "Application", "None"]))
        channel.update(draw(EXTENSIONS))
        channels[key] = channel
        ops = draw(
            st.sampled_from(
                [
                    [Operation.PUBLISH],
                    [Operation.SUBSCRIBE],
                    [Operation.PUBLISH, Operation.SUBSCRIBE],
                ]
            )
        )
        for op in ops:
            action = pov.action(op)
            name = f"{action}_{path}" if wso2 else f"op{len(operations)}{draw(WORD)}"
            operations[name] = draw(v3_operation(action, key, channel, scopes))
    doc["channels"] = channels
    doc["operations"] = operations
    if scopes or draw(st.booleans()):
        flow = {
            "authorizationUrl": "http://localhost:9999",
            "availableScopes": {s: draw(TEXT) for s in scopes},
        }
        if wso2 and scopes:
            flow["x-scopes-bindings"] = dict.fromkeys(scopes, "admin")
        doc["components"] = {
            "securitySchemes": {"oauth2": {"type": "oauth2", "flows": {"implicit": flow}}}
        }
    doc.update(draw(EXTENSIONS))
    return doc


def mutate(doc: Any, data: st.DataObject) -> Any:
    """Delete, replace or retype one node somewhere in ``doc``."""
    if not isinstance(doc, (dict, list)) or not doc or data.draw(st.integers(0, 3)) == 0:
        return data.draw(JSON)
    if isinstance(doc, dict):
        key = data.draw(st.sampled_from(sorted(doc)))
        copy = dict(doc)
        if data.draw(st.booleans()):
            del copy[key]
        else:
            copy[key] = mutate(doc[key], data)
        return copy
    index = data.draw(st.integers(0, len(doc) - 1))
    return [mutate(v, data) if i == index else v for i, v in enumerate(doc)]


def edit(api: StreamingAPI, data: st.DataObject) -> StreamingAPI:
    """One random change a user could make to an imported API."""
    choice = data.draw(st.integers(-4, 7))
    topics = list(api.topics)
    if choice == -4:
        return attrs.evolve(api, throttling=Throttling(events=5, unit=ThrottlingUnit.SECOND))
    if choice == -3:
        sandbox = None if api.sandbox_endpoint else Endpoint(url="ws://sandbox.example:81")
        return attrs.evolve(api, sandbox_endpoint=sandbox)
    if choice == -2:
        return attrs.evolve(api, security=[])
    if choice == -1:
        key = SecurityScheme(name="gw_key", kind=AuthKind.API_KEY)
        return attrs.evolve(api, security=[*api.security, key])
    if choice == 0:
        return attrs.evolve(api, name=api.name + " v2", description=data.draw(TEXT) or None)
    if choice == 1:
        return attrs.evolve(api, production_endpoint=Endpoint(url="wss://edited.example/ws"))
    if choice == 2 or not topics:
        return api.with_topics([*topics, builder_topic("/added/{p}", "sub", uri_mapping="/a")])
    index = data.draw(st.integers(0, len(topics) - 1))
    old = topics[index]
    if choice == 3:
        del topics[index]
    elif choice == 4:
        ops = {op.operation: attrs.evolve(op, uri_mapping="/edited") for op in old.operations}
        topics[index] = attrs.evolve(
            old, publish=ops.get(Operation.PUBLISH), subscribe=ops.get(Operation.SUBSCRIBE)
        )
    elif choice == 5:
        topics[index] = attrs.evolve(old, description="edited", auth_type=AuthType.NONE)
    elif choice == 7:  # the same topic, written with or without its leading "/"
        renamed = old.name[1:] if old.name.startswith("/") else "/" + old.name
        topics[index] = attrs.evolve(old, name=renamed)
    else:
        ops = {op.operation: attrs.evolve(op, scopes=()) for op in old.operations}
        topics[index] = attrs.evolve(
            old, publish=ops.get(Operation.PUBLISH), subscribe=ops.get(Operation.SUBSCRIBE)
        )
    return api.with_topics(topics)
