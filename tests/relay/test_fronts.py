"""One behaviour table, run through every front: the relay's own listener, and the ASGI app
under real uvicorn (three WebSocket implementations) and hypercorn servers, alone or mounted
in FastAPI and Starlette. Real websockets backends and clients over loopback sockets.

Each case states what a client and a backend observe; every front must give the same answer,
except where a server cannot (marked, and stated in docs/relay.md).
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Awaitable, Callable

import attrs
import pytest
from fronts import FRONTS, Served, front
from jwt_tokens import hs256
from relay_harness import SUB, UPGRADE, api, backend, closed_code, http_get, run, topic
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import InvalidStatus

from asyncapi_gw.model import (
    AuthKind,
    Operation,
    SecurityScheme,
    StreamingAPI,
    Throttling,
    ThrottlingUnit,
    Topic,
    TopicOperation,
)
from asyncapi_gw.relay import ApiKeyInfo, AuthConfig

Case = Callable[[str], Awaitable[None]]
CASES: dict[str, Case] = {}


def case(function: Case) -> Case:
    CASES[function.__name__] = function
    return function


def client(served: Served, path: str, **options: object) -> connect:
    options.setdefault("open_timeout", 5)
    return connect(served.url(path), **options)  # type: ignore[arg-type]


async def refusal(served: Served, path: str, **options: object) -> tuple[int, str, dict[str, str]]:
    """The HTTP status, body and headers of a refused upgrade."""
    with pytest.raises(InvalidStatus) as caught:
        async with client(served, path, **options):
            pass
    response = caught.value.response
    return response.status_code, bytes(response.body).decode(), dict(response.headers.raw_items())


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in 2 s")


def passed_on(kind: str, code: int | None) -> int:
    """The close code a backend gets when the client closes with ``code`` (``None``: the client
    is lost), by what each server tells an ASGI app: hypercorn says 1006 (lost) for any close a
    client starts; uvicorn's websockets-sansio and wsproto say 1005 (no code) for a lost client.
    The relay sends 1001 for a lost client and 1000 for a close without a code."""
    if kind.startswith("hypercorn"):
        return 1001
    if code is None:
        return 1000 if kind.startswith(("uvicorn-sansio", "uvicorn-wsproto")) else 1001
    return code


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the table ------------------------------------------------------------------------------


@case
async def relays_both_ways_and_closes_normally(kind: str) -> None:
    async with backend() as b, front(kind, [api(b.url)]) as served:
        async with client(served, "/chat/1.0/rooms/1?x=1") as ws:
            await ws.send("text")
            assert await ws.recv() == "text"
            await ws.send(b"\x00\x01")
            assert await ws.recv() == b"\x00\x01"
        await until(lambda: bool(b.closes))
        assert b.closes == [passed_on(kind, 1000)]
        assert b.paths == ["/?x=1"]
        await until(lambda: served.relay.stats.connections_open == 0)
        stats = served.relay.stats
        assert (stats.messages_in, stats.messages_out) == (2, 2)
        assert stats.bytes_in >= 6


@case
async def close_codes_and_reasons_pass_both_ways(kind: str) -> None:
    async def closes(ws: ServerConnection) -> None:
        async for message in ws:
            if message == "close please":
                await ws.close(4322, "backend says bye")

    async with backend(closes) as b, front(kind, [api(b.url)]) as served:
        async with client(served, "/chat/1.0/x") as ws:
            await ws.send("close please")
            assert await closed_code(ws) == (4322, "backend says bye")
        async with client(served, "/chat/1.0/x") as ws:
            await ws.close(4321, "client says bye")
        await until(lambda: len(b.closes) == 2)
        assert b.closes[1] == passed_on(kind, 4321)
        if passed_on(kind, 4321) == 4321:
            assert b.connections[1].close_reason == "client says bye"


@case
async def unknown_paths_are_404_before_the_upgrade(kind: str) -> None:
    async with front(kind, [api("ws://127.0.0.1:9")]) as served:
        status, body, _ = await refusal(served, "/nowhere/1.0/x")
        assert (status, body) == (404, "No API is served at /nowhere/1.0/x.\n")
        assert (await refusal(served, "/chat/2.0/x"))[0] == 404


def _keyed_api(url: str) -> StreamingAPI:
    scoped = TopicOperation(operation=Operation.PUBLISH, scopes=("admin",))
    return api(
        url,
        topics=(topic("/open"), Topic(name="/admin", publish=scoped, subscribe=SUB)),
        security=(SecurityScheme(name="key", kind=AuthKind.API_KEY),),
    )


def _mapped_api(url: str) -> StreamingAPI:
    mapping = "/rooms/{uri.var.roomId}"
    rooms = Topic(
        name="/rooms/{roomId}",
        publish=TopicOperation(operation=Operation.PUBLISH, uri_mapping=mapping),
        subscribe=TopicOperation(operation=Operation.SUBSCRIBE, uri_mapping=mapping),
    )
    return api(url, topics=(rooms,))


@case
async def path_tricks_neither_escape_routing_nor_reach_another_backend_path(kind: str) -> None:
    async with backend() as b, front(kind, [_mapped_api(b.url)]) as served:
        refused = [
            "/chat/1.0//rooms/a",
            "/chat/1.0/rooms/..",
            "/chat/1.0/rooms/%2e%2e",
            "/chat/1.0/rooms/%2E%2e/admin",
            "/chat/1.0/../admin/rooms/a",
            "/chat/1.0/rooms/a/../../b",
            "/chat/1.0/rooms/%00",
            "/chat/1.0/rooms/a%0d%0aX-Evil:%201",
        ]
        # an encoded separator in a parameter: refused unless the API allows it
        refused += ["/chat/1.0/rooms/a%2Fb%3Fc%23d", "/chat/1.0/rooms/%2e%2e%2fadmin"]
        for target in refused:
            status, _, _ = await http_get(served.port, served.path(target), UPGRADE)
            # Starlette's router (FastAPI's too) finds no mount for a path holding a line
            # break: its own refusal, 403, before the relay sees it
            assert status == (403 if served.base and "%0d%0a" in target else 400), target
        async with client(served, "/chat/1.0/rooms/a%3Fc%23d%25") as ws:
            await ws.send("x")
            await ws.recv()
        served.relay.reload([attrs.evolve(_mapped_api(b.url), allow_encoded_slashes=True)])
        async with client(served, "/chat/1.0/rooms/%2e%2e%2fadmin"):
            pass
        assert b.paths == ["/rooms/a%3Fc%23d%25", "/rooms/..%2Fadmin"]
        # a raw CR in the request target never reaches the backend
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        target = served.path("/chat/1.0/rooms/a\rX")
        writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\n{UPGRADE}\r\n".encode())
        assert (await asyncio.wait_for(reader.read(), 5)).startswith(b"HTTP/1.1 400")
        writer.close()
        assert len(b.paths) == 2


@case
async def api_keys_in_header_or_query_401_403_never_forwarded(kind: str) -> None:
    auth = AuthConfig(api_keys={"k-123": ApiKeyInfo()})
    async with backend() as b, front(kind, [_keyed_api(b.url)], auth=auth) as served:
        assert (await refusal(served, "/chat/1.0/open"))[0] == 401
        assert (await refusal(served, "/chat/1.0/open?apikey=wrong"))[0] == 401
        assert (await refusal(served, "/chat/1.0/admin?apikey=k-123"))[0] == 403
        async with client(served, "/chat/1.0/open?apikey=k-123&room=7") as ws:
            await ws.send("in")
            assert await ws.recv() == "in"
        async with client(served, "/chat/1.0/open", additional_headers={"apikey": "k-123"}):
            pass
        assert b.paths == ["/?room=7", "/"]
        assert all("apikey" not in {k.lower() for k in h} for h in b.headers)
        assert served.relay.stats.rejections == {401: 2, 403: 1}


@case
async def bearer_refusals_carry_www_authenticate(kind: str) -> None:
    auth = AuthConfig(jwt_secret="s" * 32)
    secured = api("ws://127.0.0.1:9", security=(SecurityScheme(name="o", kind=AuthKind.OAUTH2),))
    async with front(kind, [secured], auth=auth) as served:
        status, _, headers = await refusal(served, "/chat/1.0/x")
        assert status == 401
        assert headers["WWW-Authenticate"].startswith("Bearer")


@case
async def token_expiring_mid_connection_closes_4001(kind: str) -> None:
    secret = "s" * 32
    auth = AuthConfig(jwt_secret=secret, leeway=0)
    async with backend() as b:
        secured = api(b.url, security=(SecurityScheme(name="oauth", kind=AuthKind.OAUTH2),))
        async with front(kind, [secured], auth=auth) as served:
            token = hs256(secret, {"sub": "me", "exp": time.time() + 0.5})
            headers = {"Authorization": f"Bearer {token}"}
            async with client(served, "/chat/1.0/x", additional_headers=headers) as ws:
                await ws.send("ok")
                assert await ws.recv() == "ok"
                assert await closed_code(ws) == (4001, "token expired")
            assert b.headers[0].get("Authorization") is None


@case
async def unreachable_backend_is_502(kind: str) -> None:
    async with front(kind, [api(f"ws://127.0.0.1:{_free_port()}")]) as served:
        assert (await refusal(served, "/chat/1.0/x"))[0] == 502
        assert served.relay.stats.rejections == {502: 1}


@case
async def backend_refusing_the_upgrade_is_502(kind: str) -> None:
    async def http_only(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    refusing = await asyncio.start_server(http_only, "127.0.0.1", 0)
    url = f"ws://127.0.0.1:{refusing.sockets[0].getsockname()[1]}"
    async with refusing, front(kind, [api(url)]) as served:
        status, body, _ = await refusal(served, "/chat/1.0/x")
        assert status == 502
        assert "403" in body


@case
async def backend_hanging_in_its_handshake_is_504(kind: str) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    hanging = await asyncio.start_server(silent, "127.0.0.1", 0)
    url = f"ws://127.0.0.1:{hanging.sockets[0].getsockname()[1]}"
    async with hanging, front(kind, [api(url)], open_timeout=0.3) as served:
        assert (await refusal(served, "/chat/1.0/x"))[0] == 504


@case
async def max_connections_is_503(kind: str) -> None:
    async with backend() as b, front(kind, [api(b.url)], max_connections=1) as served:
        async with client(served, "/chat/1.0/x") as ws:
            assert (await refusal(served, "/chat/1.0/x"))[0] == 503
            await ws.send("still here")
            assert await ws.recv() == "still here"
        await asyncio.sleep(0.1)
        async with client(served, "/chat/1.0/x") as ws:
            await ws.send("slot free again")
            assert await ws.recv() == "slot free again"


@case
async def backend_chooses_the_subprotocol(kind: str) -> None:
    def pick(_conn: ServerConnection, offered: list[str]) -> str | None:
        return "v2.chat" if "v2.chat" in offered else None

    async with backend(select_subprotocol=pick) as b, front(kind, [api(b.url)]) as served:
        async with client(served, "/chat/1.0/x", subprotocols=["v1.chat", "v2.chat"]) as ws:
            assert ws.subprotocol == "v2.chat"
        assert b.headers[0]["Sec-WebSocket-Protocol"] == "v1.chat, v2.chat"
        async with client(served, "/chat/1.0/x", subprotocols=["v1.chat"]) as ws:
            assert ws.subprotocol is None


@case
async def backend_lost_closes_the_client_1014(kind: str) -> None:
    async def dies(ws: ServerConnection) -> None:
        await ws.recv()
        ws.transport.abort()

    async with backend(dies) as b, front(kind, [api(b.url)]) as served:
        async with client(served, "/chat/1.0/x") as ws:
            await ws.send("bye")
            assert await closed_code(ws) == (1014, "backend connection lost")
        await until(lambda: served.relay.stats.connections_open == 0)
        assert served.relay.stats.close_codes == {1014: 1}


@case
async def client_lost_closes_the_backend_1001(kind: str) -> None:
    async with backend() as b, front(kind, [api(b.url)]) as served:
        async with client(served, "/chat/1.0/x") as ws:
            await ws.send("x")
            await ws.recv()
            ws.transport.abort()
        await until(lambda: bool(b.closes))
        assert b.closes == [passed_on(kind, None)]
        await until(lambda: served.relay.stats.connections_open == 0)


@case
async def message_over_the_size_limit_closes_1009(kind: str) -> None:
    async with backend() as b, front(kind, [api(b.url)], max_message_size=100) as served:
        async with client(served, "/chat/1.0/x", compression=None) as ws:
            await ws.send("a" * 100)
            assert await ws.recv() == "a" * 100
            await ws.send("a" * 101)
            assert (await closed_code(ws))[0] == 1009
        await until(lambda: bool(b.closes))
        assert b.closes == [1001]


@case
async def wrong_direction_closes_1008_or_is_dropped(kind: str) -> None:
    async with backend() as b:
        sub_only = (topic("/*", pub=False),)
        async with (
            front(kind, [api(b.url, topics=sub_only)]) as served,
            client(served, "/chat/1.0/x") as ws,
        ):
            await ws.send("not allowed")
            assert (await closed_code(ws))[0] == 1008
        pub_only = (topic("/*", sub=False),)
        async with (
            front(kind, [api(b.url, topics=pub_only)], on_wrong_direction="drop") as served,
            client(served, "/chat/1.0/x") as ws,
        ):
            await ws.send("one")  # relayed, and its echo dropped
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.3)
            stats = served.relay.stats
            assert (stats.messages_in, stats.messages_out) == (1, 1)
        async with (
            front(kind, [api(b.url, topics=pub_only)]) as served,
            client(served, "/chat/1.0/x") as ws,
        ):
            await ws.send("echoed back against the topic")  # the backend is at fault
            assert await closed_code(ws) == (
                1014,
                "bad gateway: backend policy violation: topic does not allow subscribe",
            )


@case
async def event_quota_answers_4003_text_or_closes(kind: str) -> None:
    async with backend() as b:
        quota_api = api(b.url, throttling=Throttling(events=2, unit=ThrottlingUnit.MINUTE))
        async with front(kind, [quota_api]) as served:
            async with client(served, "/chat/1.0/x") as ws:
                for n in range(2):
                    await ws.send(f"m{n}")
                    assert await ws.recv() == f"m{n}"
                await ws.send("m2")
                assert await ws.recv() == "Error code: 4003 reason: Websocket frame throttled out"
            async with client(served, "/chat/1.0/x") as ws:  # the API's quota is shared
                await ws.send("again")
                assert "4003" in await ws.recv()
        async with (
            front(kind, [quota_api], on_throttle="close") as served,
            client(served, "/chat/1.0/x") as ws,
        ):
            for n in range(3):
                await ws.send(f"m{n}")
            assert (await closed_code(ws))[0] == 4003


def _validated_api(url: str) -> StreamingAPI:
    schema = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}
    publish = TopicOperation(operation=Operation.PUBLISH, message={"payload": schema})
    return api(url, topics=(Topic(name="/*", publish=publish, subscribe=SUB),))


@case
async def message_validation_closes_1007_or_drops(kind: str) -> None:
    async with backend() as b:
        async with (
            front(kind, [_validated_api(b.url)], validate_messages=True) as served,
            client(served, "/chat/1.0/x") as ws,
        ):
            await ws.send('{"n": 1}')
            assert await ws.recv() == '{"n": 1}'
            await ws.send('{"n": "one"}')
            assert (await closed_code(ws))[0] == 1007
        async with (
            front(
                kind, [_validated_api(b.url)], validate_messages=True, on_invalid="drop"
            ) as served,
            client(served, "/chat/1.0/x") as ws,
        ):
            await ws.send("not json")
            await ws.send('{"n": 2}')
            assert await ws.recv() == '{"n": 2}'


@case
async def idle_connections_close_1001(kind: str) -> None:
    async with (
        backend() as b,
        front(kind, [api(b.url)], idle_timeout=0.3, ping_interval=None) as served,
        client(served, "/chat/1.0/x") as ws,
    ):
        assert (await closed_code(ws))[0] == 1001


@case
async def a_backend_silent_past_the_ping_timeout_closes_the_client_1011(kind: str) -> None:
    heard = asyncio.Event()

    async def deaf(ws: ServerConnection) -> None:
        ws.transport.pause_reading()  # pings go unanswered
        await heard.wait()
        ws.transport.resume_reading()  # and it learns the relay hung up

    options = {"ping_interval": 0.1, "ping_timeout": 0.3, "close_timeout": 0.3}
    async with backend(deaf) as b, front(kind, [api(b.url)], **options) as served:
        async with client(served, "/chat/1.0/x") as ws:
            assert (await closed_code(ws))[0] == 1011
        heard.set()


@case
async def principal_and_allowed_headers_reach_the_backend(kind: str) -> None:
    auth = AuthConfig(api_keys={"k-1": ApiKeyInfo(name="alice")})
    options = {"auth": auth, "principal_header": "X-Who", "forward_headers": ["X-Trace"]}
    forged = {"X-Who": "root", "X-Trace": "t-1", "X-Other": "no", "apikey": "k-1"}
    async with (
        backend() as b,
        front(kind, [_keyed_api(b.url)], **options) as served,
        client(served, "/chat/1.0/open", additional_headers=forged),
    ):
        pass
    seen = {name.lower(): value for name, value in b.headers[0].items()}  # any case
    assert json.loads(seen["x-who"])["principal"] == "alice"
    assert seen["x-trace"] == "t-1"
    assert "x-other" not in seen
    assert "apikey" not in seen
    assert seen["x-forwarded-for"] == "127.0.0.1"


@case
async def shutdown_closes_relayed_connections_1001(kind: str) -> None:
    async with backend() as b, front(kind, [api(b.url)]) as served:
        async with client(served, "/chat/1.0/x") as ws:
            await ws.send("x")
            await ws.recv()
            await served.shutdown()
            assert await closed_code(ws) == (1001, "relay shutting down")
            assert served.relay.stats.connections_open == 0
        await until(lambda: bool(b.closes))
        assert b.closes == [1001]


@case
async def reload_closes_changed_apis_1012_and_keeps_the_rest(kind: str) -> None:
    async with backend() as b:
        chat, feed = api(b.url), api(b.url, name="Feed", context="/feed")
        async with (
            front(kind, [chat, feed]) as served,
            client(served, "/chat/1.0/x") as kept,
            client(served, "/feed/1.0/x") as changed,
        ):
            new_feed = api(b.url, name="Feed", context="/feed", version="2.0")
            report = served.relay.reload([chat, new_feed])
            assert report.kept == 1
            assert (await closed_code(changed))[0] == 1012
            await kept.send("still relayed")
            assert await kept.recv() == "still relayed"
            assert (await refusal(served, "/feed/1.0/x"))[0] == 404
            async with client(served, "/feed/2.0/x") as ws:
                await ws.send("v2")
                assert await ws.recv() == "v2"


@case
async def the_backend_of_a_connection_the_relay_closes_gets_1001(kind: str) -> None:
    """A reload (1012 to the client) or the credential's expiry (4001) is the client's news:
    the backend is told the relay is closing, 1001, as connection.py states."""
    secret = "s" * 32
    auth = AuthConfig(jwt_secret=secret, leeway=0)
    async with backend() as b:
        secured = api(b.url, security=(SecurityScheme(name="oauth", kind=AuthKind.OAUTH2),))
        async with front(kind, [secured], auth=auth) as served:
            token = hs256(secret, {"sub": "me", "exp": time.time() + 60})
            headers = {"Authorization": f"Bearer {token}"}
            async with client(served, "/chat/1.0/x", additional_headers=headers) as ws:
                await ws.send("ok")
                assert await ws.recv() == "ok"
                served.relay.reload([api(b.url + "/moved", security=secured.security)])
                assert (await closed_code(ws))[0] == 1012
            await until(lambda: bool(b.closes))
            assert b.closes == [1001]


@case
async def a_revoked_key_closes_its_connections_4001(kind: str) -> None:
    keyed = AuthConfig(api_keys={"k-1": ApiKeyInfo(), "k-2": ApiKeyInfo()})
    async with (
        backend() as b,
        front(kind, [_keyed_api(b.url)], auth=keyed) as served,
        client(served, "/chat/1.0/open?apikey=k-1") as revoked,
        client(served, "/chat/1.0/open?apikey=k-2") as kept,
    ):
        served.relay.reload(auth=AuthConfig(api_keys={"k-2": ApiKeyInfo()}))
        assert (await closed_code(revoked))[0] == 4001
        await kept.send("k-2 still holds")
        assert await kept.recv() == "k-2 still holds"
        assert (await refusal(served, "/chat/1.0/open?apikey=k-1"))[0] == 401


@case
async def refusals_and_close_codes_are_counted(kind: str) -> None:
    async with backend() as b, front(kind, [api(b.url)]) as served:
        assert (await refusal(served, "/nowhere"))[0] == 404
        async with client(served, "/chat/1.0/x") as ws:
            await ws.close(4100, "done")
        await until(lambda: served.relay.stats.connections_open == 0)
        stats = served.relay.stats
        assert stats.rejections == {404: 1}
        assert stats.connections_total == 1
        # hypercorn reports every close a client starts as 1006
        assert stats.close_codes == {1006 if kind.startswith("hypercorn") else 4100: 1}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("kind", FRONTS)
def test_front(kind: str, name: str) -> None:
    run(CASES[name](kind), timeout=20)
