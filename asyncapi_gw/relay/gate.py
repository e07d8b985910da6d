"""The one place that decides who may connect where, and what each message may do.

Pure: no I/O, no asyncio; the clocks are injected. Every front (the relay's own listener, the
``websockets`` adapter, the ASGI app) asks a :class:`Gate` the same questions in the same
order, and only moves bytes or messages itself.

**Before the upgrade**, :meth:`Gate.admit` takes the request target (path under the front's
mount and the raw query, as received), the request headers and the client's address, and
answers an :class:`Admission` or a :class:`Refusal` (an HTTP status, a plain-text reason, and
headers such as ``WWW-Authenticate``), deciding in this order:

1. **route**: the target matched against every API's gateway path and topics (404; 400 for a
   target that is not a printable path);
2. **authentication and authorization** on the topic (401, 403, with the challenges);
3. **backend URL** for the principal's environment (403 when the API has no endpoint for it);
4. **capacity**: 503 while the gate is closed (draining) or when ``max_connections``
   admissions are held.

An admission holds one of the ``max_connections`` slots until :meth:`Gate.release`. The front
dials :attr:`Admission.backend_url` (adding :attr:`Admission.backend_headers`, offering the
client's :attr:`Admission.subprotocols`, and permessage-deflate only when
:attr:`Admission.offer_compression`), then calls :meth:`Gate.accept`: a reload that came
while the backend was dialled judges the handshake again (401 for a credential no longer
accepted, 503 for a changed route or backend), and the connection takes its quota.

**Per message**, a front that sees whole messages asks :meth:`Gate.verdict` (a :class:`Deliver`,
a :class:`Discard`, or a :class:`~asyncapi_gw.relay.stream.Close` with its close code) in this
order: the topic's direction (1008 or drop), ``max_message_size`` (1009), the quota, client
messages only (4003, or drop with WSO2's throttling reply to the client), and payload
validation (1007 or drop). A front that splices frames gets the same rules as two
:class:`~asyncapi_gw.relay.stream.StreamPolicy` values from :meth:`Gate.policies` for its
:class:`~asyncapi_gw.relay.stream.Pump` s.

**A reload** (:meth:`Gate.reload`) swaps the APIs and credentials; each open connection is
then judged again with :meth:`Gate.rejudge` (:mod:`asyncapi_gw.relay.reload` states the
rules), which moves its admission to the new route and quota or says how it closes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from urllib.parse import parse_qsl

import attrs

from asyncapi_gw.model import Operation, StreamingAPI, Topic, thaw
from asyncapi_gw.relay.auth import AuthConfig, Authenticator, Rejection
from asyncapi_gw.relay.closecode import CloseCode
from asyncapi_gw.relay.config import OnThrottle, RelayConfig
from asyncapi_gw.relay.deflate import Compression
from asyncapi_gw.relay.frames import Opcode
from asyncapi_gw.relay.metrics import Metrics, Traffic
from asyncapi_gw.relay.principal import header_value, quota_key
from asyncapi_gw.relay.quota import (
    THROTTLED_MESSAGE,
    ConnectionQuota,
    QuotaRegistry,
    SharedQuotas,
)
from asyncapi_gw.relay.reload import Drop, Keep, Session, reconcile
from asyncapi_gw.relay.routing import (
    BackendURL,
    NoRoute,
    Route,
    RouteTable,
    backend_for,
)
from asyncapi_gw.relay.stream import Close, QuotaLike, StreamPolicy
from asyncapi_gw.schema import validate_instance

__all__ = [
    "Admission",
    "Deliver",
    "Discard",
    "Gate",
    "Refusal",
    "Verdict",
]


@attrs.frozen(kw_only=True)
class Refusal:
    """A handshake refused before the upgrade: the HTTP ``status``, a plain-text ``reason``
    that is safe to send, and ``headers`` to answer with (``WWW-Authenticate``). ``route`` and
    ``session``: what was decided before the refusal, for the access log."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()
    route: Route | None = None
    session: Session | None = None

    @property
    def body(self) -> str:
        """The plain-text body of the HTTP answer: the reason on one line."""
        return self.reason.rstrip("\n") + "\n"


