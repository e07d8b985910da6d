"""Event quotas: at most N events per second, minute or day, per connection and per API.

Pure: the clock is passed in (seconds, any monotonic origin), nothing here reads it. Each quota
is a fixed window, as WSO2 counts its event limits: the first event opens a window of the unit's
length, at most ``limit`` events pass inside it, and the next window starts at the first event
after it ends, aligned to whole windows since the first one. A clock that goes back stays in the
current window. Every operation is O(1).

An event on a throttled API must pass two quotas, the connection's own and the one the API's
connections share; it uses one event of each only when both have room, so a refusal by one
never spends the other.
"""

from __future__ import annotations

from asyncapi_gw.errors import RelayError
from asyncapi_gw.model import StreamingAPI, Throttling

__all__ = ["THROTTLED_MESSAGE", "ConnectionQuota", "Quota", "QuotaRegistry"]

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


class ConnectionQuota:
    """One connection's quota together with its API's shared one; both must allow an event."""

    __slots__ = ("api", "connection")

    def __init__(self, connection: Quota, api: Quota) -> None:
        self.connection = connection
        self.api = api

    def take(self, now: float) -> bool:
        """Count one event in both quotas, or in neither when either is exhausted."""
        connection, api = self.connection, self.api
        connection._advance(now)  # one event: two calls, not eight
        api._advance(now)
        if connection._used >= connection.limit or api._used >= api.limit:
            return False
        connection._used += 1
        api._used += 1
        return True

    def take_many(self, now: float, count: int) -> int:
        """Count up to ``count`` events at ``now`` in both quotas: as many as both have room
        for, the same as that many :meth:`take` calls before the first refusal (so no call,
        for ``count`` 0: no window opens)."""
        if count <= 0:
            return 0
        connection, api = self.connection, self.api
        connection._advance(now)
        api._advance(now)
        granted = max(0, min(count, connection.limit - connection._used, api.limit - api._used))
        connection._used += granted
        api._used += granted
        return granted


class QuotaRegistry:
    """The per-API shared quotas of one relay, handing out per-connection quotas.

    APIs are keyed by gateway path (unique among the APIs a relay serves). When an API comes
    back with a different throttling (a reload), its shared quota starts afresh.
    """

    __slots__ = ("_shared",)

    def __init__(self) -> None:
        self._shared: dict[str, tuple[Throttling, Quota]] = {}

    def for_connection(self, api: StreamingAPI) -> ConnectionQuota | None:
        """A new connection's quota on ``api``; ``None`` when the API is not throttled."""
        throttling = api.throttling
        if throttling is None:
            self._shared.pop(api.gateway_path, None)
            return None
        known = self._shared.get(api.gateway_path)
        if known is None or known[0] != throttling:
            known = (throttling, Quota.from_throttling(throttling))
            self._shared[api.gateway_path] = known
        return ConnectionQuota(Quota.from_throttling(throttling), known[1])
