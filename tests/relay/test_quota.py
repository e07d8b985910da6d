"""Event quotas: fixed windows, refill, the per-API quota shared by connections and the
per-principal quotas, with their bounded memory (an injected clock throughout)."""

from __future__ import annotations

import heapq
import math
import random

import attrs
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from asyncapi_gw.errors import RelayError
from asyncapi_gw.model import StreamingAPI, Throttling, ThrottlingUnit
from asyncapi_gw.relay.quota import (
    THROTTLED_MESSAGE,
    ConnectionQuota,
    LeasedQuota,
    LeaseGrant,
    LeaseRequest,
    Quota,
    QuotaRegistry,
    QuotaStoreFailure,
    StoreHealth,
)


def api(throttling: Throttling | None, context: str = "/feed") -> StreamingAPI:
    return StreamingAPI(name="Feed", version="1", context=context, throttling=throttling)


def day(events: int) -> StreamingAPI:
    return api(Throttling(events=events, unit=ThrottlingUnit.DAY))


def test_wso2_throttled_text() -> None:
    assert THROTTLED_MESSAGE == "Error code: 4003 reason: Websocket frame throttled out"


def test_limit_within_a_window_then_refill() -> None:
    quota = Quota(3, 60)
    assert [quota.take(100.0 + i) for i in range(5)] == [True, True, True, False, False]
    assert quota.remaining(159.9) == 0
    assert not quota.take(159.999)
    assert quota.take(160.0)  # the window opened by the first event at 100 has ended
    assert quota.remaining(160.0) == 2


def test_windows_stay_aligned_to_the_first() -> None:
    quota = Quota(1, 10)
    assert quota.take(5.0)
    assert quota.take(27.0)  # window [25, 35), not [27, 37)
    assert not quota.take(34.9)
    assert quota.take(35.0)


def test_a_long_gap_refills_once() -> None:
    quota = Quota(2, 1)
    assert quota.take(0.0)
    assert quota.take(0.5)
    assert not quota.take(0.9)
    assert quota.remaining(1_000_000.25) == 2


def test_refused_events_are_not_counted() -> None:
    quota = Quota(1, 1)
    assert quota.take(0.0)
    for _ in range(100):
        assert not quota.take(0.5)
    assert quota.take(1.0)
    assert not quota.take(1.5)


def test_a_clock_going_back_stays_in_the_window() -> None:
    quota = Quota(2, 10)
    assert quota.take(50.0)
    assert quota.take(40.0)
    assert not quota.take(45.0)
    assert quota.take(60.0)


@pytest.mark.parametrize(
    ("unit", "seconds"),
    [(ThrottlingUnit.SECOND, 1), (ThrottlingUnit.MINUTE, 60), (ThrottlingUnit.DAY, 86_400)],
)
def test_from_throttling(unit: ThrottlingUnit, seconds: int) -> None:
    quota = Quota.from_throttling(Throttling(events=2, unit=unit))
    assert (quota.limit, quota.window) == (2, seconds)
    assert quota.take(0.0)
    assert quota.take(seconds - 0.001)
    assert not quota.take(seconds - 0.0005)
    assert quota.take(float(seconds))


@pytest.mark.parametrize(("limit", "window"), [(0, 1), (-1, 1), (1, 0), (1, -5)])
def test_a_quota_needs_positive_numbers(limit: int, window: float) -> None:
    with pytest.raises(RelayError):
        Quota(limit, window)


