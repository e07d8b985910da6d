from __future__ import annotations

import pytest

from asyncapi_gw.builder import new_api, parse_topic, topic
from asyncapi_gw.errors import ConversionError
from asyncapi_gw.model import AuthKind, Operation


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
        ("/rooms/{id}:pubsub=/rooms?room={uri.var.id}&x=1", "/rooms/{id}",
         {"publish", "subscribe"}, "/rooms?room={uri.var.id}&x=1"),
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
        ("roomId", {"type": "string"}), ("userId", {"type": "string"})]


def test_auth_schemes() -> None:
    oauth = new_api(name="A", version="1", endpoint="ws://h",
                    topics=[topic("/t", scopes=["read"])], auth="oauth2")
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
