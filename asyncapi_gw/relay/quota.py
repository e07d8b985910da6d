"""Event quotas: at most N events per second, minute or day, per connection, per principal and
per API.

Pure: the clock is passed in (seconds, any monotonic origin), nothing here reads it. Each quota
is a fixed window, as WSO2 counts its event limits: the first event opens a window of the unit's
length, at most ``limit`` events pass inside it, and the next window starts at the first event
after it ends, aligned to whole windows since the first one. A clock that goes back stays in the
current window. Every operation is O(1).

An event on a throttled API must pass the connection's own quota, the one the API's connections
share and, when the API limits principals (``perPrincipal``), the one its principal's
connections share (a principal: an API key, a JWT subject, or, for anonymous clients, a source
address). It uses one event of each only when all have room, so a refusal by one never spends
the others; a principal that has spent its own quota leaves the rest of the API's to others.
"""

from __future__ import annotations

from asyncapi_gw.errors import RelayError
from asyncapi_gw.model import StreamingAPI, Throttling

__all__ = [
    "OVERFLOW_PRINCIPAL",
    "THROTTLED_MESSAGE",
    "ConnectionQuota",
    "Quota",
    "QuotaRegistry",
]

THROTTLED_MESSAGE = "Error code: 4003 reason: Websocket frame throttled out"
"""The text frame WSO2 sends in answer to a frame over the quota (the frame is dropped)."""


class Quota:
    """A fixed-window counter: at most ``limit`` events per ``window`` seconds."""

    __slots__ = ("_start", "_used", "limit", "window")

    def __init__(self, limit: int, window: float) -> None:
        if limit < 1 or window <= 0:
            raise RelayError(f"a quota needs a positive limit and window, not {limit}/{window}")
        self.limit = limit
        self.window = window
        self._start: float | None = None
        self._used = 0

    @classmethod
    def from_throttling(cls, throttling: Throttling) -> Quota:
        return cls(throttling.events, throttling.unit.seconds)

    def remaining(self, now: float) -> int:
        """Events still allowed in the window that holds ``now``."""
        self._advance(now)
        return self.limit - self._used

    def take(self, now: float) -> bool:
        """Count one event at ``now`` if the window has room; ``False`` (nothing counted) if not."""
        self._advance(now)
        if self._used >= self.limit:
            return False
        self._used += 1
        return True

    def _advance(self, now: float) -> None:
        if self._start is None:
            self._start = now
        elif now - self._start >= self.window:
            self._start += (now - self._start) // self.window * self.window
            if now - self._start >= self.window:  # the step above rounded down a whole window
                self._start += self.window
            self._used = 0


class _PrincipalEntry:
    """A principal's quota on one API and how many open connections hold it."""

    __slots__ = ("holders", "quota")

    def __init__(self, quota: Quota) -> None:
        self.quota = quota
        self.holders = 0

    def idle(self, now: float) -> bool:
        """No connection holds it and its window is over: a fresh quota would be the same."""
        start = self.quota._start
        return not self.holders and (start is None or now - start >= self.quota.window)


class ConnectionQuota:
    """One connection's quota together with its API's shared one and, when the API limits
    principals, its principal's; every one of them must allow an event."""

    __slots__ = ("_entry", "api", "connection", "principal")

    def __init__(self, connection: Quota, api: Quota, principal: Quota | None = None) -> None:
        self.connection = connection
        self.api = api
        self.principal = principal
        self._entry: _PrincipalEntry | None = None

    def take(self, now: float) -> bool:
        """Count one event in every quota, or in none when any is exhausted."""
        connection, api, principal = self.connection, self.api, self.principal
        connection._advance(now)  # one event: a few calls, not one per method
        api._advance(now)
        if connection._used >= connection.limit or api._used >= api.limit:
            return False
        if principal is not None:
            principal._advance(now)
            if principal._used >= principal.limit:
                return False
            principal._used += 1
        connection._used += 1
        api._used += 1
        return True

    def take_many(self, now: float, count: int) -> int:
        """Count up to ``count`` events at ``now`` in every quota: as many as all have room
        for, the same as that many :meth:`take` calls before the first refusal (so no call,
        for ``count`` 0: no window opens)."""
        if count <= 0:
            return 0
        connection, api, principal = self.connection, self.api, self.principal
        connection._advance(now)
        api._advance(now)
        granted = min(count, connection.limit - connection._used, api.limit - api._used)
        if principal is not None:
            principal._advance(now)
            granted = min(granted, principal.limit - principal._used)
        granted = max(0, granted)
        connection._used += granted
        api._used += granted
        if principal is not None:
            principal._used += granted
        return granted

    def release(self) -> None:
        """The connection ended: its principal's quota may be forgotten once idle."""
        entry, self._entry = self._entry, None
        if entry is not None:
            entry.holders -= 1


