"""Event quotas: fixed windows, refill, and the per-API quota shared by connections."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from asyncapi_gw.errors import RelayError
from asyncapi_gw.model import StreamingAPI, Throttling, ThrottlingUnit
from asyncapi_gw.relay.quota import THROTTLED_MESSAGE, ConnectionQuota, Quota, QuotaRegistry


def api(throttling: Throttling | None, context: str = "/feed") -> StreamingAPI:
    return StreamingAPI(name="Feed", version="1", context=context, throttling=throttling)


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
    one = registry.for_connection(throttled)
    two = registry.for_connection(throttled)
    other = registry.for_connection(api(throttled.throttling, context="/other"))
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
    assert QuotaRegistry().for_connection(api(None)) is None


def test_registry_restarts_an_api_quota_when_its_throttling_changes() -> None:
    registry = QuotaRegistry()
    before = registry.for_connection(api(Throttling(events=1, unit=ThrottlingUnit.DAY)))
    assert before is not None
    assert before.take(0.0)
    after = registry.for_connection(api(Throttling(events=5, unit=ThrottlingUnit.DAY)))
    assert after is not None
    assert after.api is not before.api
    assert after.take(1.0)
    same = registry.for_connection(api(Throttling(events=5, unit=ThrottlingUnit.DAY)))
    assert same is not None
    assert same.api is after.api
    assert registry.for_connection(api(None)) is None
    fresh = registry.for_connection(api(Throttling(events=5, unit=ThrottlingUnit.DAY)))
    assert fresh is not None
    assert fresh.api is not after.api


def test_a_window_step_that_rounds_down_still_ends_in_the_window_of_now() -> None:
    # 10.359683559272952 - 5.359683559272953 is 4.999999999999999: four whole windows by
    # floor division, yet now - start is then exactly one window.
    quota = Quota(1, 1.0)
    quota.remaining(5.359683559272953)
    assert quota.take(10.359683559272952)
    assert not quota.take(10.359683559272952)
