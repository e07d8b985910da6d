"""The route table: matching, path safety, backend URLs and build-time checks (no sockets)."""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urlsplit

import attrs
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from asyncapi_gw.errors import RelayError
from asyncapi_gw.model import Endpoint, Environment, Operation, StreamingAPI, Topic, TopicOperation
from asyncapi_gw.relay.routing import (
    BackendURL,
    NoRoute,
    Route,
    RouteTable,
    backend_for,
    backend_template,
)


def pub(mapping: str | None = None) -> TopicOperation:
    return TopicOperation(operation=Operation.PUBLISH, uri_mapping=mapping)


def sub(mapping: str | None = None) -> TopicOperation:
    return TopicOperation(operation=Operation.SUBSCRIBE, uri_mapping=mapping)


def topic(name: str, mapping: str | None = None) -> Topic:
    return Topic(name=name, publish=pub(mapping), subscribe=sub(mapping))


def make_api(
    *topics: Topic,
    name: str = "Chat",
    version: str = "1.0",
    context: str = "/chats",
    production: str | None = "ws://backend:8080",
    sandbox: str | None = None,
) -> StreamingAPI:
    return StreamingAPI(
        name=name,
        version=version,
        context=context,
        production_endpoint=Endpoint(url=production) if production else None,
        sandbox_endpoint=Endpoint(url=sandbox) if sandbox else None,
        topics=topics,
    )


def route(table: RouteTable, target: str) -> Route:
    found = table.match(target)
    assert isinstance(found, Route), found
    return found


def refused(table: RouteTable, target: str, status: int = 404) -> NoRoute:
    found = table.match(target)
    assert isinstance(found, NoRoute), found
    assert found.status == status
    return found


CHAT = make_api(
    topic("/*"),
    topic("/notifications"),
    topic("rooms/{roomId}", "/rooms?room={uri.var.roomId}"),  # no leading '/'
    topic("/rooms/lobby"),
    topic("/rooms/{roomId}/members/{memberId}", "/r/{uri.var.roomId}/m/{uri.var.memberId}"),
    topic("/rooms/lobby/members/{memberId}"),
    topic("/feeds/*"),
    topic("/feeds/sports/*"),
    topic("/{tenant}/alerts/*"),
)
TABLE = RouteTable.from_apis([CHAT])


# --- precedence --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "name", "params"),
    [
        ("/chats/1.0/notifications", "/notifications", {}),
        ("/chats/1.0/rooms/lobby", "/rooms/lobby", {}),  # exact beats template
        ("/chats/1.0/rooms/42", "rooms/{roomId}", {"roomId": "42"}),  # template beats wildcard
        ("/chats/1.0/rooms/42/members/7", "/rooms/{roomId}/members/{memberId}",
         {"roomId": "42", "memberId": "7"}),
        # both templates match; the literal at the first differing segment wins
        ("/chats/1.0/rooms/lobby/members/7", "/rooms/lobby/members/{memberId}",
         {"memberId": "7"}),
        ("/chats/1.0/feeds/news/today", "/feeds/*", {}),
        ("/chats/1.0/feeds/sports/today", "/feeds/sports/*", {}),  # longest wildcard prefix
        ("/chats/1.0/feeds/sports", "/feeds/sports/*", {}),  # P/* matches P itself
        ("/chats/1.0/feeds", "/feeds/*", {}),
        ("/chats/1.0/acme/alerts/x/y", "/{tenant}/alerts/*", {"tenant": "acme"}),
        ("/chats/1.0/rooms/42/extra", "/*", {}),  # a template fills exactly one segment
        ("/chats/1.0/other", "/*", {}),
        ("/chats/1.0", "/*", {}),  # exactly the gateway path reaches /*
        ("/chats/1.0/", "/*", {}),
    ],
)  # fmt: skip
def test_precedence(target: str, name: str, params: dict[str, str]) -> None:
    found = route(TABLE, target)
    assert found.api is CHAT
    assert found.topic.name == name
    assert dict(found.params) == params


