from __future__ import annotations

from typing import Any

import pytest

from asyncapi_gw.builder import (
    new_api,
    parse_scope,
    parse_throttling,
    parse_topic,
    secure_topics,
    topic,
)
from asyncapi_gw.errors import ConversionError
from asyncapi_gw.model import AuthKind, AuthType, Operation, Throttling, ThrottlingUnit


def test_default_topic_and_context() -> None:
    api = new_api(name="Market Feed", version="1.0.0", endpoint="ws://backend:80")
    assert api.context == "/market-feed"
    assert [t.name for t in api.topics] == ["/*"]
    assert api.topics[0].allows(Operation.PUBLISH)
    assert api.topics[0].allows(Operation.SUBSCRIBE)
    assert api.security == ()


@pytest.mark.parametrize(
    ("spec", "name", "ops", "mapping"),
    [
        ("/notifications", "/notifications", {"publish", "subscribe"}, None),
        ("/notifications:sub", "/notifications", {"subscribe"}, None),
        ("/n:pub=/notify", "/n", {"publish"}, "/notify"),
        (
            "/rooms/{id}:pubsub=/rooms?room={uri.var.id}&x=1",
            "/rooms/{id}",
            {"publish", "subscribe"},
            "/rooms?room={uri.var.id}&x=1",
        ),
        ("/a:b", "/a:b", {"publish", "subscribe"}, None),
    ],
)
def test_parse_topic(spec: str, name: str, ops: set[str], mapping: str | None) -> None:
    t = parse_topic(spec)
    assert t.name == name
    assert {op.operation.value for op in t.operations} == ops
    assert {op.uri_mapping for op in t.operations} == {mapping}


def test_template_parameters_become_string_parameters() -> None:
    t = topic("/rooms/{roomId}/users/{userId}")
    assert [(p.name, dict(p.schema or {})) for p in t.parameters] == [
        ("roomId", {"type": "string"}),
        ("userId", {"type": "string"}),
    ]


def test_auth_schemes() -> None:
    oauth = new_api(
        name="A",
        version="1",
        endpoint="ws://h",
        topics=[topic("/t", scopes=["read"])],
        auth="oauth2",
    )
    assert oauth.security[0].kind is AuthKind.OAUTH2
    assert dict(oauth.security[0].scopes) == {"read": "read"}
    key = new_api(name="A", version="1", endpoint="ws://h", auth="api_key")
    assert key.security[0].kind is AuthKind.API_KEY


@pytest.mark.parametrize(
    "kwargs",
    [
        {"endpoint": "http://h"},
        {"context": "/bad{version}"},
        {"version": "1 0"},
        {"auth": "basic"},
        {"sandbox_endpoint": "ftp://h"},
    ],
)
def test_bad_values_raise_conversion_error(kwargs: dict[str, str]) -> None:
    fields = {"name": "A", "version": "1", "endpoint": "ws://h", **kwargs}
    with pytest.raises(ConversionError):
        new_api(**fields)


def test_bad_topic_specs() -> None:
    with pytest.raises(ConversionError):
        parse_topic("/x?y")
    with pytest.raises(ConversionError):
        topic("/x", "both")


def test_scopes_and_open_topics_by_name() -> None:
    topics = secure_topics(
        [topic("/rooms/{id}"), topic("/public", "sub"), topic("/other")],
        auth="oauth2",
        scopes=[
            ("rooms/{id}", "chat:write"),
            ("/rooms/{id}", "chat:admin"),
            ("/rooms/{id}", "chat:write"),
        ],
        open_topics=["public"],
    )
    rooms, public, other = topics
    assert rooms.scopes == ("chat:write", "chat:admin")
    assert {op.scopes for op in rooms.operations} == {("chat:write", "chat:admin")}
    assert public.auth_type is AuthType.NONE
    assert public.is_open
    assert other == topic("/other")
    api = new_api(name="A", version="1", endpoint="ws://h", topics=topics, auth="oauth2")
    assert dict(api.security[0].scopes) == {"chat:write": "chat:write", "chat:admin": "chat:admin"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scopes": [("/missing", "s")]}, "'/missing' is not one of the topics"),
        ({"open_topics": ["/missing"]}, "'/missing' is not one of the topics"),
        ({"scopes": [("/t", "s")], "open_topics": ["/t"]}, "cannot be open and require"),
        ({"scopes": [("/t", "s")], "auth": "none"}, "need an API with auth"),
        ({"open_topics": ["/t"], "auth": "none"}, "need an API with auth"),
    ],
)
def test_scopes_and_open_topics_refused(kwargs: dict[str, Any], message: str) -> None:
    options = {"auth": "api_key", **kwargs}
    with pytest.raises(ConversionError, match=message):
        secure_topics([topic("/t")], **options)


def test_parse_scope_and_throttling() -> None:
    assert parse_scope("/rooms/{id}=chat:write") == ("/rooms/{id}", "chat:write")
    assert parse_scope("/t=a=b") == ("/t", "a=b")
    assert parse_throttling("100/minute") == Throttling(events=100, unit=ThrottlingUnit.MINUTE)
    assert parse_throttling("5/second", 2) == Throttling(
        events=5, unit=ThrottlingUnit.SECOND, per_principal=2
    )
    for bad in ("/t", "t=", "notopic"):
        with pytest.raises(ConversionError, match="TOPIC=SCOPE"):
            parse_scope(bad)
    for bad in ("100", "x/minute", "100/hour", "0/day"):
        with pytest.raises(ConversionError, match="throttling"):
            parse_throttling(bad)
    with pytest.raises(ConversionError, match="perPrincipal"):
        parse_throttling("5/day", 0)
