"""Quotas shared through Redis: the I/O shell of :class:`~asyncapi_gw.relay.quota.LeasedQuota`,
and the only module that uses the ``redis`` client (the ``asyncapi-gw[redis]`` extra).

Every relay process that names the same store counts its API and principal quotas there. A
process never waits for Redis on a message: its quotas spend events leased in advance, and one
background task refills the leases, every quota that asked for it in one pipelined round trip.
The lease is one atomic Lua script that reads Redis's own clock, so every process agrees on the
windows: whole multiples of the unit since the Unix epoch (a day is a UTC day). Each window's
count is a key of its own, ``asyncapi-gw:{KIND:SECONDS:PATH[:PRINCIPAL]}:INDEX``, that expires
soon after its window ends.

When a round trip fails, the store is down: that is logged once, counted, and the quotas follow
the failure policy (:class:`~asyncapi_gw.relay.quota.QuotaStoreFailure`) while the task pings
Redis with a growing delay (50 ms doubling to 5 s, jittered) until it answers; that is logged
too. No connection is closed and nothing is raised because of it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from asyncapi_gw.relay.quota import (
    DEFAULT_LEASE,
    LeasedQuota,
    LeaseGrant,
    LeaseRequest,
    QuotaStoreFailure,
    StoreHealth,
)

__all__ = ["RedisQuotaStore"]

log = logging.getLogger("asyncapi_gw.relay")

_PREFIX = "asyncapi-gw"
_TIMEOUT = 1.0  # seconds for a connect or a reply; past it the store counts as down
_FIRST_DELAY = 0.05
_LAST_DELAY = 5.0

# KEYS[1]: the counter's name; ARGV: limit, window (ms), events wanted, events to charge, and
# the ms a window must still have for a lease from it to be of use (its answer would come too
# late otherwise). Charges the debt to the current window (even past the limit: those events
# passed), grants what is left up to the limit, and returns {granted, used, window index, ms
# left in it}.
_LEASE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local want, debt = tonumber(ARGV[3]), tonumber(ARGV[4])
local index = math.floor(now / window)
local key = KEYS[1] .. ':' .. index
local used = tonumber(redis.call('GET', key) or '0') + debt
local left = (index + 1) * window - now
if left <= tonumber(ARGV[5] or '0') then
    want = 0
end
local granted = math.max(0, math.min(want, limit - used))
if debt + granted > 0 then
    redis.call('INCRBY', key, debt + granted)
    redis.call('PEXPIRE', key, left + 60000)
end
return {granted, used + granted, index, left}
"""
_LEASE_SHA = hashlib.sha1(_LEASE.encode(), usedforsecurity=False).hexdigest()


def _without_password(url: str) -> str:
    """``url`` as logs show it: no credentials."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=host))


class RedisQuotaStore:
    """Shared quotas counted in the Redis at ``url`` (``redis://HOST:PORT/DB``, ``rediss://``
    for TLS, ``unix:///PATH?db=N``), each process passing up to ``lease`` events of a quota on
    credit while it waits for Redis (its leases follow its traffic, see
    :class:`~asyncapi_gw.relay.quota.LeasedQuota`), and ``failure`` deciding while Redis cannot
    be reached.

    Its quotas may be made before the event loop runs; the refill task starts with
    :meth:`start` or on the first refill. :meth:`close` stops it and closes the connections.
    """

    def __init__(
        self,
        url: str,
        *,
        failure: QuotaStoreFailure = QuotaStoreFailure.LOCAL,
        lease: int = DEFAULT_LEASE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.name = _without_password(url)
        self.health = StoreHealth(failure)
        self.lease = lease
        self._clock = clock
        self._client = aioredis.Redis.from_url(
            url,
            socket_timeout=_TIMEOUT,
            socket_connect_timeout=_TIMEOUT,
            retry=Retry(NoBackoff(), 0),  # the refill task has its own backoff
            health_check_interval=0,
        )
        self._pending: list[LeasedQuota] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def shared(self, key: str, limit: int, window: float) -> LeasedQuota:
        """The quota counted as ``key`` in this store."""
        return LeasedQuota(
            f"{_PREFIX}:{{{key}}}",
            limit,
            window,
            lease=self.lease,
            health=self.health,
            notify=self._refill,
        )

    def start(self) -> None:
        """Connect and load the lease script in the background now, so that the first lease a
        quota needs under traffic is one round trip (connecting and loading the script are
        several, each slower on a busy event loop). Redis unreachable: the outage begins now
        (logged, the failure policy) rather than at the first event."""
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run(prepare=True))

    async def close(self) -> None:
        """Stop refilling and close the connections to Redis."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # The client may swallow a cancellation while it connects; the task then ends at
            # its next turn (it sees the store closed), within a connect timeout.
            self._wake.set()
            await asyncio.wait({task}, timeout=2 * _TIMEOUT)
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: a failure while closing is not news
        await self._client.aclose()

    def _refill(self, quota: LeasedQuota) -> None:
        self._pending.append(quota)
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run())
        self._wake.set()

    async def _run(self, *, prepare: bool = False) -> None:
        if prepare:
            try:
                await self._client.script_load(_LEASE)
            except (RedisError, OSError) as exc:
                await self._reconnect(exc)
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            if not batch or self._closed:
                continue
            sent = self._clock()
            requests = [quota.request(sent) for quota in batch]
            try:
                replies = await self._lease(requests)
            except (RedisError, OSError) as exc:
                for quota in batch:
                    quota.failed()
                await self._reconnect(exc)
                continue
            now = self._clock()
            self.health.leases += len(batch)
            for quota, request, reply in zip(batch, requests, replies, strict=True):
                granted, used, index, left = (int(value) for value in reply)
                quota.granted(request, LeaseGrant(granted, used, index, left), sent=sent, now=now)

    async def _lease(self, requests: list[LeaseRequest]) -> list[list[int]]:
        """One pipelined round trip for every request (two more when Redis lost the script)."""
        try:
            return await self._execute(requests)
        except NoScriptError:  # a new or restarted Redis
            await self._client.script_load(_LEASE)
            return await self._execute(requests)

    async def _execute(self, requests: list[LeaseRequest]) -> list[list[int]]:
        async with self._client.pipeline(transaction=False) as pipe:
            for r in requests:
                pipe.evalsha(
                    _LEASE_SHA, 1, r.key, r.limit, r.window_ms, r.want, r.debt, r.min_left_ms
                )
            replies: list[list[int]] = await pipe.execute()
        return replies

    async def _reconnect(self, exc: BaseException) -> None:
        """Redis did not answer: down until a ping succeeds, retried with a growing delay."""
        health = self.health
        health.errors += 1
        if not health.up:
            return
        health.up = False
        health.outages += 1
        began = self._clock()
        log.warning(
            "quota store %s unreachable (%s): %s quotas until it answers",
            self.name,
            exc,
            health.failure.value,
        )
        delay = _FIRST_DELAY
        while True:
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # noqa: S311 - jitter
            if self._closed:  # checked after the sleep: a cancelled ping may come back here
                return
            try:
                await self._client.ping()
            except (RedisError, OSError):
                health.errors += 1
                delay = min(delay * 2, _LAST_DELAY)
                if self._closed:
                    return
            else:
                break
        health.up = True
        log.warning("quota store %s answers again after %.1f s", self.name, self._clock() - began)
