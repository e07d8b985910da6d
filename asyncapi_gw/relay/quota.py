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

The API's and the principals' quotas are this process's own, unless a shared store counts them
for every process and instance that uses it (:class:`LeasedQuota`, whose I/O shell is
:mod:`asyncapi_gw.relay.quota_store`); a connection's own quota is always local.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from typing import Protocol

import attrs

from asyncapi_gw.errors import RelayError
from asyncapi_gw.model import StreamingAPI, Throttling

__all__ = [
    "DEFAULT_LEASE",
    "OVERFLOW_PRINCIPAL",
    "THROTTLED_MESSAGE",
    "ConnectionQuota",
    "LeaseGrant",
    "LeaseRequest",
    "LeasedQuota",
    "Quota",
    "QuotaRegistry",
    "QuotaStoreFailure",
    "SharedQuota",
    "SharedQuotas",
    "StoreHealth",
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

    def room(self, now: float) -> int:
        """Events that may pass now (:meth:`remaining`, as :class:`SharedQuota` asks it)."""
        self._advance(now)
        return self.limit - self._used

    def spend(self, count: int) -> None:
        """Count ``count`` events that :meth:`room` allowed a moment ago."""
        self._used += count

    def idle(self, now: float) -> bool:
        """Its window is over (or never opened): a fresh quota would be the same."""
        return self._start is None or now - self._start >= self.window

    def _advance(self, now: float) -> None:
        if self._start is None:
            self._start = now
        elif now - self._start >= self.window:
            self._start += (now - self._start) // self.window * self.window
            if now - self._start >= self.window:  # the step above rounded down a whole window
                self._start += self.window
            self._used = 0


class SharedQuota(Protocol):
    """A quota that several connections share: the API's, a principal's."""

    @property
    def limit(self) -> int: ...

    def room(self, now: float) -> int:
        """How many events may pass at ``now``."""
        ...

    def spend(self, count: int) -> None:
        """Count ``count`` events that :meth:`room` allowed just before, at the same time."""
        ...

    def idle(self, now: float) -> bool:
        """Nothing of it is worth keeping at ``now``."""
        ...


class QuotaStoreFailure(enum.Enum):
    """What shared quotas do while their store cannot be reached (events already leased
    still pass)."""

    LOCAL = "local"
    """Each process enforces every limit on its own, as without a store."""
    OPEN = "open"
    """The API and principal quotas let everything pass; per-connection quotas still hold."""
    CLOSED = "closed"
    """Every event subject to an API or principal quota is refused."""


_UNLIMITED = 1 << 62

DEFAULT_LEASE = 100
"""The events a process may pass on credit, per shared quota, and its first lease's size."""

_GROWTH = 8  # a lease that ran out before its refill came: the next asks this many times more
_LEASE_SECONDS = 0.25  # a lease is sized to last this long at the rate its events are spent,
_LEASE_TRIPS = 4  # or this many round trips when they are slower
_RATE_OVER = 0.1  # seconds at least over which that rate is measured


class StoreHealth:
    """Whether the shared store answers, what to do when it does not, and its counters (for
    ``/metrics``); one per store, shared by its quotas. The store's shell updates it."""

    __slots__ = ("errors", "failure", "leases", "outages", "up")

    def __init__(self, failure: QuotaStoreFailure = QuotaStoreFailure.LOCAL) -> None:
        self.failure = failure
        self.up = True
        self.outages = 0  # times it went from answering to not answering
        self.leases = 0  # lease requests it answered
        self.errors = 0  # round trips that failed


@attrs.frozen
class LeaseRequest:
    """What one round trip asks of the store for one quota: charge ``debt`` events already
    passed to the current window of the counter ``key`` and grant up to ``want`` more, never
    past ``limit`` events in a window of ``window_ms`` milliseconds, nor when the window has
    ``min_left_ms`` or less left (the lease would expire before it could be spent)."""

    key: str
    limit: int
    window_ms: int
    want: int
    debt: int
    min_left_ms: int = 0


@attrs.frozen
class LeaseGrant:
    """The store's answer: ``granted`` events, ``used`` events counted in window number
    ``index`` after this request, which ends ``remaining_ms`` milliseconds after the store
    looked at its clock."""

    granted: int
    used: int
    index: int
    remaining_ms: int


class LeasedQuota:
    """A shared quota counted in a store that other processes use too; events pass from a
    lease of up to ``lease`` events that the store granted this process (already counted
    there), so that no event waits for the store.

    Windows are the store's: whole multiples of the unit since the Unix epoch on the store's
    clock, the same for every process. A lease belongs to one window and expires with it. The
    store answers with the time left in its window, read somewhere between this process
    sending the request and receiving the answer, so the window ends between ``sent + left``
    and ``received + left`` on this clock: the lease expires at the first (less a millisecond,
    the store's clock being read in whole milliseconds), so it is never spent after its window
    ended; the credit is renewed only at the second, so no credit of a new window is given
    while the store may still count the old one. When the lease is used up before the next one
    comes (a new window, a burst), events pass on credit, and the next request charges them
    (at once when they passed while an answer was on its way); while the store answers,
    credit and uncharged events together never exceed ``lease``; once the store reports the
    window's limit reached, nothing passes on credit until the window ends. So every process
    passes at most ``lease`` events in a window that the store did not count in it, and the
    events passed in one window stay within ``limit + W * lease`` for ``W`` quota objects of
    the key (one per process; a reload that changes the throttling makes a second until the
    old connections end). Once it holds half a lease or less (or owes credit), it asks
    ``notify`` for a refill, once until the answer. This assumes this process's monotonic
    clock and the store's run at the same rate (no suspended VM, no stepped clock).

    The lease it asks for follows its traffic: ``lease`` events at first, then what lasts a
    quarter of a second or four round trips, whichever is longer, at the rate it spends events
    (measured over 0.1 s at least, at each answer), and eight times more at once when a lease
    ran out while its refill was on the way (the events after it pass on credit, or are
    refused, for want of a round trip, not of quota; a measure right after that only lets it
    grow); never fewer than ``lease`` nor more than ``max(lease, limit // 10)``, nor more than
    the rate needs until the window's end. The store grants nothing from a window with less
    than two round trips left (the lease would expire on its way). Granted events are counted
    in the store before they pass, so a larger lease does not loosen the bound; it only lets a
    process hold more unspent when a window ends: at most one and a half of the largest lease.

    While ``health`` says the store is down, leased events still pass, then its ``failure``
    policy decides; ``local`` counts on this process's own :class:`Quota` of the same limit,
    which counts every event that passes here at any time. A quota whose last round trip
    failed stays under the policy until the store answers it, even once the store answers
    again (its credit may have gone while that round trip was lost); what passes then is
    charged with the next lease.
    """

    __slots__ = (
        "_credit",
        "_debt",
        "_dry",
        "_end",
        "_exhausted",
        "_grew",
        "_growing",
        "_health",
        "_index",
        "_local",
        "_next",
        "_notify",
        "_rate",
        "_requested",
        "_rtt",
        "_since",
        "_spent",
        "_stale",
        "_tokens",
        "asking",
        "key",
        "lease",
        "limit",
        "most",
        "window",
    )

    def __init__(
        self,
        key: str,
        limit: int,
        window: float,
        *,
        lease: int,
        health: StoreHealth,
        notify: Callable[[LeasedQuota], None],
    ) -> None:
        self._local = Quota(limit, window)
        if lease < 1:
            raise RelayError(f"a lease needs at least one event, not {lease}")
        self.key = key
        self.limit = limit
        self.window = window
        self.lease = min(lease, max(1, limit // 10))
        self.most = max(self.lease, limit // 10)  # the largest lease it asks for
        self.asking = self.lease  # the lease its next request asks for
        self._health = health
        self._notify = notify
        self._tokens = 0  # leased, not spent
        self._debt = 0  # passed on credit, not charged yet
        self._credit = self.lease  # may still pass on credit in this window
        self._exhausted = False  # the store's count reached the limit in this window
        self._index: int | None = None  # the store's window number, once known
        self._end = -math.inf  # when that window ends on our clock, at the earliest
        self._next = -math.inf  # when it has ended, at the latest
        self._requested = False
        self._stale = False  # its last refill failed: the failure policy until one succeeds
        self._dry = False  # its lease ran out while a refill was on the way
        self._grew = False  # a lease ran dry since the last measure (asking grew)
        self._growing = False  # the request on its way asks for a grown lease
        self._rtt = 0.0  # the last round trip, seconds
        self._rate = 0.0  # events spent a second, at the last measure
        self._spent = 0  # events spent since _since
        self._since: float | None = None  # since when (the first answer) they are counted

    def room(self, now: float) -> int:
        if now >= self._end:
            self._tokens = 0  # the lease went with its window
            if now >= self._next:
                self._roll(now)
        local = self._local.room(now)
        health = self._health
        if health.up:
            if not self._stale:
                if self._exhausted:
                    return self._tokens
                room = self._tokens + self._credit
                if not room and not self._requested:  # its last refill failed: ask again
                    self._requested = True
                    self._notify(self)
                return room
            if not self._requested:  # the store answers again, but not yet to this quota
                self._requested = True
                self._notify(self)
        failure = health.failure
        if failure is QuotaStoreFailure.LOCAL:
            return max(self._tokens, local)
        if failure is QuotaStoreFailure.OPEN:
            return _UNLIMITED
        return self._tokens

    def spend(self, count: int) -> None:
        self._local._used += count  # room() advanced its window
        self._spent += count
        tokens = self._tokens
        if self._requested and not self._exhausted and 0 < tokens <= count:
            # the lease ran out while its refill was on the way (unless that refill is a
            # grown one already: it answers this)
            self._dry = not self._growing
        if count <= tokens:
            self._tokens = tokens - count
        else:
            self._tokens = 0
            if self._health.up:
                count -= tokens
                self._debt += count
                self._credit = max(0, self._credit - count)
        if (
            not self._requested
            and self._health.up
            and (self._debt or (not self._exhausted and self._tokens * 2 <= self.asking))
        ):
            self._requested = True
            self._notify(self)

    def idle(self, now: float) -> bool:
        return now >= self._next and not self._debt and self._local.idle(now)

    def request(self, now: float | None = None) -> LeaseRequest:
        """The next round trip's request, sent at ``now``: the debt, and a whole lease when
        half a lease or less is left (on top of it, so that a round trip brings as many events
        as it can), else what tops it up to a lease; a larger one when the last ran out before
        its refill came, and no more than the spending rate needs until the window's end
        (what is left unspent then is lost). It carries twice the last round trip as
        ``min_left_ms``: the store grants nothing from a window with less left."""
        self._growing = self._dry
        if self._dry:
            self._dry = False
            self._grew = True
            self.asking = min(self.most, self.asking * _GROWTH)
        tokens, asking = self._tokens, self.asking
        want = 0 if self._exhausted else asking if tokens * 2 <= asking else asking - tokens
        if now is not None and self._rate and now < self._end:
            want = min(want, max(0, math.ceil(self._rate * (self._end - now)) - tokens))
        return LeaseRequest(
            self.key,
            self.limit,
            round(self.window * 1000),
            want,
            self._debt,
            math.ceil(2000 * self._rtt),
        )

    def granted(self, request: LeaseRequest, grant: LeaseGrant, *, sent: float, now: float) -> None:
        """The store answered ``request``, sent at ``sent``, at ``now``."""
        self._requested = self._stale = self._growing = False
        self._debt = max(0, self._debt - request.debt)
        self._rtt = now - sent
        self._size(now)
        end = sent + (grant.remaining_ms - 1) / 1000
        if end <= now:  # the window it leased from is over: its lease is lost, not overspent
            if grant.used < self.limit:  # what it charged is counted: as much credit again
                self._credit = max(0, min(self.lease - self._debt, self._credit + request.debt))
            self._charge_the_rest()
            return
        if grant.index != self._index:  # a new window: what it passed since is not counted
            self._index = grant.index
            self._tokens = 0
            self._credit = max(0, self.lease - self._debt)
        self._end = end
        self._next = now + grant.remaining_ms / 1000
        self._tokens += grant.granted
        self._exhausted = grant.used >= self.limit
        if self._exhausted:
            self._credit = 0
        elif not self._debt:
            self._credit = self.lease
        self._charge_the_rest()

    def _charge_the_rest(self) -> None:
        """Ask at once to charge what passed on credit while the answer was on its way: an
        idle quota must owe nothing (it could never be forgotten)."""
        if self._debt and self._health.up and not self._requested:
            self._requested = True
            self._notify(self)

    def failed(self) -> None:
        """The round trip for this quota failed: it may ask again, and the failure policy
        decides until the store answers it."""
        self._requested = False
        self._stale = True

    def _size(self, now: float) -> None:
        """The next leases' size, from the rate events were spent since the last measure and
        the round trip: enough for a quarter of a second or four round trips. Refusals while a
        lease ran dry hold the spent rate down, so a measure after one only lets it grow."""
        since = self._since
        if since is None:
            self._since = now
        elif now - since >= _RATE_OVER:
            self._rate = rate = self._spent / (now - since)
            horizon = max(_LEASE_SECONDS, _LEASE_TRIPS * self._rtt)
            wanted = min(self.most, max(self.lease, int(rate * horizon)))
            if wanted > self.asking or not self._grew:
                self.asking = wanted
            self._grew = False
            self._spent = 0
            self._since = now

    def _roll(self, now: float) -> None:
        """The window ended, surely: credit for the next (less what is not charged yet)."""
        if self._index is None:
            return  # no window known yet: none ended
        ended = math.floor((now - self._next) / self.window) + 1
        self._index += ended
        self._end += ended * self.window
        self._next += ended * self.window
        self._tokens = 0
        self._exhausted = False
        self._credit = max(0, self.lease - self._debt)


class SharedQuotas(Protocol):
    """Makes the quotas an API's or a principal's connections share."""

    def shared(self, key: str, limit: int, window: float) -> SharedQuota:
        """The quota counted as ``key``; a new quota object, that starts counting afresh only
        when the store keeps no count of its own."""
        ...


class _LocalQuotas:
    """Shared quotas counted in this process only."""

    def shared(self, key: str, limit: int, window: float) -> SharedQuota:
        return Quota(limit, window)


class _PrincipalEntry:
    """A principal's quota on one API and how many open connections hold it."""

    __slots__ = ("holders", "quota")

    def __init__(self, quota: SharedQuota) -> None:
        self.quota = quota
        self.holders = 0

    def idle(self, now: float) -> bool:
        """No connection holds it and its window is over: a fresh quota would be the same."""
        return not self.holders and self.quota.idle(now)


class ConnectionQuota:
    """One connection's quota together with its API's shared one and, when the API limits
    principals, its principal's; every one of them must allow an event."""

    __slots__ = ("_entry", "api", "connection", "principal")

    def __init__(
        self, connection: Quota, api: SharedQuota, principal: SharedQuota | None = None
    ) -> None:
        self.connection = connection
        self.api = api
        self.principal = principal
        self._entry: _PrincipalEntry | None = None

    def take(self, now: float) -> bool:
        """Count one event in every quota, or in none when any is exhausted."""
        connection, api, principal = self.connection, self.api, self.principal
        connection._advance(now)  # one event: a few calls, not one per method
        if connection._used >= connection.limit or api.room(now) < 1:
            return False
        if principal is not None:
            if principal.room(now) < 1:
                return False
            principal.spend(1)
        connection._used += 1
        api.spend(1)
        return True

    def take_many(self, now: float, count: int) -> int:
        """Count up to ``count`` events at ``now`` in every quota: as many as all have room
        for, the same as that many :meth:`take` calls before the first refusal (so no call,
        for ``count`` 0: no window opens)."""
        if count <= 0:
            return 0
        connection, api, principal = self.connection, self.api, self.principal
        connection._advance(now)
        granted = min(count, connection.limit - connection._used, api.room(now))
        if principal is not None:
            granted = min(granted, principal.room(now))
        if granted <= 0:
            return 0
        connection._used += granted
        api.spend(granted)
        if principal is not None:
            principal.spend(granted)
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
    back with a different throttling (a reload), its shared and principal quotas start afresh
    (in a store, they go on counting under the same key).

    A principal's quota lives while a connection holds it and until its window ends; idle ones
    are swept at most every ``sweep_interval`` seconds, so memory follows the principals seen
    within one window. At most ``max_principals`` are held: past that, new principals share
    one quota (:data:`OVERFLOW_PRINCIPAL`), so that a flood of source addresses can neither
    grow memory nor reset anyone's count. ``principal_limit`` overrides each throttled API's
    ``per_principal`` limit. ``shared`` makes the API's and the principals' quotas (by default
    this process's own, :class:`Quota`).
    """

    __slots__ = (
        "_next_sweep",
        "_principals",
        "_shared",
        "_store",
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
        shared: SharedQuotas | None = None,
    ) -> None:
        self._shared: dict[str, tuple[Throttling, SharedQuota]] = {}
        self._principals: dict[tuple[str, str], tuple[Throttling, _PrincipalEntry]] = {}
        self._next_sweep = 0.0
        self._store = shared or _LocalQuotas()
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
        path = api.gateway_path
        if throttling is None:
            self._shared.pop(path, None)
            return None
        window = throttling.unit.seconds
        known = self._shared.get(path)
        if known is None or known[0] != throttling:
            shared = self._store.shared(f"api:{window}:{path}", throttling.events, window)
            known = (throttling, shared)
            self._shared[path] = known
        connection = Quota.from_throttling(throttling)
        limit = self.principal_limit or throttling.per_principal
        if limit is None:
            return ConnectionQuota(connection, known[1])
        entry = self._principal(path, principal, throttling, limit, now)
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
            window = throttling.unit.seconds
            name = f"principal:{window}:{path}:{key[1]}"
            known = (throttling, _PrincipalEntry(self._store.shared(name, limit, window)))
            principals[key] = known
        return known[1]
