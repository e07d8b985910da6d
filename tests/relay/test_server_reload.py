"""Reloads of a running relay over real loopback sockets: which connections a new document or
new credentials close, with which code, and what the others now follow."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from pathlib import Path
from typing import Any

import attrs
import pytest
from jwt_tokens import hs256
from relay_harness import (
    UPGRADE,
    api,
    backend,
    client,
    closed_code,
    http_get,
    run,
    topic,
)
from tls_certificates import self_signed
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import InvalidStatus
from websockets.http11 import Request

from asyncapi_gw.errors import RelayError
from asyncapi_gw.model import (
    AuthKind,
    AuthType,
    Operation,
    SecurityScheme,
    Throttling,
    Topic,
    TopicOperation,
)
from asyncapi_gw.relay import ApiKeyInfo, AuthConfig, Relay
from asyncapi_gw.relay.quota import THROTTLED_MESSAGE

KEYED = (SecurityScheme(name="key", kind=AuthKind.API_KEY),)
BEARER = (SecurityScheme(name="oauth", kind=AuthKind.OAUTH2),)


async def echoes(ws: ClientConnection, text: str = "ping") -> bool:
    await ws.send(text)
    return await asyncio.wait_for(ws.recv(), 5) == text


async def refused_status(port: int, path: str) -> int:
    with pytest.raises(InvalidStatus) as caught:
        async with client(port, path):
            pass
    return caught.value.response.status_code


def test_a_reload_closes_exactly_the_connections_of_changed_topics(tmp_path: Path) -> None:
    """A removed topic and a topic whose backend URL changed close their connections with 1012
    and the access log says why; a described API, an added topic and unchanged topics keep
    theirs, which go on relaying both ways."""
    log = tmp_path / "access.log"

    async def main() -> None:
        async with backend() as b:
            names = ("/t0", "/t1", "/t2", "/t3")
            before = api(b.url, topics=tuple(topic(n) for n in names))
            after = attrs.evolve(
                before,
                description="described now",
                topics=(
                    topic("/t0"),
                    topic("/t2"),
                    Topic(
                        name="/t3",
                        publish=TopicOperation(operation=Operation.PUBLISH, uri_mapping="/v2"),
                        subscribe=TopicOperation(operation=Operation.SUBSCRIBE, uri_mapping="/v2"),
                    ),
                    topic("/t9"),
                ),
            )
            async with Relay([before], ws_port=0, access_log=str(log)) as relay:
                port = relay.ports["ws"]
                clients = {
                    n: [await client(port, f"/chat/1.0{n}") for _ in range(3)] for n in names
                }
                for ws in (ws for group in clients.values() for ws in group):
                    assert await echoes(ws)
                report = relay.reload([after])
                assert report.kept == 6
                assert report.closed == {
                    (1012, "reload: topic removed"): 3,
                    (1012, "reload: backend changed"): 3,
                }
                for ws in clients["/t1"]:
                    assert await closed_code(ws) == (1012, "reload: topic removed")
                for ws in clients["/t3"]:
                    assert await closed_code(ws) == (1012, "reload: backend changed")
                for ws in clients["/t0"] + clients["/t2"]:
                    assert await echoes(ws, "still relayed")
                    await ws.close()
                async with client(port, "/chat/1.0/t9") as ws:
                    assert await echoes(ws)
                assert (await http_get(port, "/chat/1.0/t1", UPGRADE))[0] == 404
        entries = [json.loads(line) for line in log.read_text().splitlines()]
        reasons = sorted(
            (e["topic"], e["close_code"], e["close_reason"], e["closed_by"])
            for e in entries
            if e.get("close_code") == 1012
        )
        assert reasons == sorted(
            [("/t1", 1012, "reload: topic removed", "relay")] * 3
            + [("/t3", 1012, "reload: backend changed", "relay")] * 3
        )

    run(main())


def test_a_direction_removed_by_a_reload_applies_to_the_open_connection() -> None:
    async def main() -> None:
        async with backend() as b:
            both = api(b.url, topics=(topic("/t0"),))
            subscribe_only = api(b.url, topics=(topic("/t0", pub=False),))
            async with (
                Relay([both], ws_port=0) as relay,
                client(relay.ports["ws"], "/chat/1.0/t0") as ws,
            ):
                assert await echoes(ws)
                report = relay.reload([subscribe_only])
                assert (report.kept, report.updated) == (1, 1)
                await ws.send("no longer allowed")
                assert await closed_code(ws) == (1008, "topic does not allow publish")

    run(main())


def test_throttling_added_by_a_reload_applies_to_the_open_connection() -> None:
    async def main() -> None:
        async with backend() as b:
            free = api(b.url)
            throttled = attrs.evolve(free, throttling=Throttling(events=1))
            async with (
                Relay([free], ws_port=0) as relay,
                # uncompressed: see the next test for a client that compresses
                client(relay.ports["ws"], "/chat/1.0/x", compression=None) as ws,
            ):
                for _ in range(3):
                    assert await echoes(ws)
                relay.reload([throttled])
                assert await echoes(ws, "the quota's one")
                await ws.send("one too many")
                assert await ws.recv() == THROTTLED_MESSAGE
                relay.reload([throttled])  # unchanged throttling: the quota keeps its count
                await ws.send("still too many")
                assert await ws.recv() == THROTTLED_MESSAGE

    run(main())


def test_throttling_added_by_a_reload_closes_a_compressing_client_instead_of_dropping() -> None:
    """A client that compresses with context takeover (it connected to an unthrottled API)
    would have its next message inflate to garbage at the backend after a dropped one: the
    message over the quota closes it (4003) instead."""

    async def main() -> None:
        async with backend() as b:
            free = api(b.url)
            throttled = attrs.evolve(free, throttling=Throttling(events=1))
            async with (
                Relay([free], ws_port=0) as relay,
                client(relay.ports["ws"], "/chat/1.0/x") as ws,
            ):
                (extension,) = ws.protocol.extensions
                assert not extension.local_no_context_takeover  # type: ignore[attr-defined]
                relay.reload([throttled])
                assert await echoes(ws, "the quota's one")
                await ws.send("one too many")
                assert await closed_code(ws) == (4003, "Websocket frame throttled out")

    run(main())


def test_a_revoked_api_key_closes_its_connections_4001_and_is_refused_from_then_on() -> None:
    async def main() -> None:
        keys = {"alice-key": ApiKeyInfo(), "bob-key": ApiKeyInfo()}
        async with backend() as b:
            opened = topic("/open", auth_type=AuthType.NONE)
            keyed = api(b.url, security=KEYED, topics=(topic("/x"), opened))
            async with Relay([keyed], ws_port=0, auth=AuthConfig(api_keys=keys)) as relay:
                port = relay.ports["ws"]
                alice = [await client(port, "/chat/1.0/x?apikey=alice-key") for _ in range(2)]
                bob = await client(port, "/chat/1.0/x", additional_headers={"apikey": "bob-key"})
                anyone = await client(port, "/chat/1.0/open")
                report = relay.reload(auth=AuthConfig(api_keys={"bob-key": ApiKeyInfo()}))
                assert report.closed == {(4001, "reload: API key revoked"): 2}
                assert report.kept == 2
                for ws in alice:
                    assert await closed_code(ws) == (4001, "reload: API key revoked")
                assert await echoes(bob)
                assert await echoes(anyone)
                await anyone.close()
                assert await refused_status(port, "/chat/1.0/x?apikey=alice-key") == 401
                async with client(port, "/chat/1.0/x?apikey=bob-key") as again:
                    assert await echoes(again)
                await bob.close()

    run(main())


def test_a_rotated_jwt_secret_closes_its_tokens_connections_4001() -> None:
    old, new = "o" * 32, "n" * 32

    async def main() -> None:
        async with (
            backend() as b,
            Relay(
                [api(b.url, security=BEARER)], ws_port=0, auth=AuthConfig(jwt_secret=old)
            ) as relay,
        ):
            port = relay.ports["ws"]
            old_token = hs256(old, {"sub": "alice"})
            ws = await client(port, f"/chat/1.0/x?access_token={old_token}")
            assert await echoes(ws)
            relay.reload(auth=AuthConfig(jwt_secret=new))
            reason = "reload: the token's signing key is no longer accepted"
            assert await closed_code(ws) == (4001, reason)
            assert await refused_status(port, f"/chat/1.0/x?access_token={old_token}") == 401
            new_token = hs256(new, {"sub": "alice"})
            async with client(port, f"/chat/1.0/x?access_token={new_token}") as fresh:
                assert await echoes(fresh)

    run(main())


def test_a_handshake_a_reload_overtakes_is_judged_before_it_is_accepted() -> None:
    """The backend is dialled under the old credentials and documents; the reload lands
    before its 101: a revoked key gets 401, a removed topic 503, a kept one goes through."""

    async def main() -> None:
        dialled, release = asyncio.Event(), asyncio.Event()

        async def slow(_connection: ServerConnection, _request: Request) -> None:
            dialled.set()
            await release.wait()

        keys = {"alice-key": ApiKeyInfo(), "bob-key": ApiKeyInfo()}
        async with backend(process_request=slow) as b:
            keyed = api(b.url, security=KEYED, topics=(topic("/x"), topic("/y")))
            async with Relay([keyed], ws_port=0, auth=AuthConfig(api_keys=keys)) as relay:
                port = relay.ports["ws"]

                async def reload_while_dialled(path: str, **changes: Any) -> Any:
                    """Open ``path``; once the backend has the relay's request, reload with
                    ``changes``, then let the backend answer: the client connection, or the
                    HTTP status the relay refused it with."""
                    dialled.clear()
                    release.clear()

                    async def opening() -> ClientConnection | int:
                        try:
                            return await client(port, path)
                        except InvalidStatus as exc:
                            return exc.response.status_code

                    task = asyncio.create_task(opening())
                    await dialled.wait()
                    relay.reload(**changes)
                    release.set()
                    return await task

                only_bob = AuthConfig(api_keys={"bob-key": ApiKeyInfo()})
                alice = "/chat/1.0/x?apikey=alice-key"
                assert await reload_while_dialled(alice, auth=only_bob) == 401
                without_y = [keyed.with_topics([keyed.topics[0]])]
                assert (
                    await reload_while_dialled("/chat/1.0/y?apikey=bob-key", apis=without_y) == 503
                )
                ws = await reload_while_dialled("/chat/1.0/x?apikey=bob-key", apis=[keyed])
                assert await echoes(ws)
                await ws.close()
                assert relay.stats.rejections == {401: 1, 503: 1}

    run(main())


def test_an_invalid_reload_changes_nothing() -> None:
    async def main() -> None:
        keys = {"alice-key": ApiKeyInfo()}
        async with backend() as b:
            keyed = api(b.url, security=KEYED)
            async with Relay([keyed], ws_port=0, auth=AuthConfig(api_keys=keys)) as relay:
                port = relay.ports["ws"]
                async with client(port, "/chat/1.0/x?apikey=alice-key") as ws:
                    with pytest.raises(RelayError, match="both use the gateway path"):
                        relay.reload([keyed, attrs.evolve(keyed, name="Twin")])
                    with pytest.raises(RelayError, match="at least 32 bytes"):
                        relay.reload([], auth=AuthConfig(jwt_secret="short"))
                    assert relay.apis == (keyed,)
                    assert relay.config.auth == AuthConfig(api_keys=keys)
                    assert await echoes(ws)
                async with client(port, "/chat/1.0/x?apikey=alice-key") as ws:
                    assert await echoes(ws)

    run(main())


def _certificate(ws: ClientConnection) -> bytes:
    der = ws.transport.get_extra_info("ssl_object").getpeercert(binary_form=True)
    assert isinstance(der, bytes)
    return der


def test_a_reloaded_certificate_serves_new_wss_connections(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    cert, key = self_signed(first)
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE

    async def main() -> None:
        async with (
            backend() as b,
            Relay([api(b.url)], ws_port=0, wss_port=0, tls_cert=cert, tls_key=key) as relay,
        ):
            uri = f"wss://127.0.0.1:{relay.ports['wss']}/chat/1.0/x"
            async with connect(uri, ssl=context) as before:
                original = _certificate(before)
                new_cert, new_key = self_signed(second)
                Path(cert).write_bytes(Path(new_cert).read_bytes())
                Path(key).write_bytes(Path(new_key).read_bytes())
                relay.reload_tls()
                async with connect(uri, ssl=context) as after:
                    assert _certificate(after) != original
                    assert (
                        ssl.DER_cert_to_PEM_cert(_certificate(after)) == Path(new_cert).read_text()
                    )
                    assert await echoes(after)
                assert await echoes(before)  # the open connection keeps its session
                Path(key).write_text("not a key")
                with pytest.raises(RelayError, match="TLS certificate"):
                    relay.reload_tls()
                async with connect(uri, ssl=context) as later:
                    assert (
                        ssl.DER_cert_to_PEM_cert(_certificate(later)) == Path(new_cert).read_text()
                    )

    run(main())


def test_a_topic_opened_by_a_reload_no_longer_ends_at_the_token_expiry() -> None:
    secret = "s" * 32

    async def main() -> None:
        async with backend() as b:
            secured = api(b.url, security=BEARER, topics=(topic("/x"), topic("/y")))
            opened = secured.with_topics(
                [secured.topics[0], attrs.evolve(secured.topics[1], auth_type=AuthType.NONE)]
            )
            auth = AuthConfig(jwt_secret=secret, leeway=0)
            async with Relay([secured], ws_port=0, auth=auth) as relay:
                token = hs256(secret, {"sub": "me", "exp": time.time() + 0.5})
                port = relay.ports["ws"]
                expiring = await client(port, f"/chat/1.0/x?access_token={token}")
                kept = await client(port, f"/chat/1.0/y?access_token={token}")
                assert relay.reload([opened]).kept == 2
                assert await closed_code(expiring) == (4001, "token expired")
                assert await echoes(kept, "the token no longer matters here")
                await kept.close()

    run(main())
