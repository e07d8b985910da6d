from __future__ import annotations

import attrs
import pytest

from asyncapi_gw.model import (
    AuthType,
    Endpoint,
    Operation,
    Parameter,
    StreamingAPI,
    Topic,
    TopicKind,
    TopicOperation,
    default_context,
    freeze,
    thaw,
)

PUB = TopicOperation(operation=Operation.PUBLISH)
SUB = TopicOperation(operation=Operation.SUBSCRIBE)


def api(**kw: object) -> StreamingAPI:
    fields: dict[str, object] = {"name": "Chat", "version": "1.0.0", "context": "/chat"}
    fields.update(kw)
    return StreamingAPI(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("title", "context"),
    [
        ("ChatRoom", "/chatroom"),
        ("Market Feed", "/market-feed"),
        ("  A--b!!c ", "/a-b-c"),
        ("!!!", "/api"),
        ("Ünïcode Feed", "/n-code-feed"),
    ],
)
def test_default_context(title: str, context: str) -> None:
    assert default_context(title) == context


@pytest.mark.parametrize(
    "context",
    ["/chat", "/{version}/chats", "/a/{version}", "/a.b~c$d;e(f)_g-h", "/x/{version}/y"],
)
def test_valid_contexts(context: str) -> None:
    assert api(context=context).context == context


@pytest.mark.parametrize(
    "context",
    [
        "chat",
        "/",
        "/chat/",
        "/chat{version}",
        "/{ver}/x",
        "//chat",
        "/a/../b",
        "/a/./b",
        "/chat room",
        "/chat?x",
        "/chat#x",
        "/ch%41t",
        "",
    ],
)
def test_invalid_contexts(context: str) -> None:
    with pytest.raises(ValueError, match="context"):
        api(context=context)


def test_gateway_path_with_and_without_version_placeholder() -> None:
    assert api().gateway_path == "/chat/1.0.0"
    assert api(context="/{version}/chat").gateway_path == "/1.0.0/chat"


@pytest.mark.parametrize("version", ["", "1.0 beta", "a/b", "..", "v1?x", "1%20"])
def test_invalid_versions(version: str) -> None:
    with pytest.raises(ValueError, match="version"):
        api(version=version)


@pytest.mark.parametrize("url", ["ws://h", "wss://h:8443/p?q=1", "ws://[::1]:80/x"])
def test_endpoints(url: str) -> None:
    assert Endpoint(url=url).url == url


@pytest.mark.parametrize("url", ["http://h", "ws://", "ws://h:99999", "ws://h/#frag", "h:80"])
def test_bad_endpoints(url: str) -> None:
    with pytest.raises(ValueError, match="endpoint"):
        Endpoint(url=url)


def test_topic_kinds_and_paths() -> None:
    exact = Topic(name="notifications", subscribe=SUB)
    template = Topic(name="/rooms/{roomId}", publish=PUB)
    wildcard = Topic(name="/feeds/*", publish=PUB, subscribe=SUB)
    assert exact.path == "/notifications"
    assert (exact.kind, template.kind, wildcard.kind) == (
        TopicKind.EXACT,
        TopicKind.TEMPLATE,
        TopicKind.WILDCARD,
    )
    assert Topic(name="/*", publish=PUB).kind is TopicKind.WILDCARD
    assert template.template_parameters == ("roomId",)
    assert wildcard.allows(Operation.PUBLISH)
    assert not exact.allows(Operation.PUBLISH)


def test_topic_needs_an_operation_of_the_right_kind() -> None:
    with pytest.raises(ValueError, match="publish, subscribe or both"):
        Topic(name="/x")
    with pytest.raises(ValueError, match="publish holds"):
        Topic(name="/x", publish=SUB)
    with pytest.raises(ValueError, match="duplicate parameters"):
        Topic(name="/x/{a}", publish=PUB, parameters=[Parameter(name="a"), Parameter(name="a")])


@pytest.mark.parametrize("name", ["", " /x", "/x?y", "/x#y", "/x\ny"])
def test_bad_topic_names(name: str) -> None:
    with pytest.raises(ValueError, match="topic name"):
        Topic(name=name, publish=PUB)


def test_topics_unique_with_or_without_leading_slash() -> None:
    with pytest.raises(ValueError, match="same topic"):
        api(topics=[Topic(name="/a", publish=PUB), Topic(name="a", subscribe=SUB)])


def test_scopes_union_and_open_topic() -> None:
    topic = Topic(
        name="/t",
        publish=attrs.evolve(PUB, scopes=["w", "r"]),
        subscribe=attrs.evolve(SUB, scopes=["r"]),
        auth_type=AuthType.NONE,
    )
    assert topic.scopes == ("w", "r")
    assert topic.is_open


def test_freeze_thaw_and_frozen_json_fields() -> None:
    data = {"a": [1, {"b": None}], "c": "d"}
    frozen = freeze(data)
    assert thaw(frozen) == data
    with pytest.raises(TypeError):
        frozen["a"] = 1
    param = Parameter(name="p", schema={"type": "string"})
    assert param.schema == {"type": "string"}
    assert hash(Topic(name="/x", publish=PUB, parameters=[param]))


def test_model_is_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        api().name = "other"  # type: ignore[misc]


def test_topic_lookup() -> None:
    a = api(topics=[Topic(name="rooms", publish=PUB)])
    assert a.topic("/rooms").name == "rooms"
    with pytest.raises(KeyError):
        a.topic("/none")
