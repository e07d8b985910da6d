"""Quotas shared through a real Redis (``redis-server`` started per test): leases counted across
processes within the documented bound, windows on Redis's clock, and the failure policies while
Redis is killed and started again."""

from __future__ import annotations

import asyncio
import logging
import time

import attrs
import pytest
from redis_server import RedisServer
from relay_harness import api, backend, client, run, until

from asyncapi_gw.model import Throttling, ThrottlingUnit
from asyncapi_gw.relay import Relay
from asyncapi_gw.relay.quota import LeasedQuota, LeaseRequest, QuotaStoreFailure
from asyncapi_gw.relay.quota_store import RedisQuotaStore


def spend_one(quota: LeasedQuota) -> bool:
    now = time.monotonic()
    if quota.room(now) < 1:
        return False
    quota.spend(1)
    return True


def test_processes_sharing_a_store_pass_the_limit_within_the_bound(
    redis_server: RedisServer,
) -> None:
    """Three stores (what three relay processes hold) spend one API's 600-a-day quota as fast
    as they can: together they pass the limit, plus at most a lease each on credit."""
    limit, lease, processes = 600, 20, 3

    async def main() -> list[int]:
        stores = [RedisQuotaStore(redis_server.url, lease=lease) for _ in range(processes)]
        quotas = [s.shared("api:86400:/feed", limit, 86400) for s in stores]
        passed = [0] * processes
        for _ in range(3000):
            for i, quota in enumerate(quotas):
                passed[i] += spend_one(quota)
            await asyncio.sleep(0)  # the refill tasks run between rounds, as between messages
        for store in stores:
            await store.close()
        return passed

    passed = run(main())
    index = int(time.time()) // 86400
    counted = redis_server.integer("GET", f"asyncapi-gw:{{api:86400:/feed}}:{index}")
    assert all(passed)  # every process got a share
    assert limit <= sum(passed) <= limit + processes * lease
    # everything passed was counted (leased or charged), but credit still owed at close
    assert sum(passed) - processes * lease <= counted


def test_a_busy_process_leases_more_at_a_time_until_refills_keep_up(
    redis_server: RedisServer,
) -> None:
    """A process passing a thousand events between two turns of its event loop, far below
    the limit: a lease of 100 lasts a fraction of a round trip, so its leases grow until the
    refills keep up; after that no event is refused, and everything passed is counted."""

    async def main() -> tuple[list[int], int]:
        store = RedisQuotaStore(redis_server.url, lease=100)
        store.start()  # connects and loads the script before the traffic, as Relay.start does
        await until(lambda: "cmd=script" in (redis_server.command("CLIENT", "LIST") or ""))
        quota = store.shared("api:86400:/busy", 10**9, 86400)
        refused = []
        for _ in range(300):
            refused.append(sum(not spend_one(quota) for _ in range(1000)))
            await asyncio.sleep(0)  # one turn of the loop: the refill task's chance to run
        asking = quota.asking
        await until(lambda: quota._debt == 0 and not quota._requested)
        await store.close()
        return refused, asking

    refused, asking = run(main())
    assert asking > 100
    assert sum(refused[50:]) == 0, refused  # grown within 50 turns, then nothing refused
    index = int(time.time()) // 86400
    counted = redis_server.integer("GET", f"asyncapi-gw:{{api:86400:/busy}}:{index}")
    assert counted >= 300 * 1000 - sum(refused)  # every event passed was leased or charged


def test_a_store_closed_while_it_connects_closes(redis_server: RedisServer) -> None:
    """A relay stopped right after it started: the store is closed while the client still
    connects (the client may swallow the cancellation then); closing ends all the same."""

    async def main() -> None:
        for delay in (0, 0.0002, 0.0005, 0.001, 0.0015, 0.002, 0.005, 0.05) * 3:
            store = RedisQuotaStore(redis_server.url)
            store.start()
            task = store._task
            await asyncio.sleep(delay)
            await asyncio.wait_for(store.close(), 5)  # a hang, not a speed limit
            assert task is not None
            assert task.done()  # nothing left running

    run(main())


def test_the_script_grants_nothing_from_a_window_too_near_its_end(
    redis_server: RedisServer,
) -> None:
    """``min_left_ms`` at least the window's length: no lease, the debt charged all the same;
    0: a lease (the script as the relay runs it, on the real Redis)."""

    async def main() -> tuple[list[int], list[int]]:
        store = RedisQuotaStore(redis_server.url)
        late = LeaseRequest("asyncapi-gw:{api:86400:/near}", 1000, 86_400_000, 10, 3, 86_400_000)
        near = await store._lease([late])
        far = await store._lease([attrs.evolve(late, debt=0, min_left_ms=0)])
        await store.close()
        return near[0], far[0]

    near, far = run(main())
    assert near[:2] == [0, 3]
    assert far[:2] == [10, 13]


def test_windows_are_whole_units_on_the_redis_clock(redis_server: RedisServer) -> None:
    async def main() -> None:
        store = RedisQuotaStore(redis_server.url)
        quota = store.shared("principal:60:/feed:api_key:alice", 100, 60)
        assert spend_one(quota)
        await until(lambda: store.health.leases == 1)
        await store.close()

    before = int(time.time() * 1000) // 60000
    run(main())
    after = int(time.time() * 1000) // 60000
    keys = {
        redis_server.command("EXISTS", f"asyncapi-gw:{{principal:60:/feed:api_key:alice}}:{i}")
        for i in (before, after)
    }
    assert ":1" in keys
    ttl = redis_server.integer("PTTL", f"asyncapi-gw:{{principal:60:/feed:api_key:alice}}:{after}")
    assert 0 < ttl <= 120_000  # it goes soon after its window ends


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (QuotaStoreFailure.LOCAL, 5),  # this process's own limit
        (QuotaStoreFailure.OPEN, 50),  # everything
        (QuotaStoreFailure.CLOSED, 1),  # only the event that found the store down, on credit
    ],
)
def test_failure_policy_while_redis_is_down(
    redis_server: RedisServer, failure: QuotaStoreFailure, expected: int
) -> None:
    redis_server.kill()

    async def main() -> int:
        store = RedisQuotaStore(redis_server.url, failure=failure)
        quota = store.shared("api:86400:/feed", 5, 86400)
        passed = int(spend_one(quota))  # on credit; its refill finds Redis down
        await until(lambda: not store.health.up)
        passed += sum(spend_one(quota) for _ in range(49))
        await store.close()
        return passed

    assert run(main()) == expected