OVERFLOW_PRINCIPAL = "(overflow)"
"""The principal that new principals share once :class:`QuotaRegistry` holds its maximum."""


class QuotaRegistry:
    """The per-API shared quotas of one relay and the per-principal ones, handing out
    per-connection quotas.

    APIs are keyed by gateway path (unique among the APIs a relay serves). When an API comes
    back with a different throttling (a reload), its shared and principal quotas start afresh.

    A principal's quota lives while a connection holds it and until its window ends; idle ones
    are swept at most every ``sweep_interval`` seconds, so memory follows the principals seen
    within one window. At most ``max_principals`` are held: past that, new principals share
    one quota (:data:`OVERFLOW_PRINCIPAL`), so that a flood of source addresses can neither
    grow memory nor reset anyone's count. ``principal_limit`` overrides each throttled API's
    ``per_principal`` limit.
    """

    __slots__ = (
        "_next_sweep",
        "_principals",
        "_shared",
        "max_principals",
        "principal_limit",
        "sweep_interval",
    )

    def __init__(
        self,
        *,
        principal_limit: int | None = None,
        max_principals: int = 100_000,
        sweep_interval: float = 10.0,
    ) -> None:
        self._shared: dict[str, tuple[Throttling, Quota]] = {}
        self._principals: dict[tuple[str, str], tuple[Throttling, _PrincipalEntry]] = {}
        self._next_sweep = 0.0
        self.principal_limit = principal_limit
        self.max_principals = max_principals
        self.sweep_interval = sweep_interval

    def __len__(self) -> int:
        """How many principal quotas are held."""
        return len(self._principals)

    def for_connection(
        self, api: StreamingAPI, *, principal: str, now: float
    ) -> ConnectionQuota | None:
        """A new connection's quota on ``api`` for ``principal`` (a stable name, see
        :func:`~asyncapi_gw.relay.principal.quota_key`) at ``now``; ``None`` when the API is not
        throttled. The caller calls :meth:`ConnectionQuota.release` when the connection ends."""
        throttling = api.throttling
        if throttling is None:
            self._shared.pop(api.gateway_path, None)
            return None
        known = self._shared.get(api.gateway_path)
        if known is None or known[0] != throttling:
            known = (throttling, Quota.from_throttling(throttling))
            self._shared[api.gateway_path] = known
        connection = Quota.from_throttling(throttling)
        limit = self.principal_limit or throttling.per_principal
        if limit is None:
            return ConnectionQuota(connection, known[1])
        entry = self._principal(api.gateway_path, principal, throttling, limit, now)
        quota = ConnectionQuota(connection, known[1], entry.quota)
        entry.holders += 1
        quota._entry = entry
        return quota

    def _principal(
        self, path: str, principal: str, throttling: Throttling, limit: int, now: float
    ) -> _PrincipalEntry:
        principals = self._principals
        if now >= self._next_sweep:
            self._next_sweep = now + self.sweep_interval
            for key in [k for k, (_, e) in principals.items() if e.idle(now)]:
                del principals[key]
        key = (path, principal)
        known = principals.get(key)
        if known is None and len(principals) >= self.max_principals:
            key = (path, OVERFLOW_PRINCIPAL)
            known = principals.get(key)
        if known is None or known[0] != throttling or known[1].quota.limit != limit:
            known = (throttling, _PrincipalEntry(Quota(limit, throttling.unit.seconds)))
            principals[key] = known
        return known[1]
