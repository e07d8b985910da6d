"""What a reload does to each open connection: keep it, under what its topic now says, or close
it, and why.

Pure: no I/O and no clock. A reload brings new APIs, new credentials or both; each open
connection is judged as if its client made the same handshake again, in this order:

1. **Route.** The request target is matched again. No API at its gateway path any more: close
   1012 ``reload: API removed``. The API is there but the connection's topic is not: 1012
   ``reload: topic removed``. The target now leads to another topic (a template added beside a
   wildcard, say) or to another API (one with a longer gateway path): 1012 ``reload: the path
   now leads to ...``.
2. **Auth.** The principal is re-authorized
   (:meth:`~asyncapi_gw.relay.auth.Authenticator.reauthorize`): a revoked API key, a token
   whose verifying key was removed or rotated, a credential kind the API no longer accepts, a
   scope the topic now requires and the credential lacks, or authentication newly required on
   a topic that was open: close 4001 with the reason, the code a token that expires while
   connected gets: the client must not come back with the same credential. A principal that
   passes may come back changed (an API key's new scopes or environment).
3. **Backend.** The backend URL built from the new route and the principal's environment must
   be the one the connection dialled: else 1012 ``reload: backend changed`` (``backend
   removed`` when the API lost that endpoint).
4. **Compression.** When the topic's messages are now validated but the connection negotiated
   permessage-deflate, the relay cannot read them: 1012 ``reload: messages are now validated``
   (the client reconnects without compression).
5. Otherwise the connection stays. When its topic's message-level policy changed (publish or
   subscribe added or removed, a payload schema, the API's throttling) each side follows the
   new policy from the next message it starts; a message in progress ends under the old one.
   Nothing else of the document (descriptions, other topics, other APIs) touches it.

1012 ("service restart") tells a client to reconnect: its new handshake then meets the new
definition (a 404, another backend). Connections whose handshake is still in progress are
judged the same way before they are accepted (401 for 4001, 503 for 1012).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from asyncapi_gw.model import Operation
from asyncapi_gw.relay.auth import Authenticator, Principal, Rejection
from asyncapi_gw.relay.closecode import CloseCode
from asyncapi_gw.relay.routing import NoRoute, Route, RouteTable, backend_for

__all__ = [
    "Drop",
    "Keep",
    "ReloadReport",
    "Session",
    "reconcile",
]


@attrs.frozen(kw_only=True)
class Session:
    """What the relay keeps of an accepted handshake to judge it again: the request
    ``target`` (path and query as received), its ``route``, the ``principal`` and the
    ``backend_url`` dialled."""

    target: str = attrs.field(repr=False)  # its query may hold a credential
    route: Route
    principal: Principal
    backend_url: str = attrs.field(repr=False)


@attrs.frozen(kw_only=True)
class Keep:
    """The connection stays, now on ``route`` as ``principal``. ``policy_changed``: its
    topic's message-level policy differs (the shell updates both directions);
    ``quota_changed``: the API's throttling differs (the connection gets a new quota)."""

    route: Route
    principal: Principal
    policy_changed: bool = False
    quota_changed: bool = False


@attrs.frozen(kw_only=True)
class Drop:
    """The connection closes with ``code`` and ``reason`` (to the client and the access log)."""

    code: int
    reason: str


def _message_policy(route: Route) -> tuple[Any, ...]:
    """What a topic says about each message: the directions it allows, their payload schemas,
    and the API's throttling."""
    sides = []
    for operation in Operation:
        side = route.topic.publish if operation is Operation.PUBLISH else route.topic.subscribe
        message = None if side is None else side.message
        sides.append((side is not None, None if message is None else message.get("payload")))
    return (*sides, route.api.throttling)


def reconcile(
    session: Session,
    *,
    compressed: bool,
    table: RouteTable,
    authenticator: Authenticator,
    forward_query: bool,
    validated: Callable[[Route], bool],
) -> Keep | Drop:
    """The verdict on the connection of ``session`` (with permessage-deflate if
    ``compressed``) under the new ``table`` and ``authenticator``; ``forward_query`` as the
    relay builds backend URLs, ``validated(route)``: whether messages on a route are
    validated."""
    route = session.route
    found = table.match(session.target)
    if (
        isinstance(found, NoRoute)
        or found.api.gateway_path != route.api.gateway_path
        or found.topic.path != route.topic.path
    ):
        return _reload(_route_change(route, found, table))
    again = authenticator.reauthorize(session.principal, api=found.api, topic=found.topic)
    if isinstance(again, Rejection):
        return Drop(code=CloseCode.REVOKED, reason=f"reload: {again.reason}")
    built = backend_for(found, again.environment, forward_query=forward_query)
    if isinstance(built, NoRoute):
        return _reload("backend removed")
    if built.url != session.backend_url:
        return _reload("backend changed")
    if compressed and validated(found):
        return _reload("messages are now validated")
    return Keep(
        route=found,
        principal=again,
        policy_changed=_message_policy(found) != _message_policy(route),
        quota_changed=found.api.throttling != route.api.throttling,
    )


def _route_change(route: Route, found: Route | NoRoute, table: RouteTable) -> str:
    gateway_path = route.api.gateway_path
    api = next((a for a in table.apis if a.gateway_path == gateway_path), None)
    if api is None:
        return "API removed"
    if not any(t.path == route.topic.path for t in api.topics):
        return "topic removed"
    if isinstance(found, Route) and found.api.gateway_path == gateway_path:
        return f"the path now leads to topic {found.topic.name}"
    return "the path now leads to another API"  # one whose gateway path is longer


def _reload(why: str) -> Drop:
    return Drop(code=CloseCode.SERVICE_RESTART, reason=f"reload: {why}")


@attrs.frozen(kw_only=True)
class ReloadReport:
    """What a reload did to the open connections: ``kept`` (``updated`` of them now follow a
    changed message policy) and, per close code and reason, how many were ``closed``."""

    kept: int = 0
    updated: int = 0
    closed: Mapping[tuple[int, str], int] = attrs.field(factory=dict)

    @classmethod
    def tally(cls, verdicts: Iterable[Keep | Drop]) -> ReloadReport:
        """The report of a reload that gave ``verdicts``."""
        kept = updated = 0
        closed: dict[tuple[int, str], int] = {}
        for verdict in verdicts:
            if isinstance(verdict, Drop):
                key = (verdict.code, verdict.reason)
                closed[key] = closed.get(key, 0) + 1
            else:
                kept += 1
                updated += verdict.policy_changed
        return cls(kept=kept, updated=updated, closed=closed)

    def describe(self) -> str:
        """One line for a person: ``3 connections kept (1 with a new message policy), 2
        closed: 2 with 1012 reload: topic removed``."""
        text = f"{self.kept} connection{'s' if self.kept != 1 else ''} kept"
        if self.updated:
            text += f" ({self.updated} with a new message policy)"
        total = sum(self.closed.values())
        if total:
            reasons = "; ".join(
                f"{count} with {code} {reason}"
                for (code, reason), count in sorted(self.closed.items())
            )
            text += f", {total} closed: {reasons}"
        return text