def test_longest_wildcard_prefix_wins_even_through_a_parameter() -> None:
    table = RouteTable.from_apis([make_api(topic("/a/*"), topic("/{x}/b/*"))])
    assert route(table, "/chats/1.0/a/b/c").topic.name == "/{x}/b/*"
    assert dict(route(table, "/chats/1.0/a/b/c").params) == {"x": "a"}
    assert route(table, "/chats/1.0/a/c").topic.name == "/a/*"
    assert route(table, "/chats/1.0/z/b").topic.name == "/{x}/b/*"


def test_equally_long_wildcards_prefer_the_literal() -> None:
    table = RouteTable.from_apis([make_api(topic("/a/*"), topic("/{x}/*"))])
    assert route(table, "/chats/1.0/a/q").topic.name == "/a/*"
    assert route(table, "/chats/1.0/b/q").topic.name == "/{x}/*"


def test_template_backtracks_when_the_literal_branch_dead_ends() -> None:
    table = RouteTable.from_apis([make_api(topic("/a/b/c"), topic("/{x}/b/d"))])
    assert dict(route(table, "/chats/1.0/a/b/d").params) == {"x": "a"}
    assert route(table, "/chats/1.0/a/b/c").topic.name == "/a/b/c"


def test_no_topic_is_404_naming_the_api() -> None:
    table = RouteTable.from_apis([make_api(topic("/rooms/{id}"))])
    assert "Chat" in refused(table, "/chats/1.0/rooms").reason
    refused(table, "/chats/1.0")  # no /* topic here
    refused(table, "/chats/1.0/rooms/a/b")


def test_a_slash_topic_is_the_gateway_path_itself() -> None:
    table = RouteTable.from_apis([make_api(topic("/"), topic("/*"))])
    assert route(table, "/chats/1.0").topic.name == "/"
    assert route(table, "/chats/1.0/x").topic.name == "/*"


# --- paths, queries, APIs ----------------------------------------------------------------------


def test_query_is_dropped_from_matching_and_kept_raw() -> None:
    found = route(TABLE, "/chats/1.0/rooms/42/?access_token=a%20b&x=1?2")
    assert found.topic.name == "rooms/{roomId}"
    assert found.query == "access_token=a%20b&x=1?2"
    assert route(TABLE, "/chats/1.0/notifications?").query == ""


def test_one_trailing_slash_only() -> None:
    assert route(TABLE, "/chats/1.0/notifications/").topic.name == "/notifications"
    refused(TABLE, "/chats/1.0/notifications//", 400)


def test_segments_are_compared_decoded() -> None:
    assert route(TABLE, "/chats/1.0/notific%61tions").topic.name == "/notifications"
    assert route(TABLE, "/ch%61ts/1%2E0/notifications").topic.name == "/notifications"
    assert dict(route(TABLE, "/chats/1.0/rooms/caf%C3%A9").params) == {"roomId": "café"}


def test_encoded_slash_stays_inside_one_parameter_of_an_api_that_allows_it() -> None:
    table = RouteTable.from_apis([attrs.evolve(CHAT, allow_encoded_slashes=True)])
    found = route(table, "/chats/1.0/rooms/a%2Fmembers%2F7")
    assert found.topic.name == "rooms/{roomId}"
    assert dict(found.params) == {"roomId": "a/members/7"}
    assert url_for(found) == "ws://backend:8080/rooms?room=a%2Fmembers%2F7"
    assert dict(route(table, "/chats/1.0/rooms/a%5Cb").params) == {"roomId": "a\\b"}
    # and never reaches a literal segment: "rooms%2Flobby" is not rooms/lobby
    assert route(table, "/chats/1.0/rooms%2Flobby").topic.name == "/*"
    assert route(TABLE, "/chats/1.0/rooms%2Flobby").topic.name == "/*"  # no parameter there


