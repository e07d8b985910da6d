"""The relay at work, in one call: :func:`run_demo` (``asyncapi-gw demo``).

It starts, in this process and on the loopback, an echo backend (a ``websockets`` server that
sends every message back) and a :class:`~asyncapi_gw.relay.Relay` serving one API whose
production endpoint is replaced by the echo backend (same path, so the topic's URL mapping
shows). A client then connects through the relay to the first topic that allows both
directions (path parameters filled with ``demo``), with a credential the API accepts when it
is secured: a bearer JWT signed with a secret made up for the run, or an API key made up for
the run, holding the topic's scopes. The client sends one message (the publish message's
first example, else a small JSON object); the backend echoes it, so one message crosses the
relay each way. Everything is stopped before :func:`run_demo` returns its
:class:`DemoReport`.

Ports are chosen by the system (port 0) unless given; a port in use, a refused handshake or a
run longer than ``timeout`` raises :class:`~asyncapi_gw.errors.RelayError`.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from urllib.parse import urlsplit

import attrs
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from asyncapi_gw.errors import RelayError
from asyncapi_gw.model import AuthKind, Endpoint, Operation, StreamingAPI, Topic, thaw
from asyncapi_gw.relay.auth import ApiKeyInfo, AuthConfig, issue_hs256_token
from asyncapi_gw.relay.server import Relay

__all__ = ["DemoReport", "run_demo"]

DEFAULT_MESSAGE = {"hello": "from the asyncapi-gw demo"}
_PARAMETER = re.compile(r"\{[^{}/]*\}|\*")


@attrs.frozen(kw_only=True)
class DemoReport:
    """What the demonstration did.

    ``gateway_url``: where the client connected (the relay); ``topic``: the topic it matched;
    ``declared_backend``: the API's production endpoint as the document declares it;
    ``backend_url``: the URL the relay dialled for the client, as the echo backend received it
    (its host and port replace the declared endpoint's); ``credential``: how the client
    authenticated; ``sent`` and ``received``: the message the client sent and the one it got
    back through the relay.
    """

    api: str
    topic: str
    gateway_url: str
    declared_backend: str
    backend_url: str
    credential: str
    sent: str
    received: str


def _demo_topic(api: StreamingAPI) -> Topic:
    for topic in api.topics:
        if topic.allows(Operation.PUBLISH) and topic.allows(Operation.SUBSCRIBE):
            return topic
    raise RelayError(
        f"API {api.name!r} {api.version} has no topic that allows both publish and subscribe"
    )


def _example(topic: Topic) -> str:
    """The publish message's first example payload as JSON, else :data:`DEFAULT_MESSAGE`."""
    message = thaw(topic.publish.message) if topic.publish and topic.publish.message else {}
    examples = message.get("examples")
    first = examples[0] if isinstance(examples, list) and examples else None
    if isinstance(first, dict) and "payload" in first:
        return json.dumps(first["payload"], ensure_ascii=False)
    return json.dumps(DEFAULT_MESSAGE)


def _credential(api: StreamingAPI, topic: Topic) -> tuple[AuthConfig, list[tuple[str, str]], str]:
    """The relay's auth settings, the client's credential header, and its description."""
    scopes = topic.scopes
    held = f" holding {', '.join(scopes)}" if scopes else ""
    if not api.auth_kinds or topic.is_open:
        return AuthConfig(), [], "none (the topic is open)"
    if AuthKind.OAUTH2 in api.auth_kinds:
        secret = secrets.token_urlsafe(32)
        claims = {"sub": "demo", "scope": " ".join(scopes), "exp": int(time.time()) + 300}
        token = issue_hs256_token(secret, claims)
        header = ("Authorization", f"Bearer {token}")
        return AuthConfig(jwt_secret=secret), [header], f"a bearer JWT made up for the run{held}"
    key = secrets.token_urlsafe(24)
    auth = AuthConfig(api_keys={key: ApiKeyInfo(name="demo", scopes=frozenset(scopes))})
    return auth, [("apikey", key)], f"an API key made up for the run{held}"


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def run_demo(
    api: StreamingAPI, *, host: str = "127.0.0.1", port: int = 0, timeout: float = 10.0
) -> DemoReport:
    """Relay one message each way for ``api`` (see the module's docstring)."""
    if api.production_endpoint is None:
        raise RelayError(f"API {api.name!r} {api.version} has no production endpoint")
    topic = _demo_topic(api)
    try:
        return await asyncio.wait_for(_run(api, topic, host, port), timeout)
    except TimeoutError:
        raise RelayError(f"the demo did not finish within {timeout:g} s") from None


async def _run(api: StreamingAPI, topic: Topic, host: str, port: int) -> DemoReport:
    declared = api.production_endpoint.url if api.production_endpoint else ""
    dialled: list[str] = []

    async def echo(connection: ServerConnection) -> None:
        dialled.append(connection.request.path if connection.request else "")
        async for message in connection:
            await connection.send(message)

    try:
        backend = await serve(echo, host, 0)
    except OSError as exc:
        raise RelayError(f"cannot start the echo backend on {host}: {exc.strerror}") from None
    async with backend:
        backend_port = backend.sockets[0].getsockname()[1]
        authority = _authority(host, backend_port)
        endpoint = urlsplit(declared)._replace(scheme="ws", netloc=authority)
        served = attrs.evolve(api, production_endpoint=Endpoint(url=endpoint.geturl()))
        auth, headers, credential = _credential(api, topic)
        async with Relay(
            [served], host=host, ws_port=port, wss_port=None, admin_port=None, auth=auth
        ) as relay:
            path = api.gateway_path + _PARAMETER.sub("demo", topic.path)
            gateway_url = f"ws://{_authority(host, relay.ports['ws'])}{path}"
            sent = _example(topic)
            try:
                async with connect(gateway_url, additional_headers=headers) as client:
                    await client.send(sent)
                    received = await client.recv()
            except InvalidStatus as exc:
                status = exc.response.status_code
                raise RelayError(f"the relay refused the demo client: HTTP {status}") from None
            except (InvalidHandshake, ConnectionClosed, OSError) as exc:
                raise RelayError(f"the demo client's connection failed: {exc}") from None
    return DemoReport(
        api=f"{api.name} {api.version}",
        topic=topic.name,
        gateway_url=gateway_url,
        declared_backend=declared,
        backend_url=f"ws://{authority}{dialled[0]}" if dialled else "",
        credential=credential,
        sent=sent,
        received=received if isinstance(received, str) else received.decode("utf-8", "replace"),
    )
