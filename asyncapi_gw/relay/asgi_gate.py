"""The ASGI front's decisions: route, credential, backend URL, per-message verdict.

A thin seam over the relay's pure pieces (:class:`RouteTable`, :class:`Authenticator`,
:func:`backend_for`, :class:`QuotaRegistry`), in the shape the front drives.
"""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Iterable
from urllib.parse import parse_qsl

import attrs

from asyncapi_gw.model import Operation, StreamingAPI, Topic, thaw
from asyncapi_gw.relay.auth import AuthConfig, Authenticator, Principal, Rejection
from asyncapi_gw.relay.config import RelayConfig
from asyncapi_gw.relay.handshake import RESERVED_HEADERS
from asyncapi_gw.relay.principal import header_value, quota_key
from asyncapi_gw.relay.quota import THROTTLED_MESSAGE, ConnectionQuota, QuotaRegistry
from asyncapi_gw.relay.routing import Environment, NoRoute, Route, RouteTable, backend_for
from asyncapi_gw.relay.stream import Close
from asyncapi_gw.schema import validate_instance

__all__ = ["Admitted", "AsgiGate", "Refused", "Verdict"]


class Verdict(enum.Enum):
    FORWARD = "forward"
    DROP = "drop"


@attrs.frozen
class Refused:
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()


@attrs.define
class Admitted:
    route: Route
    principal: Principal
    backend_url: str
    quota: ConnectionQuota | None

    @property
    def api_name(self) -> str:
        return self.route.api.name

    @property
    def expires_at(self) -> float | None:
        return self.principal.expires_at


def _schema(topic: Topic, operation: Operation) -> object | None:
    side = topic.publish if operation is Operation.PUBLISH else topic.subscribe
    message = side.message if side is not None else None
    payload = None if message is None else message.get("payload")
    return None if payload is None else thaw(payload)


class AsgiGate:
    def __init__(self, apis: Iterable[StreamingAPI], config: RelayConfig) -> None:
        self.config = config
        self._table = RouteTable.from_apis(apis)
        self._authenticator = Authenticator(config.auth or AuthConfig())
        self._quotas = QuotaRegistry(principal_limit=config.principal_quota)

    def route(self, target: str) -> Route | Refused:
        route = self._table.match(target)
        if isinstance(route, NoRoute):
            return Refused(route.status, route.reason)
        return route

    def admit(self, target: str, headers: list[tuple[str, str]], peer: str) -> Admitted | Refused:
        route = self.route(target)
        if isinstance(route, Refused):
            return route
        principal = self._authenticator.authenticate(
            api=route.api,
            topic=route.topic,
            headers=headers,
            query=_query(route.query),
            now=time.time(),
        )
        if isinstance(principal, Rejection):
            challenges = ", ".join(principal.challenges)
            extra = (("WWW-Authenticate", challenges),) if challenges else ()
            return Refused(principal.status, principal.reason, extra)
        environment: Environment = "sandbox" if principal.environment == "sandbox" else "production"
        url = backend_for(route, environment, forward_query=self.config.forward_query)
        if isinstance(url, NoRoute):
            return Refused(url.status, url.reason)
        quota = self._quotas.for_connection(
            route.api, principal=quota_key(principal, peer), now=time.monotonic()
        )
        return Admitted(route, principal, url.url, quota)

    def release(self, admitted: Admitted) -> None:
        if admitted.quota is not None:
            admitted.quota.release()

    def backend_headers(
        self, admitted: Admitted, headers: list[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        config = self.config
        own = []
        if config.principal_header is not None:
            own.append((config.principal_header, header_value(admitted.principal)))
        allowed = {n.lower() for n in config.forward_headers} - RESERVED_HEADERS
        allowed -= {n.lower() for n, _ in own}
        return [*((n, v) for n, v in headers if n.lower() in allowed), *own]

    def judge(
        self, admitted: Admitted, data: str | bytes, *, from_client: bool
    ) -> Verdict | Close | str:
        config = self.config
        route = admitted.route
        operation = Operation.PUBLISH if from_client else Operation.SUBSCRIBE
        size = len(data.encode()) if isinstance(data, str) else len(data)
        if size > config.max_message_size:
            return Close(1009, f"message of {size} bytes is over the limit")
        if not route.topic.allows(operation):
            if config.on_wrong_direction == "close":
                return Close(1008, f"topic does not allow {operation.value}")
            return Verdict.DROP
        if from_client and admitted.quota is not None and not admitted.quota.take(time.monotonic()):
            if config.on_throttle == "close":
                return Close(4003, "Websocket frame throttled out")
            return THROTTLED_MESSAGE
        if config.validate_messages:
            schema = _schema(route.topic, operation)
            if schema is not None and not _valid(data, schema, operation, route):
                if config.on_invalid == "close":
                    return Close(1007, "message failed validation")
                return Verdict.DROP
        return Verdict.FORWARD


def _valid(data: str | bytes, schema: object, operation: Operation, route: Route) -> bool:
    if not isinstance(data, str):
        return False
    try:
        instance = json.loads(data)
    except ValueError:
        return False
    pointer = f"/channels/{route.topic.name}/{operation.value}/message/payload"
    return not validate_instance(instance, schema, pointer=pointer, rule="message")


def _query(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query, keep_blank_values=True)
