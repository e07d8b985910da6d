"""Event quotas: fixed windows, refill, the per-API quota shared by connections and the
per-principal quotas, with their bounded memory (an injected clock throughout)."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from asyncapi_gw.errors import RelayError
from asyncapi_gw.model import StreamingAPI, Throttling, ThrottlingUnit
from asyncapi_gw.relay.quota import THROTTLED_MESSAGE, ConnectionQuota, Quota, QuotaRegistry


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