@given(
    st.integers(min_value=1, max_value=5),
    st.sampled_from([0.5, 1.0, 60.0]),
    st.lists(st.floats(min_value=0, max_value=300, allow_nan=False), max_size=60),
)
def test_exactly_min_of_limit_and_offered_per_window(
    limit: int, window: float, times: list[float]
) -> None:
    times.sort()
    quota = Quota(limit, window)
    taken = [quota.take(t) for t in times]
    if not times:
        return
    offered: dict[int, int] = {}
    passed: dict[int, int] = {}
    for t, ok in zip(times, taken, strict=True):
        index = int((t - times[0]) // window)
        offered[index] = offered.get(index, 0) + 1
        passed[index] = passed.get(index, 0) + ok
    assert all(passed[i] == min(limit, offered[i]) for i in offered)


def test_connection_and_api_both_must_allow() -> None:
    shared = Quota(3, 60)
    first = ConnectionQuota(Quota(2, 60), shared)
    second = ConnectionQuota(Quota(2, 60), shared)
    assert first.take(0.0)
    assert first.take(1.0)
    assert not first.take(2.0)  # the connection's own limit
    assert shared.remaining(2.0) == 1  # ...did not spend the API's
    assert second.take(3.0)
    assert not second.take(4.0)  # the API's limit, shared across connections
    assert second.connection.remaining(4.0) == 1  # ...did not spend the connection's
    assert first.take(60.0)
    assert second.take(60.0)


@given(
    st.integers(1, 6),
    st.integers(1, 6),
    st.lists(st.tuples(st.floats(0, 5), st.integers(0, 8)), max_size=20),
)
@example(connection_limit=1, api_limit=1, calls=[(2.359683559272953, 0), (3.0, 0), (5.0, 2)])
def test_take_many_is_takes_until_the_first_refusal(
    connection_limit: int, api_limit: int, calls: list[tuple[float, int]]
) -> None:
    many = ConnectionQuota(Quota(connection_limit, 1.0), Quota(api_limit, 2.0))
    one_by_one = ConnectionQuota(Quota(connection_limit, 1.0), Quota(api_limit, 2.0))
    now = 0.0
    for step, count in calls:
        now += step
        granted = 0
        while granted < count and one_by_one.take(now):
            granted += 1
        assert many.take_many(now, count) == granted
        assert many.connection.remaining(now) == one_by_one.connection.remaining(now)
        assert many.api.remaining(now) == one_by_one.api.remaining(now)


def test_registry_shares_one_quota_per_api() -> None:
    registry = QuotaRegistry()
    throttled = api(Throttling(events=2, unit=ThrottlingUnit.SECOND))
    one = registry.for_connection(throttled, principal="p", now=0.0)
    two = registry.for_connection(throttled, principal="p", now=0.0)
    other_api = api(throttled.throttling, context="/other")
    other = registry.for_connection(other_api, principal="p", now=0.0)
    assert one is not None
    assert two is not None
    assert other is not None
    assert one.api is two.api
    assert one.connection is not two.connection
    assert other.api is not one.api
    assert one.take(0.0)
    assert two.take(0.1)
    assert not one.take(0.2)
    assert not two.take(0.3)
    assert other.take(0.3)


def test_registry_without_throttling() -> None:
    assert QuotaRegistry().for_connection(api(None), principal="p", now=0.0) is None


def test_registry_restarts_an_api_quota_when_its_throttling_changes() -> None:
    registry = QuotaRegistry()
    before = registry.for_connection(day(1), principal="p", now=0.0)
    assert before is not None
    assert before.take(0.0)
    after = registry.for_connection(day(5), principal="p", now=0.0)
    assert after is not None
    assert after.api is not before.api
    assert after.take(1.0)
    same = registry.for_connection(day(5), principal="p", now=0.0)
    assert same is not None
    assert same.api is after.api
    assert registry.for_connection(api(None), principal="p", now=0.0) is None
    fresh = registry.for_connection(day(5), principal="p", now=0.0)
    assert fresh is not None
    assert fresh.api is not after.api


def test_a_window_step_that_rounds_down_still_ends_in_the_window_of_now() -> None:
    # 10.359683559272952 - 5.359683559272953 is 4.999999999999999: four whole windows by
    # floor division, yet now - start is then exactly one window.
    quota = Quota(1, 1.0)
    quota.remaining(5.359683559272953)
    assert quota.take(10.359683559272952)
    assert not quota.take(10.359683559272952)


def per_principal(
    events: int, limit: int, unit: ThrottlingUnit = ThrottlingUnit.MINUTE
) -> StreamingAPI:
    return api(Throttling(events=events, unit=unit, per_principal=limit))


def test_a_principal_cannot_spend_the_whole_api_quota() -> None:
    registry = QuotaRegistry()
    feed = per_principal(10, 3)
    # anonymous clients of one address, over several connections, share one principal
    anonymous = [
        registry.for_connection(feed, principal="address:10.0.0.9", now=0.0) for _ in range(3)
    ]
    granted = sum(q.take(0.0) for q in anonymous for _ in range(5) if q is not None)
    assert granted == 3
    alice = registry.for_connection(feed, principal="oauth2:alice", now=0.0)
    assert alice is not None
    assert alice.take_many(0.0, 5) == 3  # her own limit, with API quota to spare
    bob = registry.for_connection(feed, principal="api_key:bob", now=0.0)
    assert bob is not None
    assert bob.take_many(0.0, 5) == 3
    carol = registry.for_connection(feed, principal="oauth2:carol", now=0.0)
    assert carol is not None
    assert carol.take_many(0.0, 5) == 1  # the API's 10 are spent
    assert alice.take(60.0)  # a new window


def test_a_principal_refusal_spends_no_other_quota() -> None:
    registry = QuotaRegistry()
    quota = registry.for_connection(per_principal(10, 1), principal="p", now=0.0)
    assert quota is not None
    assert quota.take(0.0)
    assert not quota.take(0.0)
    assert quota.connection.remaining(0.0) == 9
    assert quota.api.remaining(0.0) == 9


def test_without_per_principal_there_is_no_principal_quota() -> None:
    quota = QuotaRegistry().for_connection(day(5), principal="p", now=0.0)
    assert quota is not None
    assert quota.principal is None


def test_the_relay_override_applies_to_every_throttled_api() -> None:
    registry = QuotaRegistry(principal_limit=2)
    quota = registry.for_connection(day(5), principal="p", now=0.0)
    assert quota is not None
    assert quota.take_many(0.0, 5) == 2
    overridden = registry.for_connection(per_principal(10, 7), principal="q", now=0.0)
    assert overridden is not None
    assert overridden.principal is not None
    assert overridden.principal.limit == 2


def test_idle_principals_are_forgotten_held_ones_are_kept() -> None:
    registry = QuotaRegistry(sweep_interval=1.0)
    feed = per_principal(100, 2, ThrottlingUnit.SECOND)
    held = registry.for_connection(feed, principal="held", now=0.0)
    gone = registry.for_connection(feed, principal="gone", now=0.0)
    assert held is not None
    assert gone is not None
    assert held.take(0.0)
    assert gone.take(0.0)
    gone.release()
    gone.release()  # twice is once
    assert len(registry) == 2
    registry.for_connection(feed, principal="new", now=0.5)  # within gone's window: kept
    assert len(registry) == 3
    later = registry.for_connection(feed, principal="held", now=1.5)
    assert len(registry) == 2  # "gone" swept; "new" is held by its connection
    assert later is not None
    assert later.principal is held.principal  # one quota for the principal's connections


def test_principals_beyond_the_maximum_share_one_quota() -> None:
    registry = QuotaRegistry(max_principals=3, sweep_interval=1000.0)
    feed = per_principal(1000, 2)
    quotas = [
        registry.for_connection(feed, principal=f"address:10.0.0.{n}", now=float(n))
        for n in range(10)
    ]
    assert len(registry) == 3 + 1  # three principals and the shared overflow
    first = quotas[0]
    assert first is not None
    assert first.take_many(10.0, 5) == 2  # a flood did not reset an earlier principal
    overflow = [q for q in quotas[3:] if q is not None]
    assert len({id(q.principal) for q in overflow}) == 1
    assert sum(q.take(10.0) for q in overflow) == 2


# -- quotas leased from a shared store (the store's answers given by hand) -------------------


class Notified(list[LeasedQuota]):
    """The refills a leased quota asked for, in order."""

    def __call__(self, quota: LeasedQuota) -> None:
        self.append(quota)


def leased(
    limit: int = 100, lease: int = 10, window: float = 60.0, health: StoreHealth | None = None
) -> tuple[LeasedQuota, Notified]:
    notified = Notified()
    quota = LeasedQuota(
        "api:60:/feed", limit, window, lease=lease, health=health or StoreHealth(), notify=notified
    )
    return quota, notified


def spend(quota: LeasedQuota, now: float, count: int = 1) -> int:
    passed = min(count, max(0, quota.room(now)))
    if passed:
        quota.spend(passed)
    return passed


def test_lease_is_at_most_a_tenth_of_the_limit() -> None:
    assert leased(limit=1000, lease=10)[0].lease == 10
    assert leased(limit=50, lease=10)[0].lease == 5
    assert leased(limit=3, lease=10)[0].lease == 1
    with pytest.raises(RelayError):
        leased(lease=0)


def test_events_pass_on_credit_until_the_first_lease_which_charges_them() -> None:
    quota, notified = leased()
    assert spend(quota, 0.0, 4) == 4
    assert spend(quota, 0.0, 100) == 6  # one lease on credit, no more
    assert notified == [quota]  # once, until answered
    request = quota.request()
    assert request == LeaseRequest("api:60:/feed", 100, 60_000, want=10, debt=10)
    quota.granted(request, LeaseGrant(10, 20, 7, 30_000), sent=0.0, now=0.001)
    assert quota.room(0.002) == 20  # the lease and the credit back
    assert quota.request().debt == 0


def test_a_refill_is_asked_once_half_the_lease_is_spent() -> None:
    quota, notified = leased()
    quota.granted(quota.request(), LeaseGrant(10, 10, 7, 30_000), sent=0.0, now=0.001)
    assert spend(quota, 1.0, 4) == 4
    assert notified == []
    assert spend(quota, 1.0) == 1
    assert notified == [quota]
    assert quota.request().want == 10  # a whole lease: 15 held once it comes


def test_a_lease_expires_at_the_earliest_end_and_credit_renews_at_the_latest() -> None:
    quota, _ = leased()
    assert spend(quota, 10.0, 4) == 4  # on credit
    # sent at 10.0, answered at 10.5; the window had 20 s left when Redis ran the script (in
    # whole milliseconds): it ends between 29.999 and 30.5 on this clock
    quota.granted(quota.request(), LeaseGrant(10, 14, 7, 20_000), sent=10.0, now=10.5)
    assert quota.room(29.998) == 20  # the lease and the credit back
    assert spend(quota, 29.998, 16) == 16  # the lease, then 6 on credit (asks a refill)
    assert quota.room(29.999) == 4  # the lease is gone; the rest of this window's credit
    assert quota.room(30.499) == 4  # the store may still count window 7: no new credit
    assert quota.room(30.5) == 4  # window 8 surely: credit again, less the 6 not charged
    quota.granted(quota.request(), LeaseGrant(10, 16, 8, 59_000), sent=30.5, now=30.6)
    assert quota.room(30.6) == 20  # the 6 charged: a lease and whole credit


def test_a_lease_from_a_window_that_ended_meanwhile_is_not_spent() -> None:
    quota, _ = leased()
    quota.granted(quota.request(), LeaseGrant(10, 10, 7, 5), sent=0.0, now=0.01)
    assert quota.room(0.01) == 10  # credit only


def test_nothing_passes_on_credit_once_the_store_counted_the_limit() -> None:
    quota, notified = leased(limit=100)
    quota.granted(quota.request(), LeaseGrant(3, 100, 7, 10_000), sent=0.0, now=0.0)
    assert spend(quota, 1.0, 10) == 3
    assert notified == []  # nothing to ask for in this window
    assert quota.room(10.0) == 10  # the next window: credit again


def test_a_failed_refill_is_asked_again_when_the_lease_is_dry() -> None:
    quota, notified = leased(health=StoreHealth(QuotaStoreFailure.CLOSED))
    assert spend(quota, 0.0, 10) == 10
    quota.failed()
    assert quota.room(0.5) == 0
    assert notified == [quota, quota]


@pytest.mark.parametrize(
    ("failure", "passed"),
    [(QuotaStoreFailure.LOCAL, 100), (QuotaStoreFailure.OPEN, 500), (QuotaStoreFailure.CLOSED, 10)],
)
def test_while_the_store_is_down_leased_events_pass_then_the_policy(
    failure: QuotaStoreFailure, passed: int
) -> None:
    health = StoreHealth(failure)
    quota, notified = leased(health=health)
    quota.granted(quota.request(), LeaseGrant(10, 10, 7, 60_000), sent=0.0, now=0.0)
    assert spend(quota, 1.0, 6) == 6
    health.up = False
    assert spend(quota, 1.0, 494) == passed - 6
    assert notified == [quota]  # the one asked before the outage, none during it


@given(
    steps=st.lists(  # an answer one step in four: leases run out while refills are away
        st.tuples(st.integers(0, 3), st.integers(0, 3).map(lambda n: n == 0)),
        min_size=150,
        max_size=400,
    ),
    limit=st.integers(1, 300),  # mostly above 10 x lease: leases grow when they run dry
    lease=st.integers(1, 5),
)
def test_processes_pass_at_most_a_lease_each_beyond_the_limit_in_a_window(
    steps: list[tuple[int, bool]], limit: int, lease: int
) -> None:
    """Four processes against a model of the lease script, answers arriving in any order
    with any events in between: at most limit + 4 * lease events pass in the window."""
    counted = 0
    processes = [leased(limit=limit, lease=lease, window=86400.0) for _ in range(4)]
    inflight: list[tuple[LeasedQuota, LeaseRequest]] = []
    passed = 0
    for who, answer in steps:
        quota, notified = processes[who]
        if answer and inflight:
            quota, request = inflight.pop(who % len(inflight))
            counted += request.debt
            granted = max(0, min(request.want, limit - counted))
            counted += granted
            quota.granted(request, LeaseGrant(granted, counted, 0, 3_600_000), sent=0, now=0)
        else:
            passed += spend(quota, 1.0)
        while notified:  # the request as it is when the refill task sends it
            asked = notified.pop()
            inflight.append((asked, asked.request()))
    assert passed <= limit + 4 * processes[0][0].lease


def lease_script(counts: dict[int, int], request: LeaseRequest, at: float) -> LeaseGrant:
    """What the store's Lua script answers when it runs at ``at`` (its clock, read in whole
    milliseconds; the windows since the epoch)."""
    now_ms = math.floor(at * 1000)
    index = now_ms // request.window_ms
    used = counts.get(index, 0) + request.debt
    left = (index + 1) * request.window_ms - now_ms
    want = 0 if left <= request.min_left_ms else request.want
    granted = max(0, min(want, request.limit - used))
    counts[index] = used + granted
    return LeaseGrant(granted, used + granted, index, left)


@given(
    seed=st.integers(0, 2**32 - 1),
    processes=st.integers(1, 4),
    limit=st.sampled_from([50, 300, 2000]),
    lease=st.sampled_from([5, 10, 20]),
    latency=st.sampled_from([0.001, 0.02, 0.06]),
)
def test_the_bound_holds_across_window_ends_with_slow_round_trips(
    seed: int, processes: int, limit: int, lease: int, latency: float
) -> None:
    """Processes offering more than the limit against the lease script on a clock of its own,
    each round trip taking a random time up to Redis and back, over several 1 s windows: in
    no window do more than limit + W x L events pass (a lease is never spent after its window,
    no new credit is given while the store may still count the old one)."""
    rnd = random.Random(seed)  # the simulation's draws: its timings and bursts
    counts: dict[int, int] = {}
    passed: dict[int, int] = {}
    quotas = [leased(limit=limit, lease=lease, window=1.0) for _ in range(processes)]
    busy = [False] * processes
    events: list[tuple[float, int, str, int, tuple[LeaseRequest, float, LeaseGrant | None]]] = []
    order = 0

    def at(
        time: float, kind: str, who: int, data: tuple[LeaseRequest, float, LeaseGrant | None]
    ) -> None:
        nonlocal order
        order += 1
        heapq.heappush(events, (time, order, kind, who, data))

    offered = 1.5 * limit / processes  # events a second each
    for who in range(processes):
        at(rnd.random() * 0.01, "event", who, (LeaseRequest("", 0, 0, 0, 0), 0.0, None))
    while events:
        time, _, kind, who, (request, sent, grant) = heapq.heappop(events)
        if time > 4.5:
            break
        quota, notified = quotas[who]
        if kind == "event":
            count = rnd.choice([1, 1, 2, 5])
            passing = min(count, max(0, quota.room(time)))
            if passing:
                quota.spend(passing)
                passed[math.floor(time)] = passed.get(math.floor(time), 0) + passing
            at(time + rnd.expovariate(offered / 2.25), "event", who, (request, sent, None))
        elif kind == "store":
            grant = lease_script(counts, request, time)
            at(time + rnd.uniform(0, latency), "answer", who, (request, sent, grant))
        else:
            assert grant is not None
            quota.granted(request, grant, sent=sent, now=time)
            busy[who] = False
        if notified and not busy[who]:
            notified.clear()
            busy[who] = True
            at(time + rnd.uniform(0, latency), "store", who, (quota.request(time), time, None))
    bound = limit + processes * quotas[0][0].lease
    assert max(passed.values()) <= bound, (passed, bound)


@pytest.mark.parametrize(
    ("failure", "passed"),
    [(QuotaStoreFailure.LOCAL, 5), (QuotaStoreFailure.OPEN, 5), (QuotaStoreFailure.CLOSED, 0)],
)
def test_right_after_the_store_answers_again_the_policy_holds_until_a_lease_comes(
    failure: QuotaStoreFailure, passed: int
) -> None:
    """The credit ran out while the refill that failed was on its way: once the store answers
    again, this quota's events follow the failure policy until its own lease comes, rather
    than being throttled for a round trip although neither limit was reached."""
    health = StoreHealth(failure)
    quota, notified = leased(health=health)
    quota.granted(quota.request(), LeaseGrant(10, 10, 7, 60_000), sent=0.0, now=0.0)
    assert spend(quota, 1.0, 20) == 20  # the lease, then the credit
    assert notified == [quota]
    quota.failed()  # that refill never came back
    health.up = False
    health.up = True  # the shell pinged it back
    assert spend(quota, 2.0, 5) == passed
    assert notified == [quota, quota]  # asked again, once
    request = quota.request()
    assert request.debt == 10 + passed  # what passed meanwhile is charged too
    quota.granted(request, LeaseGrant(10, 35, 7, 58_000), sent=2.0, now=2.001)
    assert quota.room(2.002) == 20  # the lease and the credit back


def run_dry(quota: LeasedQuota, now: float) -> LeaseRequest:
    """Spend the lease and the credit one event at a time (a refill is asked for at half the
    lease, and does not come); the request then sent."""
    while spend(quota, now):
        pass
    return quota.request()


def test_a_lease_that_runs_out_before_its_refill_comes_makes_the_next_eight_times_larger() -> None:
    quota, notified = leased(limit=1_000_000, lease=10)
    quota.granted(quota.request(), LeaseGrant(10, 10, 7, 60_000), sent=0.0, now=0.0)
    wants = []
    for step in range(1, 7):  # within 0.1 s: no rate is measured yet
        request = run_dry(quota, 0.01 * step)
        wants.append(request.want)
        quota.granted(
            request, LeaseGrant(request.want, 0, 7, 60_000), sent=0.01 * step, now=0.01 * step
        )
    assert wants == [80, 640, 5120, 40960, 100_000, 100_000]  # a tenth of the limit at most
    assert notified == [quota] * 6


def drive(
    quota: LeasedQuota, rates: list[tuple[float, float]], trip: float = 0.02
) -> tuple[list[int], list[int]]:
    """Events at ``rate`` a second for ``seconds``, for each (rate, seconds), against the lease
    script (:func:`lease_script`), which runs half a ``trip`` after a request is sent and is
    answered a whole ``trip`` after: the events refused in each tenth of a second, and
    ``asking`` at each answer."""
    notified: list[LeasedQuota] = []
    quota._notify = notified.append
    refused: list[int] = []
    asking: list[int] = []
    counts: dict[int, int] = {}
    inflight: tuple[float, float, LeaseRequest, LeaseGrant] | None = None
    t = 0.0
    for rate, seconds in rates:
        end = t + seconds
        while t < end:
            if inflight is not None and inflight[0] <= t:
                _, sent, request, grant = inflight
                quota.granted(request, grant, sent=sent, now=t)
                asking.append(quota.asking)
                inflight = None
            tenth = int(t * 10)
            refused += [0] * (tenth + 1 - len(refused))
            refused[tenth] += spend(quota, t) == 0
            if notified and inflight is None:
                notified.clear()
                request = quota.request(t)
                inflight = (t + trip, t, request, lease_script(counts, request, t + trip / 2))
            t += 1 / rate
    return refused, asking


def test_a_busy_quota_leases_what_lasts_a_quarter_second_refusing_only_near_window_ends() -> None:
    """Far below the limit, events are refused for want of a round trip only while the lease
    grows, and around each window's end: the lease expires a round trip before the window
    surely ended, and the next window's first lease is a round trip away; only credit passes
    in between (about two round trips of traffic, less the credit)."""
    quota, _ = leased(limit=1_000_000, lease=10, window=1.0)
    refused, asking = drive(quota, [(20_000, 3.0)], trip=0.02)
    assert 4000 <= asking[-1] <= 6000  # 20,000 a second for 0.25 s
    assert sum(refused[3:9]) == sum(refused[11:19]) == sum(refused[21:29]) == 0
    for end in (10, 20):
        assert 0 < refused[end - 1] + refused[end] <= 2 * 0.02 * 20_000


def test_a_quiet_quota_keeps_its_first_lease_across_window_starts() -> None:
    quota, _ = leased(limit=100_000, lease=100, window=1.0)
    _, asking = drive(quota, [(5, 8.0)], trip=0.01)
    assert set(asking) == {100}  # a debt charged at each window's start does not grow it
    assert quota._tokens <= 150


def test_a_lease_shrinks_back_when_the_traffic_slows() -> None:
    quota, _ = leased(limit=1_000_000, lease=10, window=1.0)
    _, asking = drive(quota, [(20_000, 1.0), (100, 3.0)])
    assert asking[0] == 10
    assert max(asking) >= 4000
    assert asking[-1] <= 50  # 100 a second for 0.25 s: 25
    assert leased(limit=1000, lease=100)[0].most == 100  # a small limit: never grows


def test_slow_round_trips_size_the_lease_by_round_trips_and_refuse_nothing() -> None:
    """A round trip of 0.3 s (a saturated event loop, a far Redis): leases last four round
    trips at the spending rate, a lease grown for a dry one does not grow again while it is on
    its way, and once grown nothing is refused (a minute window: no window end meanwhile)."""
    quota, _ = leased(limit=10**9, lease=10, window=60.0)
    refused, asking = drive(quota, [(20_000, 6.0)], trip=0.3)
    assert 20_000 <= asking[-1] <= 30_000  # 20,000 a second for 4 x 0.3 s: 24,000
    assert max(asking) < 200_000  # x8 once per dry lease, not again for the same shortage
    assert sum(refused[20:]) == 0


def test_debt_passed_while_an_answer_was_on_its_way_is_charged_at_once() -> None:
    """Events that passed on credit after a request left are charged by a request of their
    own as soon as the answer comes: a quota that then goes quiet owes nothing and can be
    forgotten (a principal's), instead of holding its debt for ever."""
    quota, notified = leased(limit=1000, lease=10)
    assert spend(quota, 0.0) == 1
    request = quota.request()
    assert spend(quota, 0.01, 2) == 2  # while it is on its way
    notified.clear()
    quota.granted(request, LeaseGrant(10, 11, 7, 30_000), sent=0.0, now=0.02)
    assert notified == [quota]  # asked again at once, with no further event
    request = quota.request()
    assert (request.debt, request.want) == (2, 0)  # the lease it holds is whole: no more
    quota.granted(request, LeaseGrant(0, 13, 7, 30_000), sent=0.02, now=0.03)
    assert notified == [quota]  # nothing left to charge
    assert quota.idle(100.0)


def test_a_quota_whose_answers_all_come_after_their_window_keeps_passing_on_credit() -> None:
    """Round trips longer than what is left of each window: every lease is lost, but what
    was charged is counted, so the credit comes back and events go on passing (within L)."""
    quota, _ = leased(limit=1000, lease=10, window=1.0)
    passed = 0
    for second in range(5):
        passed += spend(quota, second + 0.5, 100)
        request = quota.request()
        assert request.debt > 0
        quota.granted(
            request, LeaseGrant(10, 20, second, 400), sent=second + 0.5, now=second + 0.95
        )
    assert passed == 50  # the credit, every time


def test_a_lease_that_runs_out_when_the_limit_is_reached_does_not_grow() -> None:
    quota, _ = leased(limit=1000, lease=10)
    quota.granted(quota.request(), LeaseGrant(10, 1000, 7, 30_000), sent=0.0, now=0.0)
    quota._requested = True  # as if a refill were on its way
    assert spend(quota, 0.01, 50) == 10  # the last lease; no credit: the limit is reached
    assert quota.request().want == 0
    assert quota.asking == 10  # quota, not a round trip, was short


def test_no_lease_is_granted_from_a_window_too_near_its_end_for_the_answer() -> None:
    """A request carries twice the last round trip: the script grants nothing from a window
    with that little left (the lease would expire on its way), and charges the debt."""
    quota, _ = leased(limit=1000, lease=10, window=1.0)
    assert spend(quota, 0.0, 3) == 3
    quota.granted(quota.request(), LeaseGrant(10, 13, 0, 1000), sent=0.0, now=0.2)
    assert spend(quota, 0.9, 20) == 20  # the lease and the credit
    request = quota.request()
    assert request.min_left_ms == 400
    counts = {0: 13}
    grant = lease_script(counts, request, 0.7)  # 300 ms left: too near
    assert (grant.granted, grant.used) == (0, 23)
    grant = lease_script(counts, attrs.evolve(request, debt=0), 0.5)  # 500 ms left: granted
    assert grant.granted == request.want