@pytest.mark.parametrize(
    "value", ["..%2Fadmin%2F1", "a%2fb", "%2F", "a%5Cb", "..%5c..%5cadmin", "%2e%2e%2F"]
)
def test_encoded_separators_in_parameters_are_400_by_default(value: str) -> None:
    reason = refused(TABLE, f"/chats/1.0/rooms/{value}", 400).reason
    assert "%2F" in reason
    refused(TABLE, f"/chats/1.0/rooms/{value}/members/7", 400)
    refused(TABLE, f"/chats/1.0/{value}/alerts/x", 400)  # a parameter before a wildcard


RAW_PIECES = st.one_of(
    st.sampled_from(
        [
            *("%2F", "%2f", "%5C", "%5c", "%2E", "%2e", ".", "..", "%25", "%252F", "%255c"),
            *("%252E", "%", "%C3%A9", "%00", "/", "\\", "?", "#", "%3F", "a", "admin", "%20"),
        ]
    ),
    st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=3),
)


@given(st.lists(RAW_PIECES, min_size=1, max_size=6).map("".join))
@example("..%2Fadmin%2F1")
@example("%252E%252E")
def test_no_accepted_parameter_moves_a_once_decoding_backend(raw: str) -> None:
    """Whatever the client writes as the parameter, a backend that percent-decodes its path
    once (and takes ``\\`` for ``/``) sees the mapping's segments, none of them a dot segment."""
    guarded = make_api(
        topic("/open/{p}", "/open/{uri.var.p}/end"), production="ws://backend:8080/base"
    )
    found = RouteTable.from_apis([guarded]).match("/chats/1.0/open/" + raw)
    if isinstance(found, NoRoute):
        return
    url = url_for(found)
    seen = re.split(r"[/\\]", unquote(urlsplit(url).path))
    assert seen == ["", "base", "open", found.params["p"], "end"]
    assert found.params["p"] not in (".", "..")


@pytest.mark.parametrize(
    "target",
    [
        "/chats/1.0//rooms/1",
        "//chats/1.0/rooms/1",
        "/chats/1.0/./rooms/1",
        "/chats/1.0/rooms/..",
        "/chats/1.0/x/../rooms/1",
        "/chats/1.0/rooms/.",
        "/chats/1.0/rooms/%2e",
        "/chats/1.0/rooms/%2E%2e",
        "/chats/1.0/rooms/.%2e",
        "/chats/1.0/%2e%2e/1.0/rooms/1",
        "/chats/1.0/rooms/a%00b",
        "/chats/1.0/rooms/%0d%0aX-Injected:%201",
        "/chats/1.0/rooms/%7F",
        "/chats/1.0/rooms/%C2%85",  # C1 control (NEL)
        "/chats/1.0/rooms/%c0%ae%c0%ae",  # overlong '.'
        "/chats/1.0/rooms/%c0%af",  # overlong '/'
        "/chats/1.0/rooms/%ed%a0%80",  # UTF-16 surrogate
        "/chats/1.0/rooms/%ff",
        "/chats/1.0/rooms/%e2%82",  # truncated sequence
        "/chats/1.0/rooms/%zz",
        "/chats/1.0/rooms/%4",
        "/chats/1.0/rooms/100%",
        "/chats/1.0/rooms/a b",
        "/chats/1.0/rooms/a\r\nX: 1",
        "/chats/1.0/rooms/a\x00",
        "/chats/1.0/rooms/café",  # raw non-ASCII must be percent-encoded
        "/chats/1.0/rooms/1#frag",
        "/chats/1.0/rooms/1?q=\r\n",
        "chats/1.0/rooms/1",
        "ws://host/chats/1.0/rooms/1",
        "*",
        "",
    ],
)
def test_path_tricks_are_refused(target: str) -> None:
    refused(TABLE, target, 400)


def test_no_api_at_a_prefix_of_a_gateway_path() -> None:
    assert "/chats" in refused(TABLE, "/chats").reason
    refused(TABLE, "/")
    refused(TABLE, "/chats/2.0/notifications")
    refused(TABLE, "/chats/1.0x/notifications")  # prefixes are whole segments


