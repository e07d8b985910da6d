"""An API described in AsyncAPI 3 is served exactly like its 2.x twin.

Each pair of documents describes one API: the chat rooms written as the specification writes 3.0
(operations from the application's side) and as 2.6.0, and a WSO2 API Manager 4.7 document
(operations from the client's side, recognised by their names) and WSO2's 2.0.0 export of the
same API.  Both of a pair run through a real relay with a real backend, and every client
attempt ends the same way: the same HTTP refusal, or the same backend URL dialled and the same
fate for a message the client sends (relayed back, or the connection closed because the topic
does not take that direction: 1008 for the client's message, 1014 for the backend's echo).
"""

from __future__ import annotations

import time
from pathlib import Path

import attrs
import pytest
from jwt_tokens import hs256
from relay_harness import backend, client, run
from websockets.exceptions import ConnectionClosed, InvalidStatus

from asyncapi_gw.asyncapi import load_asyncapi
from asyncapi_gw.model import Endpoint, StreamingAPI
from asyncapi_gw.relay import AuthConfig, Relay

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SECRET = "twin-secret-" * 4

# (topic path, scopes of the bearer token or None for no token, send a message)
Attempt = tuple[str, tuple[str, ...] | None, bool]
CHATROOM: list[Attempt] = [
    ("/rooms/lobby", ("chat:write",), True),
    ("/rooms/lobby", None, False),
    ("/rooms/lobby", ("other",), False),
    ("/notifications", ("chat:read",), True),
    ("/notifications", ("chat:write",), False),
    ("/lobby", None, True),
    ("/nowhere", ("chat:read",), False),
]
WSO2: list[Attempt] = [
    ("/chat", ("creator",), True),
    ("/chat", None, False),
    ("/notifications", ("creator",), True),
    ("/notifications", ("viewer",), False),
    ("/feed", None, True),
]


async def attempt(port: int, base: str, case: Attempt, paths: list[str]) -> tuple[object, ...]:
    path, scopes, send = case
    headers = {}
    if scopes is not None:
        claims = {"sub": "u", "exp": time.time() + 60, "scope": " ".join(scopes)}
        headers["Authorization"] = f"Bearer {hs256(SECRET, claims)}"
    try:
        async with client(port, base + path, additional_headers=headers) as ws:
            dialled = paths[-1]
            if not send:
                return ("open", dialled)
            await ws.send("hello")
            try:
                return ("relayed", dialled, await ws.recv())
            except ConnectionClosed:
                frame = ws.protocol.close_rcvd
                return ("closed", dialled, frame.code if frame else None)
    except InvalidStatus as refused:
        return ("refused", refused.response.status_code)


async def served(api: StreamingAPI, cases: list[Attempt]) -> list[tuple[object, ...]]:
    async with backend() as b:
        live = attrs.evolve(api, production_endpoint=Endpoint(url=b.url + "/ws"))
        auth = AuthConfig(jwt_secret=SECRET)
        async with Relay([live], ws_port=0, auth=auth) as relay:
            outcomes = []
            for case in cases:
                outcomes.append(await attempt(relay.ports["ws"], live.gateway_path, case, b.paths))
            return outcomes


@pytest.mark.parametrize(
    ("twin_2x", "twin_3x", "cases", "expected"),
    [
        (
            "chatroom.yaml",
            "v3/chatroom.yaml",
            CHATROOM,
            [
                ("relayed", "/ws/rooms/lobby", "hello"),
                ("refused", 401),
                ("refused", 403),
                ("closed", "/ws/notifications", 1008),
                ("refused", 403),
                ("closed", "/ws/lobby", 1008),
                ("refused", 404),
            ],
        ),
        (
            "wso2-chats.yaml",
            "v3/wso2-4.7.yaml",
            WSO2,
            [
                ("relayed", "/ws/chat", "hello"),
                ("refused", 401),
                ("closed", "/ws/notifications", 1008),
                ("refused", 403),
                # The backend's echo breaks /feed's direction: the backend is at fault (1014).
                ("closed", "/ws/feed", 1014),
            ],
        ),
    ],
    ids=["chatroom", "wso2"],
)
def test_a_3x_api_is_served_like_its_2x_twin(
    twin_2x: str, twin_3x: str, cases: list[Attempt], expected: list[tuple[object, ...]]
) -> None:
    old = load_asyncapi(FIXTURES / twin_2x)
    new = load_asyncapi(FIXTURES / twin_3x)
    assert new.gateway_path == old.gateway_path

    async def main() -> None:
        assert await served(old, cases) == expected
        assert await served(new, cases) == expected

    run(main(), timeout=60)
