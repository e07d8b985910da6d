"""Real clients meet the relay's conformance answers: the close code a backend's protocol error
gives (Chromium, websocket-client), and the HTTP answers and headers RFC 6750 and RFC 9110 ask
for: WWW-Authenticate on 401 and 403, 403 for a token whose scope list lacks the topic's, 400
for an encoded slash in a path parameter; and the mapping's query parameters winning over the
client's (websocket-client, wscat)."""

from __future__ import annotations

import asyncio
import contextlib
import struct
import uuid
from collections.abc import Iterator

import attrs
import pytest
import websocket
from jwt_tokens import hs256
from raw_frames import RawBackend, parse_frames, raw_backend, raw_frame
from realclients_harness import Browser, LoopThread, Stack, open_api, run_wscat

from asyncapi_gw.model import (
    AuthKind,
    AuthType,
    Operation,
    SecurityScheme,
    StreamingAPI,
    Topic,
    TopicOperation,
)
from asyncapi_gw.relay import AuthConfig, Relay

pytestmark = pytest.mark.realclients

SECRET = "c" * 32  # an HS256 key of the minimal size
MASKED = raw_frame(1, b"masked by the backend", mask=True)  # a server must not mask


def _gated(backend: str) -> StreamingAPI:
    """``/gated/1.0``: bearer tokens; ``/open/{p}`` needs none and maps to ``/open/{p}?fixed=1``,
    ``/admin`` needs the scope ``admin``."""

    def operations(mapping: str | None, *scopes: str) -> dict[str, TopicOperation]:
        return {
            "publish": TopicOperation(
                operation=Operation.PUBLISH, uri_mapping=mapping, scopes=scopes
            ),
            "subscribe": TopicOperation(operation=Operation.SUBSCRIBE, uri_mapping=mapping),
        }

    return attrs.evolve(
        open_api("Gated", backend),
        topics=(
            Topic(
                name="/open/{p}",
                auth_type=AuthType.NONE,
                **operations("/open/{uri.var.p}?fixed=1"),
            ),
            Topic(name="/admin", **operations(None, "admin")),
        ),
        security=(SecurityScheme(name="oauth", kind=AuthKind.OAUTH2),),
    )


@attrs.define
class Conformance:
    port: int
    broken: RawBackend  # the backend of /broken/1.0: masks its frames


@pytest.fixture(scope="module")
def conformance(loop_thread: LoopThread, stack: Stack) -> Iterator[Conformance]:
    exits = contextlib.AsyncExitStack()

    async def misbehave(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received = b""
        while not parse_frames(received):  # the client's first message, then a masked frame
            received += await reader.read(65536)
        broken.received += received
        writer.write(MASKED)

    async def start() -> Conformance:
        backend = await exits.enter_async_context(raw_backend(misbehave))
        apis = [_gated(stack.echo_url), open_api("Broken", backend.url)]
        relay = Relay(apis, ws_port=0, auth=AuthConfig(jwt_secret=SECRET))
        await exits.enter_async_context(relay)
        return Conformance(port=relay.ports["ws"], broken=backend)

    started = loop_thread.run(start())
    broken = started.broken
    yield started
    loop_thread.run(exits.aclose())


def _refused(url: str, **header: str) -> websocket.WebSocketBadStatusException:
    with pytest.raises(websocket.WebSocketBadStatusException) as caught:
        websocket.create_connection(url, timeout=5, header=header)
    return caught.value


@pytest.mark.parametrize(
    ("claims", "status", "challenge"),
    [
        (None, 401, 'Bearer realm="Gated"'),
        (
            {"exp": 1},
            401,
            'Bearer realm="Gated", error="invalid_token", error_description="token expired"',
        ),
        ({"scope": ["read", "write"]}, 403, 'Bearer realm="Gated", error="insufficient_scope", '
         'scope="admin"'),
    ],
)  # fmt: skip
def test_refusals_carry_www_authenticate(
    conformance: Conformance, claims: dict[str, object] | None, status: int, challenge: str
) -> None:
    header = {} if claims is None else {"Authorization": f"Bearer {hs256(SECRET, claims)}"}
    refused = _refused(f"ws://127.0.0.1:{conformance.port}/gated/1.0/admin", **header)
    assert refused.status_code == status
    assert refused.resp_headers is not None
    assert refused.resp_headers["www-authenticate"] == challenge


def test_a_scope_list_grants_the_topic(conformance: Conformance) -> None:
    token = hs256(SECRET, {"scope": ["read", "admin"]})
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{conformance.port}/gated/1.0/admin",
        timeout=5,
        header={"Authorization": f"Bearer {token}"},
    )
    try:
        ws.send("granted")
        assert ws.recv() == "granted"
    finally:
        ws.close()


@pytest.mark.parametrize("value", ["..%2Fadmin", "a%2fb", "..%5Cadmin"])
def test_an_encoded_slash_in_a_parameter_is_400(conformance: Conformance, value: str) -> None:
    refused = _refused(f"ws://127.0.0.1:{conformance.port}/gated/1.0/open/{value}")
    assert refused.status_code == 400
    assert refused.resp_body is not None
    assert b"%2F" in refused.resp_body


def test_the_mappings_query_parameter_wins(conformance: Conformance, stack: Stack) -> None:
    run = uuid.uuid4().hex[:12]
    url = f"ws://127.0.0.1:{conformance.port}/gated/1.0/open/lobby?fixed=2&run={run}"
    ws = websocket.create_connection(url, timeout=5)
    ws.close()
    assert stack.closed_seen(run).path == f"/open/lobby?fixed=1&run={run}"


def test_wscat_sees_the_400_of_an_encoded_slash(wscat: str, conformance: Conformance) -> None:
    url = f"ws://127.0.0.1:{conformance.port}/gated/1.0/open/..%2Fadmin"
    code, out = run_wscat(wscat, "-c", url, "-x", "never sent", "-w", "1")
    assert code != 0
    assert out == "error: Unexpected server response: 400\n"


def _backend_close(conformance: Conformance, loop_thread: LoopThread) -> tuple[int, str]:
    """The close frame the broken backend received (waiting for it, bounded)."""
    broken = conformance.broken

    async def closed() -> bytes:
        await asyncio.wait_for(broken.done.wait(), 10)
        broken.done.clear()
        close = broken.frames()[-1]
        broken.received = b""
        assert close[1] == 8, broken.frames()
        return close[2]

    payload = loop_thread.run(closed())
    return struct.unpack("!H", payload[:2])[0], payload[2:].decode()


def test_websocket_client_gets_1014_when_the_backend_masks(
    conformance: Conformance, loop_thread: LoopThread
) -> None:
    ws = websocket.create_connection(f"ws://127.0.0.1:{conformance.port}/broken/1.0/x", timeout=5)
    try:
        ws.send("go")
        opcode, data = ws.recv_data(control_frame=True)
    finally:
        ws.close()
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert struct.unpack("!H", data[:2])[0] == 1014
    assert data[2:].decode() == "bad gateway: backend protocol error: masked frame"
    assert _backend_close(conformance, loop_thread) == (1002, "masked frame")


def test_chromium_gets_1014_when_the_backend_masks(
    chromium: Browser, conformance: Conformance, loop_thread: LoopThread
) -> None:
    _, page = chromium.scenario(
        f"ws://127.0.0.1:{conformance.port}/broken/1.0/x", send=["go"], close=None
    )
    assert page["events"] == ["open", "close"], page
    reason = "bad gateway: backend protocol error: masked frame"
    assert page["close"] == {"code": 1014, "reason": reason, "clean": True}
    assert _backend_close(conformance, loop_thread) == (1002, "masked frame")