def test_longest_gateway_path_wins_without_fallback() -> None:
    outer = make_api(topic("/*"), name="Outer", context="/a", version="1")
    inner = make_api(topic("/x"), name="Inner", context="/a/1/b", version="2")
    table = RouteTable.from_apis([outer, inner])
    assert route(table, "/a/1/b/2/x").api is inner
    assert route(table, "/a/1/b/3/x").api is outer
    assert route(table, "/a/1/b").api is outer
    assert "Inner" in refused(table, "/a/1/b/2/y").reason  # not handed to Outer's /*


def test_version_in_context() -> None:
    api = make_api(topic("/rooms/{id}"), context="/{version}/chats", version="v2")
    table = RouteTable.from_apis([api])
    assert dict(route(table, "/v2/chats/rooms/9").params) == {"id": "9"}
    refused(table, "/chats/v2/rooms/9")


def test_apis_and_directions() -> None:
    api = make_api(
        Topic(name="/in", publish=pub()),
        Topic(name="/out", subscribe=sub()),
        topic("/both"),
    )
    table = RouteTable.from_apis([api])
    assert table.apis == (api,)
    inbound, outbound, both = (route(table, f"/chats/1.0/{t}") for t in ("in", "out", "both"))
    assert (inbound.allows_client_messages, inbound.allows_backend_messages) == (True, False)
    assert (outbound.allows_client_messages, outbound.allows_backend_messages) == (False, True)
    assert (both.allows_client_messages, both.allows_backend_messages) == (True, True)


def test_deep_targets_and_topics() -> None:
    deep = "/".join(["{p0}", *(f"s{i}" for i in range(1, 255)), "{p255}"])
    table = RouteTable.from_apis([make_api(topic("/" + deep), topic("/*"))])
    target = "/chats/1.0/" + "/".join(["v", *(f"s{i}" for i in range(1, 255)), "w"])
    assert dict(route(table, target).params) == {"p0": "v", "p255": "w"}
    assert route(table, "/chats/1.0" + "/x" * 100_000).topic.name == "/*"


def test_many_apis_and_topics() -> None:
    apis = [
        make_api(
            *(topic(f"/t{j}/{{id}}") for j in range(50)),
            topic(f"/x{i}/*"),
            name=f"API {i}",
            context=f"/api{i}",
        )
        for i in range(40)
    ]
    table = RouteTable.from_apis(apis)
    found = route(table, "/api17/1.0/t33/abc")
    assert (found.api.name, found.topic.name, dict(found.params)) == (
        "API 17",
        "/t33/{id}",
        {"id": "abc"},
    )
    assert route(table, "/api39/1.0/x39/q").topic.name == "/x39/*"
    refused(table, "/api39/1.0/x38/q")


segment_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1, max_size=12
).filter(lambda s: s not in (".", ".."))


@given(segment_text)
@example("a/b?c=d#e")
@example("..%2F..")
@example("%")
def test_any_parameter_value_round_trips(value: str) -> None:
    """Any value, separators included where the API allows them; without that, any value
    without a separator."""
    target = "/chats/1.0/rooms/" + quote(value, safe="")
    table = RouteTable.from_apis([attrs.evolve(CHAT, allow_encoded_slashes=True)])
    assert dict(route(table, target).params) == {"roomId": value}
    if "/" not in value and "\\" not in value:
        assert dict(route(TABLE, target).params) == {"roomId": value}


@given(st.text(max_size=40))
@example("/chats/1.0/%")
@example("/chats/1.0/rooms/\udcff")
def test_match_never_raises(target: str) -> None:
    found = TABLE.match(target)
    assert isinstance(found, (Route, NoRoute))


@given(st.lists(segment_text, max_size=6), st.text(max_size=20))
def test_match_never_raises_on_well_formed_paths(segments: list[str], query: str) -> None:
    target = "/chats/1.0/" + "/".join(quote(s, safe="") for s in segments)
    found = TABLE.match(target + "?" + quote(query, safe="=&"))
    assert isinstance(found, Route)


# --- backend URLs ------------------------------------------------------------------------------


def url_for(found: Route, environment: Environment = Environment.PRODUCTION, **kw: bool) -> str:
    built = backend_for(found, environment, **kw)
    assert isinstance(built, BackendURL), built
    return built.url


