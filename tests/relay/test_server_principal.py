"""Who a connection serves, over real loopback sockets: the access log's principal, the
principal header the backend may be sent (never a client's copy), the per-principal quota, and
how throttling and permessage-deflate go together."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from jwt_tokens import hs256
from relay_harness import api, backend, client, run, topic
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from asyncapi_gw.model import (
    AuthKind,
    AuthType,
    SecurityScheme,
    StreamingAPI,
    Throttling,
    ThrottlingUnit,
)
from asyncapi_gw.relay import ApiKeyInfo, AuthConfig, Relay
from asyncapi_gw.relay.quota import THROTTLED_MESSAGE

SECRET = "s" * 32
NAMED_KEY = "k-named-secret-1"
UNNAMED_KEY = "k-unnamed-secret-2"
AUTH = AuthConfig(
    jwt_secret=SECRET,
    api_keys={
        NAMED_KEY: ApiKeyInfo(name="reporting", scopes=frozenset({"read"})),
        UNNAMED_KEY: ApiKeyInfo(),
    },
)
SECURITY = (
    SecurityScheme(name="oauth", kind=AuthKind.OAUTH2),
    SecurityScheme(name="key", kind=AuthKind.API_KEY),
)


def _secured(url: str, **fields: object) -> StreamingAPI:
    return api(
        url,
        topics=(topic("/*"), topic("/open", auth_type=AuthType.NONE)),
        security=SECURITY,
        **fields,
    )


def test_access_log_names_the_principal_never_the_credential(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    token = hs256(SECRET, {"sub": "alice", "scope": "read write"})

    async def main() -> None:
        async with (
            backend() as b,
            Relay([_secured(b.url)], ws_port=0, auth=AUTH, access_log=str(log)) as relay,
        ):
            port = relay.ports["ws"]
            for path, headers in [
                ("/chat/1.0/x", {"Authorization": f"Bearer {token}"}),
                (f"/chat/1.0/x?apikey={NAMED_KEY}", {}),
                ("/chat/1.0/x", {"apikey": UNNAMED_KEY}),
                ("/chat/1.0/open", {}),
            ]:
                async with client(port, path, additional_headers=headers) as ws:
                    await ws.send("hi")
                    await ws.recv()
            await asyncio.sleep(0.05)

    run(main())
    text = log.read_text()
    entries = [json.loads(line) for line in text.splitlines()]
    assert [(e["auth"], e["principal"]) for e in entries] == [
        ("oauth2", "alice"),
        ("api_key", "reporting"),
        ("api_key", entries[2]["principal"]),
        ("none", None),
    ]
    assert entries[2]["principal"].startswith("key-")
    for secret in (NAMED_KEY, UNNAMED_KEY, token, token.split(".")[2]):
        assert secret not in text


async def _headers_seen(ws: ServerConnection, seen: list[list[str]], name: str) -> None:
    assert ws.request is not None
    seen.append(ws.request.headers.get_all(name))
    async for message in ws:
        await ws.send(message)


def test_principal_header_says_who_and_a_client_cannot_forge_it() -> None:
    token = hs256(SECRET, {"sub": "alice", "scope": "write read"})
    forged = {"X-Asyncapi-Gw-Principal": '{"principal":"root"}', "X-Who": "root"}

    async def main() -> None:
        seen: list[list[str]] = []
        async with backend(lambda ws: _headers_seen(ws, seen, "X-Who")) as b:
            allow = ["X-Asyncapi-Gw-Principal", "X-Who"]
            async with Relay(
                [_secured(b.url)],
                ws_port=0,
                auth=AUTH,
                principal_header="X-Who",
                forward_headers=allow,
            ) as relay:
                port = relay.ports["ws"]
                headers = {**forged, "Authorization": f"Bearer {token}"}
                async with client(port, "/chat/1.0/x", additional_headers=headers):
                    pass
                async with client(port, "/chat/1.0/open", additional_headers=forged):
                    pass
            # off: nothing is sent, and the usual name is never copied from a client, even
            # when an allow-list names it
            async with (
                Relay([_secured(b.url)], ws_port=0, auth=AUTH, forward_headers=allow) as relay,
                client(relay.ports["ws"], "/chat/1.0/open", additional_headers=forged),
            ):
                pass
        assert [json.loads(values[0]) for values in seen[:2]] == [
            {"auth": "oauth2", "principal": "alice", "scopes": ["read", "write"]},
            {"auth": "none", "principal": None, "scopes": []},
        ]
        assert [len(values) for values in seen[:2]] == [1, 1]  # the relay's, not the client's
        assert seen[2] == ["root"]  # off, a header of another name is the client's to send
        assert all("X-Asyncapi-Gw-Principal" not in h for h in b.headers)

    run(main())


def test_anonymous_clients_cannot_spend_the_quota_of_authenticated_ones() -> None:
    throttling = Throttling(events=4, unit=ThrottlingUnit.MINUTE, per_principal=2)

    async def main() -> None:
        async with (
            backend() as b,
            Relay([_secured(b.url, throttling=throttling)], ws_port=0, auth=AUTH) as relay,
        ):
            port = relay.ports["ws"]
            answers = []
            # anonymous clients of one address, on two connections, are one principal
            async with client(port, "/chat/1.0/open") as one, client(port, "/chat/1.0/open") as two:
                for ws in (one, two, one, two):
                    await ws.send("anonymous")
                    answers.append(await ws.recv())
            assert answers.count("anonymous") == 2
            assert answers.count(THROTTLED_MESSAGE) == 2
            path = f"/chat/1.0/x?apikey={NAMED_KEY}"
            async with client(port, path) as ws:
                await ws.send("authenticated")
                assert await ws.recv() == "authenticated"  # the API's quota had room left

    run(main())


def test_a_throttled_client_compresses_each_message_alone() -> None:
    """A dropped (throttled) message must not be one the client's next message refers to:
    the relay tells the client not to take over its compression context."""
    throttling = Throttling(events=1, unit=ThrottlingUnit.SECOND)

    async def main() -> None:
        async with (
            backend() as b,
            Relay([api(b.url, throttling=throttling)], ws_port=0, ping_interval=None) as relay,
            client(relay.ports["ws"], "/chat/1.0/x") as ws,
        ):
            (extension,) = ws.protocol.extensions
            assert extension.local_no_context_takeover  # type: ignore[attr-defined]
            message = "a message the next one repeats " * 20
            await ws.send(message)
            assert await ws.recv() == message
            await ws.send(message + "!")  # throttled: dropped
            assert await ws.recv() == THROTTLED_MESSAGE
            await asyncio.sleep(1.05)  # the relay's quota has no clock to inject: a new window
            await ws.send(message + "!")
            try:
                answer = await asyncio.wait_for(ws.recv(), 5)
            except ConnectionClosed:
                answer = f"closed {ws.close_code}"
            assert answer == message + "!"

    run(main())