def test_redis_blinks_no_connection_drops_logged_once_counted_recovered(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis is killed under traffic and started again on the same port: every client keeps
    its connection and gets its echoes, the outage is logged once and counted in /metrics,
    and the relay leases from the new Redis once it answers."""
    throttling = Throttling(events=10_000, unit=ThrottlingUnit.DAY)

    async def main() -> None:
        async with backend() as b:
            chat = api(b.url, throttling=throttling)
            async with Relay([chat], ws_port=0, quota_store=redis_server.url) as relay:
                port = relay.ports["ws"]
                clients = [await client(port, "/chat/1.0/x") for _ in range(3)]
                for ws in clients:
                    await ws.send("before")
                    assert await ws.recv() == "before"
                await until(lambda: "asyncapi_gw_quota_store_leases_total 0" not in metrics(relay))
                redis_server.kill()
                for round_ in range(40):  # the refills fail
                    for ws in clients:
                        await ws.send(f"down {round_}")
                        assert await ws.recv() == f"down {round_}"
                await until(lambda: "asyncapi_gw_quota_store_up 0" in metrics(relay))
                assert "asyncapi_gw_quota_store_outages_total 1" in metrics(relay)
                redis_server.start()
                await until(lambda: "asyncapi_gw_quota_store_up 1" in metrics(relay))
                # the credit spent while the refill failed throttles nothing: until the
                # lease comes, the failure policy (local limits) goes on
                for ws in clients:
                    await ws.send("again")
                    assert await ws.recv() == "again"
                await until(lambda: redis_server.command("DBSIZE") == ":1")
                for round_ in range(20):
                    for ws in clients:
                        await ws.send(f"up {round_}")
                        assert await ws.recv() == f"up {round_}"
                text = metrics(relay)
                assert "asyncapi_gw_quota_store_outages_total 1" in text
                for ws in clients:
                    assert ws.close_code is None
                    await ws.close()

    with caplog.at_level(logging.WARNING, logger="asyncapi_gw.relay"):
        run(main(), timeout=40)
    outages = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(outages) == 1
    assert "local quotas until it answers" in outages[0]
    assert any("answers again" in r.getMessage() for r in caplog.records)


def metrics(relay: Relay) -> str:
    return relay.metrics_text()


def test_a_store_url_with_user_password_and_database(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """``redis://USER:PASSWORD@HOST:PORT/DB``: the counts land in that database under that
    user; a wrong password is an outage like any other, logged without the password."""
    assert redis_server.command("ACL", "SETUSER", "gw", "on", ">s3cret", "~*", "+@all") == "+OK"
    base = f"127.0.0.1:{redis_server.port}"

    async def main(url: str) -> RedisQuotaStore:
        store = RedisQuotaStore(url, lease=5)
        quota = store.shared("api:86400:/feed", 100, 86400)
        assert spend_one(quota)  # on credit: asks for a lease
        await until(lambda: store.health.leases > 0 or not store.health.up)
        await store.close()
        return store

    with caplog.at_level(logging.WARNING, logger="asyncapi_gw.relay"):
        good = run(main(f"redis://gw:s3cret@{base}/3"))
        bad = run(main(f"redis://gw:wrong@{base}/3"))
    assert good.health.up
    assert "db3:keys=1," in (redis_server.command("INFO", "keyspace") or "")
    assert not bad.health.up
    assert bad.health.outages == 1
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 1
    assert f"quota store redis://{base}/3 unreachable" in logged[0]
    assert "s3cret" not in logged[0]
    assert "wrong" not in logged[0]


def test_redis_down_when_the_relay_starts_it_serves_under_the_policy_then_leases(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """No Redis at start-up: the relay starts, serves under the failure policy (local), logs
    the outage once, and leases once Redis comes up."""
    redis_server.kill()
    throttling = Throttling(events=10_000, unit=ThrottlingUnit.DAY)

    async def main() -> None:
        async with backend() as b:
            chat = api(b.url, throttling=throttling)
            async with Relay([chat], ws_port=0, quota_store=redis_server.url) as relay:
                ws = await client(relay.ports["ws"], "/chat/1.0/x")
                for round_ in range(30):
                    await ws.send(f"down {round_}")
                    assert await ws.recv() == f"down {round_}"
                await until(lambda: "asyncapi_gw_quota_store_up 0" in metrics(relay))
                redis_server.start()
                await until(lambda: "asyncapi_gw_quota_store_up 1" in metrics(relay))
                for round_ in range(30):
                    await ws.send(f"up {round_}")
                    assert await ws.recv() == f"up {round_}"
                await until(lambda: redis_server.command("DBSIZE") == ":1")
                assert "asyncapi_gw_quota_store_outages_total 1" in metrics(relay)
                assert ws.close_code is None
                await ws.close()

    with caplog.at_level(logging.WARNING, logger="asyncapi_gw.relay"):
        run(main(), timeout=40)
    assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 1