def backend(
    api: StreamingAPI,
    target: str,
    environment: Environment = Environment.PRODUCTION,
    **kw: bool,
) -> str:
    return url_for(route(RouteTable.from_apis([api]), target), environment, **kw)


@pytest.mark.parametrize(
    ("endpoint", "mapping", "expected"),
    [
        ("ws://b:1", "/rooms/{uri.var.id}", "ws://b:1/rooms/7"),
        ("ws://b:1/", "/rooms/{uri.var.id}", "ws://b:1/rooms/7"),
        ("ws://b:1/", "rooms/{uri.var.id}", "ws://b:1/rooms/7"),
        ("ws://b:1", "rooms/{uri.var.id}", "ws://b:1/rooms/7"),
        ("ws://b:1/chat", "/rooms/{uri.var.id}", "ws://b:1/chat/rooms/7"),
        ("ws://b:1/chat/", "/rooms/{uri.var.id}", "ws://b:1/chat/rooms/7"),
        ("ws://b:1", "?room={uri.var.id}", "ws://b:1/?room=7"),
        ("ws://b:1/chat", "?room={uri.var.id}", "ws://b:1/chat?room=7"),
        ("wss://b/chat?v=2", "/rooms?room={uri.var.id}", "wss://b/chat/rooms?v=2&room=7"),
        ("ws://u@b:1/chat", "/r/{uri.var.id}/{uri.var.id}", "ws://u@b:1/chat/r/7/7"),
        ("ws://b:1/chat", None, "ws://b:1/chat"),  # no mapping: endpoint unchanged
        ("ws://b:1", None, "ws://b:1"),
        ("ws://b:1/", None, "ws://b:1/"),
    ],
)
def test_mapping_joins_endpoint(endpoint: str, mapping: str | None, expected: str) -> None:
    api = make_api(Topic(name="/rooms/{id}", subscribe=sub(mapping)), production=endpoint)
    assert backend(api, "/chats/1.0/rooms/7") == expected


@given(st.text(st.characters(codec="utf-8"), min_size=1))
@example("../../admin")
@example("x?admin=1#f")
@example("evil.com:666/@x")
@example("a%2Fb")
@example("%00\r\n")
def test_parameter_values_cannot_change_the_backend(value: str) -> None:
    mapping = "/r/{uri.var.id}/x?room={uri.var.id}&k=v"
    found = Route(api=MAPPED, topic=MAPPED.topics[0], params={"id": value}, uri_mapping=mapping)
    url = url_for(found)
    template = urlsplit("wss://backend.example:8443/base/r/x/x?room=x&k=v")
    built = urlsplit(url)
    assert (built.scheme, built.hostname, built.port) == (
        template.scheme,
        template.hostname,
        template.port,
    )
    assert built.path.count("/") == template.path.count("/")
    assert unquote(built.path.split("/")[3]) == value
    assert built.query.count("&") == 1
    assert built.query.count("=") == 2
    assert unquote(built.query.split("&")[0].removeprefix("room=")) == value
    assert not built.fragment
    assert all(33 <= ord(c) < 127 for c in url)


MAPPED = make_api(topic("/r/{id}"), production="wss://backend.example:8443/base/")


@pytest.mark.parametrize(
    ("query", "forwarded"),
    [
        ("", ""),
        ("a=1", "?a=1"),
        ("access_token=t&a=1", "?a=1"),
        ("a=1&apikey=k&b=2&apikey=k2&access_token=t&access_token", "?a=1&b=2"),
        ("access%5Ftoken=t&api%6Bey=k&a=1", "?a=1"),  # encoded names are names too
        ("ACCESS_TOKEN=t&ApiKey=k", "?ACCESS_TOKEN=t&ApiKey=k"),  # case-sensitive, as WSO2
        ("apikey", ""),
        ("a=1&&b=2&", "?a=1&b=2"),
        ("x=%0d%0aHost:%20evil&y=%00", "?x=%0d%0aHost:%20evil&y=%00"),  # stays encoded
        ("x=<script>&y=a|b&z=%zz&w=100%", "?x=%3Cscript%3E&y=a%7Cb&z=%25zz&w=100%25"),
        ("q=a/b?c&access_token_x=1", "?q=a/b?c&access_token_x=1"),
    ],
)
def test_client_query_is_forwarded_without_credentials(query: str, forwarded: str) -> None:
    api = make_api(topic("/n"), production="ws://b:1/feed")
    assert backend(api, f"/chats/1.0/n?{query}") == "ws://b:1/feed" + forwarded