class Admission:
    """An admitted handshake: it holds a connection slot until :meth:`Gate.release`.

    ``session``: the route, principal and backend URL (a reload may move it to another route
    and principal); ``backend``: the URL to dial and the client query names it overrides;
    ``backend_headers``: headers the relay adds to the backend request (the principal
    header); ``subprotocols``: the client's offer, in order; ``offer_compression``: whether
    permessage-deflate may be negotiated (not on a topic whose messages are validated);
    ``quota``: the connection's, from :meth:`Gate.accept` on (``None``: not throttled).
    """

    __slots__ = (
        "backend",
        "backend_headers",
        "generation",
        "held",
        "offer_compression",
        "opened",
        "peer",
        "quota",
        "session",
        "subprotocols",
    )

    def __init__(
        self,
        *,
        session: Session,
        backend: BackendURL,
        backend_headers: tuple[tuple[str, str], ...],
        subprotocols: tuple[str, ...],
        offer_compression: bool,
        peer: str,
        generation: int,
    ) -> None:
        self.session = session
        self.backend = backend
        self.backend_headers = backend_headers
        self.subprotocols = subprotocols
        self.offer_compression = offer_compression
        self.peer = peer
        self.generation = generation  # the gate's reloads when it was admitted
        self.quota: ConnectionQuota | None = None
        self.held = True  # the connection slot
        self.opened = False  # accepted: counted as an open connection

    @property
    def route(self) -> Route:
        return self.session.route

    @property
    def backend_url(self) -> str:
        return self.backend.url


@attrs.frozen
class Deliver:
    """Pass the message on to the other side."""


@attrs.frozen
class Discard:
    """Drop the message; send ``reply`` (a text message) back to its sender when set."""

    reply: str | None = None


Verdict = Deliver | Discard | Close
_DELIVER = Deliver()
_DISCARD = Discard()
_THROTTLED = Discard(THROTTLED_MESSAGE)


class _MessageCheck:
    """Validates one topic direction's messages against the topic's payload schema."""

    def __init__(self, topic: Topic, operation: Operation) -> None:
        side = topic.publish if operation is Operation.PUBLISH else topic.subscribe
        message = side.message if side is not None else None
        payload = None if message is None else message.get("payload")
        self.schema = None if payload is None else thaw(payload)
        self.pointer = f"/channels/{topic.name}/{operation.value}/message/payload"

    def __call__(self, opcode: int, payload: bytes) -> bool:
        """Whether a whole message (text as JSON) fits the schema; binary never does."""
        if opcode != Opcode.TEXT:
            return False
        try:
            instance = json.loads(payload)
        except ValueError:
            return False
        return not validate_instance(instance, self.schema, pointer=self.pointer, rule="message")


