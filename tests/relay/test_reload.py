"""The reload verdict on one open connection, judged synchronously: no sockets, no clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import pytest

from asyncapi_gw.model import (
    AuthKind,
    AuthType,
    Endpoint,
    Operation,
    SecurityScheme,
    StreamingAPI,
    Throttling,
    Topic,
    TopicOperation,
)
from asyncapi_gw.relay.auth import ApiKeyInfo, AuthConfig, Authenticator, Principal
from asyncapi_gw.relay.reload import Drop, Keep, ReloadReport, Session, reconcile
from asyncapi_gw.relay.routing import BackendURL, Route, RouteTable, backend_for

KEYS = {
    "reader": ApiKeyInfo(scopes={"read"}),
    "writer": ApiKeyInfo(scopes={"write"}),
    "tester": ApiKeyInfo(scopes={"read"}, environment="sandbox"),
}
AUTH = Authenticator(AuthConfig(api_keys=KEYS))


def op(operation: Operation, *scopes: str, mapping: str | None = None, **fields: Any) -> Any:
    return TopicOperation(operation=operation, scopes=scopes, uri_mapping=mapping, **fields)


def schema(kind: str) -> dict[str, Any]:
    return {"payload": {"type": kind}}


def topics(**changed: Topic | None) -> tuple[Topic, ...]:
    """Ten topics; ``changed`` replaces (or, with ``None``, removes) some by name."""
    out = {
        f"t{n}": Topic(
            name=f"/t{n}",
            publish=op(Operation.PUBLISH, "read"),
            subscribe=op(Operation.SUBSCRIBE, "read"),
        )
        for n in range(10)
    }
    out["rooms"] = Topic(
        name="/rooms/{id}",
        publish=op(Operation.PUBLISH, mapping="/r/{uri.var.id}"),
        subscribe=op(Operation.SUBSCRIBE, mapping="/r/{uri.var.id}"),
    )
    out["all"] = Topic(name="/feed/*", subscribe=op(Operation.SUBSCRIBE))
    for name, topic in changed.items():
        if topic is None:
            out.pop(name)
        else:
            out[name] = topic
    return tuple(out.values())


def make_api(**fields: Any) -> StreamingAPI:
    defaults: dict[str, Any] = {
        "name": "Chat",
        "version": "1.0",
        "context": "/chat",
        "production_endpoint": Endpoint(url="ws://backend:1/prod"),
        "sandbox_endpoint": Endpoint(url="ws://backend:1/sandbox"),
        "topics": topics(),
        "security": (SecurityScheme(name="key", kind=AuthKind.API_KEY),),
    }
    return StreamingAPI(**{**defaults, **fields})


OLD = make_api()


def session(target: str, key: str = "reader", *, api: StreamingAPI = OLD) -> Session:
    """A connection accepted under ``api`` and ``AUTH`` to ``target`` with API key ``key``."""
    route = RouteTable.from_apis([api]).match(target)
    assert isinstance(route, Route)
    principal = AUTH.authenticate(
        api=api, topic=route.topic, headers=[("apikey", key)], query=[], now=0.0
    )
    assert isinstance(principal, Principal)
    built = backend_for(route, principal.environment)
    assert isinstance(built, BackendURL)
    return Session(target=target, route=route, principal=principal, backend_url=built.url)


def judge(
    connection: Session,
    *apis: StreamingAPI,
    auth: Authenticator = AUTH,
    compressed: bool = False,
    validated: Callable[[Route], bool] = lambda _route: False,
) -> Keep | Drop:
    return reconcile(
        connection,
        compressed=compressed,
        table=RouteTable.from_apis(apis),
        authenticator=auth,
        forward_query=True,
        validated=validated,
    )


def kept(verdict: Keep | Drop, *, policy: bool = False) -> Keep:
    assert isinstance(verdict, Keep), verdict
    assert verdict.policy_changed is policy
    return verdict


def closed(verdict: Keep | Drop, code: int = 1012) -> str:
    assert isinstance(verdict, Drop), verdict
    assert verdict.code == code
    return verdict.reason


T0 = session("/chat/1.0/t0")
T5 = session("/chat/1.0/t5")
ROOM = session("/chat/1.0/rooms/lobby?lang=en")
FEED = session("/chat/1.0/feed/sports/live")


# --- what changes nothing for a connection ------------------------------------------------


def test_an_equal_or_merely_described_document_keeps_every_connection() -> None:
    described = attrs.evolve(OLD, description="now described")
    for connection in (T0, T5, ROOM, FEED):
        assert kept(judge(connection, make_api())).route.topic == connection.route.topic
        verdict = kept(judge(connection, described))
        assert verdict.route.api == described  # the connection now belongs to the new API
        assert verdict.principal == connection.principal


def test_changes_to_other_topics_keep_a_connection() -> None:
    new_topic = Topic(name="/t10", publish=op(Operation.PUBLISH))
    scoped = Topic(name="/t0", publish=op(Operation.PUBLISH, "admin"))
    moved = attrs.evolve(topics()[0], publish=op(Operation.PUBLISH, "read", mapping="/x"))
    for change in ({"t10": new_topic}, {"t0": scoped}, {"t0": None}, {"t0": moved}):
        assert kept(judge(T5, make_api(topics=topics(**change))))


def test_another_api_changing_keeps_a_connection() -> None:
    other = make_api(name="Other", context="/other")
    assert kept(judge(T0, OLD, other))


# --- what closes it with 1012 --------------------------------------------------------------


def test_removed_topic_or_api_closes_1012() -> None:
    assert closed(judge(T0, make_api(topics=topics(t0=None)))) == "reload: topic removed"
    assert closed(judge(T0, make_api(version="2.0"))) == "reload: API removed"
    assert closed(judge(T0)) == "reload: API removed"


def test_a_path_now_leading_elsewhere_closes_1012() -> None:
    live = Topic(name="/feed/sports/live", subscribe=op(Operation.SUBSCRIBE))
    reason = closed(judge(FEED, make_api(topics=topics(live=live))))
    assert reason == "reload: the path now leads to topic /feed/sports/live"
    feed_api = make_api(name="Feed", context="/chat/{version}/feed", topics=())
    assert feed_api.gateway_path == "/chat/1.0/feed"  # longer than the connection's API's
    assert closed(judge(FEED, OLD, feed_api)) == "reload: the path now leads to another API"


def test_changed_backend_closes_1012() -> None:
    endpoint = make_api(production_endpoint=Endpoint(url="ws://elsewhere:1/prod"))
    assert closed(judge(T0, endpoint)) == "reload: backend changed"
    assert closed(judge(ROOM, endpoint)) == "reload: backend changed"
    remapped = attrs.evolve(
        topics()[10],
        publish=op(Operation.PUBLISH, mapping="/rooms/{uri.var.id}"),
        subscribe=op(Operation.SUBSCRIBE, mapping="/rooms/{uri.var.id}"),
    )
    assert closed(judge(ROOM, make_api(topics=topics(rooms=remapped)))) == (
        "reload: backend changed"
    )
    tester = session("/chat/1.0/t0", "tester")
    assert kept(judge(tester, endpoint))  # its backend is the sandbox one, unchanged
    no_sandbox = make_api(sandbox_endpoint=None)
    assert closed(judge(tester, no_sandbox)) == "reload: backend removed"


def test_newly_validated_messages_close_a_compressed_connection() -> None:
    def validated(route: Route) -> bool:
        return route.topic.publish is not None and route.topic.publish.message is not None

    typed = attrs.evolve(topics()[0], publish=op(Operation.PUBLISH, "read", message=schema("x")))
    new = make_api(topics=topics(t0=typed))
    reason = closed(judge(T0, new, compressed=True, validated=validated))
    assert reason == "reload: messages are now validated"
    assert kept(judge(T0, new, validated=validated), policy=True)


# --- auth: what closes it with 4001 and what keeps it ---------------------------------------


def test_revoked_key_closes_4001_and_a_kept_key_takes_its_new_grant() -> None:
    revoked = Authenticator(AuthConfig(api_keys={"writer": KEYS["writer"]}))
    assert closed(judge(T0, OLD, auth=revoked), 4001) == "reload: API key revoked"
    narrowed = Authenticator(AuthConfig(api_keys={"reader": ApiKeyInfo(scopes={"write"})}))
    reason = closed(judge(T0, OLD, auth=narrowed), 4001)
    assert reason == "reload: insufficient scope: needs one of read"
    widened = Authenticator(AuthConfig(api_keys={"reader": ApiKeyInfo(scopes={"read", "x"})}))
    assert kept(judge(T0, OLD, auth=widened)).principal.scopes == {"read", "x"}
    to_sandbox = Authenticator(
        AuthConfig(api_keys={"reader": ApiKeyInfo(scopes={"read"}, environment="sandbox")})
    )
    assert closed(judge(T0, OLD, auth=to_sandbox)) == "reload: backend changed"


def test_a_topic_whose_auth_changed_keeps_the_principals_it_still_admits() -> None:
    def scoped(*scopes: str) -> StreamingAPI:
        topic = attrs.evolve(
            topics()[0],
            publish=op(Operation.PUBLISH, *scopes),
            subscribe=op(Operation.SUBSCRIBE, *scopes),
        )
        return make_api(topics=topics(t0=topic))

    either, write_only = scoped("read", "write"), scoped("write")
    reader = session("/chat/1.0/t0", "reader", api=either)
    writer = session("/chat/1.0/t0", "writer", api=either)
    reason = closed(judge(reader, write_only), 4001)
    assert reason == "reload: insufficient scope: needs one of write"
    assert kept(judge(writer, write_only))
    opened = make_api(topics=topics(t0=attrs.evolve(topics()[0], auth_type=AuthType.NONE)))
    assert kept(judge(T0, opened)).principal == Principal(kind=None)
    anonymous = session("/chat/1.0/t0", api=opened)
    assert closed(judge(anonymous, OLD), 4001) == "reload: authentication is now required"
    tokens_only = make_api(security=(SecurityScheme(name="o", kind=AuthKind.OAUTH2),))
    assert closed(judge(T0, tokens_only), 4001) == "reload: this API no longer accepts API keys"


# --- message-level policy: kept, with the change ------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"publish": None},  # a direction removed
        {"subscribe": None},
        {"publish": op(Operation.PUBLISH, "read", message=schema("string"))},  # a payload schema
    ],
)
def test_a_changed_message_policy_keeps_the_connection_and_says_so(change: Any) -> None:
    new = make_api(topics=topics(t0=attrs.evolve(topics()[0], **change)))
    verdict = kept(judge(T0, new), policy=True)
    assert not verdict.quota_changed
    assert verdict.route.topic == new.topics[0]
    assert kept(judge(T5, new))  # the other topics' connections see no change


def test_a_changed_message_description_is_no_policy_change() -> None:
    described = op(Operation.PUBLISH, "read", message={**schema("string"), "summary": "x"})
    same = op(Operation.PUBLISH, "read", message={**schema("string"), "summary": "y"})
    before = session(
        "/chat/1.0/t0", api=make_api(topics=topics(t0=attrs.evolve(topics()[0], publish=described)))
    )
    after = make_api(topics=topics(t0=attrs.evolve(topics()[0], publish=same)))
    assert kept(judge(before, after))


def test_changed_throttling_is_a_policy_and_quota_change() -> None:
    throttled = make_api(throttling=Throttling(events=5))
    verdict = kept(judge(T0, throttled), policy=True)
    assert verdict.quota_changed


def test_the_report_tallies_the_verdicts() -> None:
    kept_verdict = Keep(route=T0.route, principal=T0.principal)
    changed = attrs.evolve(kept_verdict, policy_changed=True)
    gone = Drop(code=1012, reason="reload: topic removed")
    report = ReloadReport.tally([kept_verdict, changed, gone, gone, changed])
    assert report == ReloadReport(kept=3, updated=2, closed={(1012, "reload: topic removed"): 2})
    assert ReloadReport.tally([]) == ReloadReport()


def test_the_report_says_what_closed_and_why() -> None:
    report = ReloadReport(
        kept=900, updated=3, closed={(1012, "reload: topic removed"): 100, (4001, "reload: x"): 1}
    )
    assert report.describe() == (
        "900 connections kept (3 with a new message policy), 101 closed: "
        "100 with 1012 reload: topic removed; 1 with 4001 reload: x"
    )
    assert ReloadReport(kept=1).describe() == "1 connection kept"