def test_client_query_joins_a_mapping_query() -> None:
    api = make_api(topic("/r/{id}", "/rooms?room={uri.var.id}"), production="ws://b:1")
    target = "/chats/1.0/r/7?apikey=k&since=5"
    assert backend(api, target) == "ws://b:1/rooms?room=7&since=5"
    assert backend(api, target, forward_query=False) == "ws://b:1/rooms?room=7"


@pytest.mark.parametrize(
    ("endpoint", "mapping", "query", "url", "overridden"),
    [
        ("ws://b:1", "/rooms?fixed=1", "fixed=2&x=3", "ws://b:1/rooms?fixed=1&x=3", ("fixed",)),
        ("ws://b:1", "?room={uri.var.id}", "room=9&room=8", "ws://b:1/?room=7", ("room", "room")),
        ("ws://b:1", "?k=v", "%6B=evil&K=ok&k", "ws://b:1/?k=v&K=ok", ("k", "k")),  # decoded
        ("ws://b:1/f?v=2", "/r", "v=3&w=1", "ws://b:1/f/r?v=2&w=1", ("v",)),  # endpoint's too
        ("ws://b:1", "?fixed", "fixed=1", "ws://b:1/?fixed", ("fixed",)),
        ("ws://b:1", "/r", "fixed=2", "ws://b:1/r?fixed=2", ()),  # nothing fixed
    ],
)
def test_the_mappings_query_parameters_win_over_the_clients(
    endpoint: str, mapping: str, query: str, url: str, overridden: tuple[str, ...]
) -> None:
    api = make_api(topic("/r/{id}", mapping), production=endpoint)
    found = backend_for(
        route(RouteTable.from_apis([api]), f"/chats/1.0/r/7?{query}"), Environment.PRODUCTION
    )
    assert found == BackendURL(url=url, overridden=overridden)


def test_endpoint_ending_with_a_question_mark() -> None:
    api = make_api(topic("/n"), production="ws://b:1/feed?")
    assert backend(api, "/chats/1.0/n?a=1") == "ws://b:1/feed?a=1"


def test_query_forwarding_can_be_turned_off() -> None:
    api = make_api(topic("/n"), production="ws://b:1/feed")
    assert backend(api, "/chats/1.0/n?a=1", forward_query=False) == "ws://b:1/feed"


def test_sandbox_and_production() -> None:
    both = make_api(topic("/n"), production="ws://prod:1", sandbox="ws://sand:1")
    assert backend(both, "/chats/1.0/n") == "ws://prod:1"
    assert backend(both, "/chats/1.0/n", Environment.SANDBOX) == "ws://sand:1"

    prod_only = route(RouteTable.from_apis([make_api(topic("/n"))]), "/chats/1.0/n")
    refusal = backend_for(prod_only, Environment.SANDBOX)
    assert isinstance(refusal, NoRoute)
    assert refusal.status == 403
    assert "sandbox" in refusal.reason

    sandbox_only = make_api(topic("/n"), production=None, sandbox="ws://sand:1")
    found = route(RouteTable.from_apis([sandbox_only]), "/chats/1.0/n")
    assert backend_for(found, Environment.PRODUCTION) == NoRoute(
        status=503, reason="API 'Chat' 1.0 has no production endpoint."
    )
    assert url_for(found, Environment.SANDBOX) == "ws://sand:1"