class Gate:
    """Admission, per-message verdicts and reload judgement for one set of APIs.

    ``clock`` (monotonic seconds) drives quotas; ``wall`` (epoch seconds) token expiry.
    ``shared`` makes the API and principal quotas (a store shared with other processes; by
    default each is this process's own).
    ``metrics`` counts refusals, opened and closed connections for every front.
    """

    def __init__(
        self,
        apis: Iterable[StreamingAPI],
        config: RelayConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        shared: SharedQuotas | None = None,
    ) -> None:
        self.config = config
        self.table = RouteTable.from_apis(apis)
        self.authenticator = Authenticator(config.auth or AuthConfig())
        self.metrics = Metrics()
        self.generation = 0  # reloads so far
        self.closed = False  # draining: every admission is refused (503)
        self.held = 0  # admissions holding a connection slot
        self._clock = clock
        self._wall = wall
        self._quotas = QuotaRegistry(principal_limit=config.principal_quota, shared=shared)
        # Per topic, built once: message checks and the policies that hold no quota. Keyed by
        # the topic's id; the topic is kept beside its entry so that the id stays its own.
        self._checks: dict[tuple[int, Operation], tuple[Topic, _MessageCheck | None]] = {}
        self._policies: dict[tuple[int, bool, Compression | None], tuple[Topic, StreamPolicy]] = {}

    @property
    def apis(self) -> tuple[StreamingAPI, ...]:
        return self.table.apis

    def warnings(self) -> tuple[str, ...]:
        """What makes an API refuse every credential of a kind it accepts (for the log)."""
        return tuple(w for api in self.table.apis for w in self.authenticator.config_warnings(api))

    # -- before the upgrade --------------------------------------------------------------------

    def admit(
        self, target: str, headers: Sequence[tuple[str, str]], *, peer: str
    ) -> Admission | Refusal:
        """Route, authenticate, build the backend URL and take a connection slot for a
        request to ``target`` (``<path>?<query>`` under the front's mount, as received) with
        ``headers``, from the client address ``peer``."""
        route = self.table.match(target)
        if isinstance(route, NoRoute):
            return self.refuse(route.status, route.reason)
        principal = self.authenticator.authenticate(
            api=route.api,
            topic=route.topic,
            headers=headers,
            query=parse_qsl(route.query, keep_blank_values=True),
            now=self._wall(),
        )
        if isinstance(principal, Rejection):
            # one header line: clients that keep one value per header name see every challenge
            challenges = ", ".join(principal.challenges)
            return self.refuse(
                principal.status,
                principal.reason,
                [("WWW-Authenticate", challenges)] if challenges else [],
                route=route,
            )
        backend = backend_for(route, principal.environment, forward_query=self.config.forward_query)
        if isinstance(backend, NoRoute):
            return self.refuse(backend.status, backend.reason, route=route)
        if backend.overridden:
            self.metrics.query_overridden(route.api.name, len(backend.overridden))
        session = Session(target=target, route=route, principal=principal, backend_url=backend.url)
        if self.closed:
            return self.refuse(503, "the relay is shutting down", route=route, session=session)
        limit = self.config.max_connections
        if limit is not None and self.held >= limit:
            return self.refuse(503, "too many connections", route=route, session=session)
        self.held += 1
        config = self.config
        return Admission(
            session=session,
            backend=backend,
            backend_headers=()
            if config.principal_header is None
            else ((config.principal_header, header_value(principal)),),
            subprotocols=_subprotocols(headers),
            offer_compression=config.compression and not self.validated(route),
            peer=peer,
            generation=self.generation,
        )

    def refuse(
        self,
        status: int,
        reason: str,
        headers: Iterable[tuple[str, str]] = (),
        *,
        route: Route | None = None,
        session: Session | None = None,
    ) -> Refusal:
        """A refusal, counted; fronts use it for their own (400, 502, 504...) too."""
        self.metrics.rejected(status)
        return Refusal(
            status=status, reason=reason, headers=tuple(headers), route=route, session=session
        )

    def accept(self, admission: Admission, *, compressed: bool) -> Refusal | None:
        """The backend completed its handshake (with permessage-deflate if ``compressed``):
        ``None`` when the client may get its 101, the connection counted open and holding its
        quota; else the refusal (the caller still releases the admission)."""
        if admission.generation != self.generation:  # a reload came while the backend was dialled
            verdict = self.rejudge(admission, compressed=compressed)
            if isinstance(verdict, Drop):
                status = 401 if verdict.code == CloseCode.REVOKED else 503
                return self.refuse(status, verdict.reason, session=admission.session)
        self._take_quota(admission)
        admission.opened = True
        self.metrics.opened(admission.route.api.name)
        return None

    def release(
        self, admission: Admission, code: int | None = None, traffic: Iterable[Traffic] = ()
    ) -> None:
        """The connection of ``admission`` ended (with ``code`` if it was accepted): its slot
        and quota are free. Calling it again does nothing."""
        if not admission.held:
            return
        admission.held = False
        self.held -= 1
        if admission.quota is not None:
            admission.quota.release()
            admission.quota = None
        if admission.opened:
            self.metrics.closed(CloseCode.ABNORMAL_CLOSURE if code is None else code, traffic)

    def close(self) -> None:
        """Refuse every admission from now on (503): the relay drains."""
        self.closed = True

    def _take_quota(self, admission: Admission) -> None:
        if admission.quota is not None:
            admission.quota.release()
        session = admission.session
        admission.quota = self._quotas.for_connection(
            session.route.api,
            principal=quota_key(session.principal, admission.peer),
            now=self._clock(),
        )

    # -- per message ---------------------------------------------------------------------------

    def verdict(
        self, admission: Admission, *, from_client: bool, text: bool, payload: bytes
    ) -> Verdict:
        """What a whole message does: delivered, discarded, or the connection closes (the
        :class:`Close` names the code the sending side gets; :meth:`Close.closes` both)."""
        policy = self._policy(admission.route, from_client=from_client, deflate=None, quota=None)
        if not policy.allowed:
            return policy.wrong_direction() or _DISCARD
        limit = self.config.max_message_size
        if len(payload) > limit:
            return Close(
                CloseCode.MESSAGE_TOO_BIG, f"message of {len(payload)} bytes exceeds {limit}"
            )
        quota = admission.quota if from_client else None
        if quota is not None and not quota.take(self._clock()):
            return policy.over_quota() or _THROTTLED
        check = policy.validator
        if check is not None and not check(Opcode.TEXT if text else Opcode.BINARY, payload):
            return policy.invalid() or _DISCARD
        return _DELIVER

    def policies(
        self,
        admission: Admission,
        *,
        deflate: tuple[Compression | None, Compression | None],
    ) -> tuple[StreamPolicy, StreamPolicy]:
        """The client side's and the backend side's frame policies for ``admission``'s route;
        ``deflate``: how each side compresses (permessage-deflate agreed). A client that
        compresses each message with the context of its earlier ones (it learnt of no
        throttling when it connected) is closed (4003) rather than have a message dropped:
        the backend could not inflate the next one."""
        route, quota = admission.route, admission.quota
        client = self._policy(route, from_client=True, deflate=deflate[0], quota=quota)
        if quota is not None and deflate[0] is not None and deflate[0].context_takeover:
            client = attrs.evolve(client, on_throttle=OnThrottle.CLOSE)
        return client, self._policy(route, from_client=False, deflate=deflate[1], quota=None)

    def validated(self, route: Route) -> bool:
        """Whether messages on ``route`` are validated in either direction."""
        return any(self._validator(route, op) is not None for op in Operation)

    def _validator(self, route: Route, operation: Operation) -> _MessageCheck | None:
        if not self.config.validate_messages:
            return None
        topic = route.topic
        known = self._checks.get((id(topic), operation))
        if known is None:
            check = _MessageCheck(topic, operation)
            known = self._checks[id(topic), operation] = (
                topic,
                check if check.schema is not None else None,
            )
        return known[1]

    def _policy(
        self,
        route: Route,
        *,
        from_client: bool,
        deflate: Compression | None,
        quota: QuotaLike | None,
    ) -> StreamPolicy:
        key = (id(route.topic), from_client, deflate)
        known = self._policies.get(key) if quota is None else None
        if known is not None:
            return known[1]
        config = self.config
        operation = Operation.PUBLISH if from_client else Operation.SUBSCRIBE
        policy = StreamPolicy(
            from_client=from_client,
            allowed=route.topic.allows(operation),
            on_wrong_direction=config.on_wrong_direction,
            max_message_size=config.max_message_size,
            quota=quota,
            on_throttle=config.on_throttle,
            validator=self._validator(route, operation),
            on_invalid=config.on_invalid,
            deflate=deflate,
        )
        if quota is None:
            self._policies[key] = (route.topic, policy)
        return policy

    # -- reload --------------------------------------------------------------------------------

    def reload(
        self, apis: Iterable[StreamingAPI] | None = None, *, auth: AuthConfig | None = None
    ) -> None:
        """Serve ``apis`` and authenticate with ``auth`` from now on (``None``: unchanged).
        Raises :class:`~asyncapi_gw.errors.RelayError`, and changes nothing, when they are
        invalid. Open connections are then judged with :meth:`rejudge`."""
        table = self.table if apis is None else RouteTable.from_apis(apis)
        authenticator = self.authenticator if auth is None else Authenticator(auth)
        if auth is not None:
            self.config = attrs.evolve(self.config, auth=auth)
        self.table, self.authenticator = table, authenticator
        self.generation += 1
        self._checks.clear()
        self._policies.clear()

    def rejudge(self, admission: Admission, *, compressed: bool) -> Keep | Drop:
        """Judge an admitted connection (permessage-deflate on it if ``compressed``) after a
        reload: on :class:`Keep` its admission moves to the new route and principal (with a
        new quota when the API's throttling changed); :class:`Drop` says how it closes."""
        admission.generation = self.generation
        verdict = reconcile(
            admission.session,
            compressed=compressed,
            table=self.table,
            authenticator=self.authenticator,
            forward_query=self.config.forward_query,
            validated=self.validated,
        )
        if isinstance(verdict, Keep):
            admission.session = attrs.evolve(
                admission.session, route=verdict.route, principal=verdict.principal
            )
            if verdict.quota_changed and admission.opened:
                self._take_quota(admission)
        return verdict

    def expires_in(self, admission: Admission) -> float | None:
        """Seconds until the connection's credential stops being accepted (0 when it has; the
        connection then closes with 4001), or ``None`` when it does not expire."""
        expires_at = admission.session.principal.expires_at
        return None if expires_at is None else max(0.0, expires_at - self._wall())

    def deadline(self, admission: Admission, last_message: float, now: float) -> float | None:
        """Seconds until a connection must close, for its credential's expiry or for
        ``idle_timeout`` without a message since ``last_message`` (``now`` on that clock), or
        ``None`` when neither can come: how long a front that times its connections itself
        (the ASGI app, the ``websockets`` handler path) waits before asking :meth:`overdue`."""
        idle = self.config.idle_timeout
        delays = [
            delay
            for delay in (
                self.expires_in(admission),
                None if idle is None else last_message + idle - now,
            )
            if delay is not None
        ]
        return max(0.0, min(delays)) if delays else None

    def overdue(
        self, admission: Admission, last_message: float, now: float
    ) -> tuple[int, str] | None:
        """The close code and reason once :meth:`deadline` has come: an expired credential
        (4001), or no message for ``idle_timeout`` (1001); ``None`` before then."""
        if self.expires_in(admission) == 0:
            return CloseCode.REVOKED, "token expired"
        idle = self.config.idle_timeout
        if idle is not None and now - last_message >= idle:
            return CloseCode.GOING_AWAY, "idle timeout"
        return None


def _subprotocols(headers: Sequence[tuple[str, str]]) -> tuple[str, ...]:
    """The subprotocols a client offers, in order, from its ``Sec-WebSocket-Protocol`` lines."""
    return tuple(
        p.strip()
        for name, value in headers
        if name.lower() == "sec-websocket-protocol"
        for p in value.split(",")
        if p.strip()
    )