def test_one_operation_mapping_serves_the_connection() -> None:
    pub_only = Topic(name="/r/{id}", publish=pub("/p/{uri.var.id}"), subscribe=sub())
    sub_only = Topic(name="/s/{id}", publish=pub(), subscribe=sub("/s/{uri.var.id}"))
    same = Topic(name="/t/{id}", publish=pub("/t/{uri.var.id}"), subscribe=sub("/t/{uri.var.id}"))
    api = make_api(pub_only, sub_only, same, production="ws://b:1")
    assert backend(api, "/chats/1.0/r/1") == "ws://b:1/p/1"
    assert backend(api, "/chats/1.0/s/1") == "ws://b:1/s/1"
    assert backend(api, "/chats/1.0/t/1") == "ws://b:1/t/1"


# --- build-time checks -------------------------------------------------------------------------


def test_duplicate_gateway_paths_name_both_apis() -> None:
    first = make_api(topic("/*"), name="Chat", context="/chats", version="1.0")
    second = make_api(topic("/*"), name="Talk", context="/{version}/1.0", version="chats")
    assert first.gateway_path == second.gateway_path
    with pytest.raises(RelayError) as raised:
        RouteTable.from_apis([first, second])
    message = str(raised.value)
    assert "'Chat' 1.0" in message
    assert "'Talk' chats" in message
    assert "/chats/1.0" in message


@pytest.mark.parametrize(
    ("topics", "words"),
    [
        ((topic("/rooms/{a}"), topic("/rooms/{b}")), "match the same paths"),
        ((topic("/x"), topic("/x/")), "match the same paths"),
        ((topic("/a//b"),), "empty"),
        ((topic("/a/../b"),), "'..'"),
        ((topic("/rooms/room-{id}"),), "whole path segment"),
        ((topic("/{id}/{id}"),), "repeats the parameter"),
        ((topic("/a" * 257),), "more than 256 path segments"),
        ((topic("/r/{id}", "/r/{uri.var.roomId}"),), "uri.var.roomId"),
        ((topic("/feed/*", "/f/{uri.var.x}"),), "no such parameter"),
        ((topic("/r/{id}", "/r/{id}"),), "only {uri.var.NAME}"),
        ((topic("/r/{id}", "/r/{uri.var.id}#x"),), "'#'"),
        ((topic("/r/{id}", "/r/{uri.var.id} x"),), "spaces"),
        (
            (Topic(name="/r/{id}", publish=pub("/a/{uri.var.id}"), subscribe=sub("/b")),),
            "different URL mappings",
        ),
    ],
)
def test_unservable_topics_are_refused_at_build(topics: tuple[Topic, ...], words: str) -> None:
    with pytest.raises(RelayError, match=r"'Chat' 1\.0") as raised:
        RouteTable.from_apis([make_api(*topics)])
    assert words in str(raised.value)


def test_topic_literals_are_decoded_like_requests() -> None:
    table = RouteTable.from_apis([make_api(topic("/chat%20room/{id}"), topic("/café"))])
    assert route(table, "/chats/1.0/chat%20room/1").topic.name == "/chat%20room/{id}"
    assert route(table, "/chats/1.0/caf%C3%A9").topic.name == "/café"
    refused(table, "/chats/1.0/chat%2520room/1")
    with pytest.raises(RelayError, match="malformed escape"):
        RouteTable.from_apis([make_api(topic("/a%zz"))])
    with pytest.raises(RelayError, match=r"'\.\.'"):
        RouteTable.from_apis([make_api(topic("/a/%2E%2e/b"))])
    with pytest.raises(RelayError, match="match the same paths"):
        RouteTable.from_apis([make_api(topic("/a b"), topic("/a%20b"))])


def test_backend_template_shows_the_mapping_unfilled() -> None:
    endpoint = Endpoint(url="ws://b:1/chat/")
    mapped = topic("rooms/{roomId}", "/rooms?room={uri.var.roomId}")
    assert backend_template(endpoint, mapped) == "ws://b:1/chat/rooms?room={uri.var.roomId}"
    assert backend_template(endpoint, topic("/n")) == "ws://b:1/chat/"
    with pytest.raises(RelayError, match="no such parameter"):
        backend_template(endpoint, topic("/n", "/x/{uri.var.id}"))
