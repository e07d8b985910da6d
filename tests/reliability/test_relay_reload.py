"""Reloads under load: many open connections across ten topics, a reload that changes one
topic (or revokes one API key), and exactly that topic's (or key's) connections closed while
every other connection goes on relaying both ways, without losing or reordering a message.

Run with ``-s`` to see the figures (``docs/reliability.md`` records the long run's)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from typing import Any

import attrs
import pytest
from relay_harness import api, backend, client, run, topic
from relay_load import raise_fd_limit, scales
from websockets.exceptions import ConnectionClosed

from asyncapi_gw.model import AuthKind, Operation, SecurityScheme, Topic, TopicOperation
from asyncapi_gw.relay import ApiKeyInfo, AuthConfig, Relay, ReloadReport

TOPICS = 10
_QUICK = {"close_timeout": 2.0, "drain_timeout": 5.0, "ping_interval": None}


@attrs.define
class Talker:
    """One client echoing numbered messages through the relay until told to stop."""

    ws: Any
    sent: int = 0
    wrong: int = 0  # echoes that were not the message sent (lost, reordered, altered)
    close: tuple[int | None, str] | None = None

    async def talk(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                text = f"{id(self)}:{self.sent}"
                await self.ws.send(text)
                self.sent += 1
                if await self.ws.recv() != text:
                    self.wrong += 1
        except ConnectionClosed:
            frame = self.ws.protocol.close_rcvd
            self.close = (frame.code, frame.reason) if frame else (None, "")


async def open_all(port: int, paths: list[str]) -> list[Talker]:
    """Open one client per path, 100 handshakes at a time."""
    talkers: list[Talker] = []
    for start in range(0, len(paths), 100):
        batch = paths[start : start + 100]
        opened = await asyncio.gather(*(client(port, p, open_timeout=60) for p in batch))
        talkers += [Talker(ws) for ws in opened]
    return talkers


async def reload_under_load(
    relay: Relay, talkers: list[Talker], **changes: Any
) -> tuple[ReloadReport, float]:
    """Every talker echoing; the reload; everyone talks a while longer, then stops. The
    report and the time ``reload`` took (s)."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(t.talk(stop)) for t in talkers]
    await asyncio.sleep(0.5)  # every talker is mid-conversation
    before = sum(t.sent for t in talkers)
    started = time.perf_counter()
    report = relay.reload(**changes)
    took = time.perf_counter() - started
    await asyncio.sleep(1.0)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    survivors = [t for t in talkers if t.close is None]
    assert sum(t.sent for t in survivors) > before  # the kept ones went on talking
    return report, took


async def close_all(talkers: list[Talker]) -> None:
    for start in range(0, len(talkers), 100):
        batch = [t.ws for t in talkers[start : start + 100] if t.close is None]
        with contextlib.suppress(ConnectionClosed):
            await asyncio.gather(*(ws.close() for ws in batch))


def _print(what: str, connections: int, report: ReloadReport, took: float) -> None:
    print(f"\n{what}: {connections} connections, reload {took * 1000:.1f} ms: {report.describe()}")


@pytest.mark.parametrize("connections", scales(100, 1000))
def test_a_reload_changing_one_topic_closes_exactly_its_connections(connections: int) -> None:
    raise_fd_limit()

    async def main() -> None:
        async with backend(backlog=4096, compression=None) as b:
            before = api(b.url, topics=tuple(topic(f"/t{n}") for n in range(TOPICS)))
            mapped = TopicOperation(operation=Operation.PUBLISH, uri_mapping="/v2")
            moved = Topic(
                name="/t3",
                publish=mapped,
                subscribe=attrs.evolve(mapped, operation=Operation.SUBSCRIBE),
            )
            after = attrs.evolve(
                before,
                description="one topic's backend moved; a topic added",
                topics=(*(t if t.name != "/t3" else moved for t in before.topics), topic("/t10")),
            )
            async with Relay([before], ws_port=0, **_QUICK) as relay:
                paths = [f"/chat/1.0/t{n % TOPICS}" for n in range(connections)]
                talkers = await open_all(relay.ports["ws"], paths)
                report, took = await reload_under_load(relay, talkers, apis=[after])
                _print("backend of one topic of ten changed", connections, report, took)
                per_topic = connections // TOPICS
                assert report == ReloadReport(
                    kept=connections - per_topic,
                    closed={(1012, "reload: backend changed"): per_topic},
                )
                for path, talker in zip(paths, talkers, strict=True):
                    if path.endswith("/t3"):
                        assert talker.close == (1012, "reload: backend changed")
                    else:
                        assert talker.close is None, (path, talker.close)
                    assert talker.wrong == 0
                closes = Counter(code for code in b.closes)
                assert closes == {1001: per_topic}  # the relay closed those backends
                # a second reload that changes one topic's message policy closes nothing
                schema = {"payload": {"type": "string"}}
                described = attrs.evolve(
                    after.topics[5],
                    publish=TopicOperation(operation=Operation.PUBLISH, message=schema),
                )
                again = after.with_topics(described if t.name == "/t5" else t for t in after.topics)
                kept = [t for t in talkers if t.close is None]
                report, took = await reload_under_load(relay, kept, apis=[again])
                _print("one topic's message policy changed", len(kept), report, took)
                assert report == ReloadReport(kept=len(kept), updated=per_topic)
                assert all(t.close is None and t.wrong == 0 for t in kept)
                await close_all(kept)

    run(main(), timeout=300)


@pytest.mark.parametrize("connections", scales(100, 1000))
def test_revoking_one_api_key_closes_exactly_its_connections(connections: int) -> None:
    raise_fd_limit()
    keys = {f"key-{n}": ApiKeyInfo() for n in range(TOPICS)}

    async def main() -> None:
        async with backend(backlog=4096, compression=None) as b:
            keyed = api(
                b.url,
                topics=tuple(topic(f"/t{n}") for n in range(TOPICS)),
                security=(SecurityScheme(name="key", kind=AuthKind.API_KEY),),
            )
            auth = AuthConfig(api_keys=keys)
            async with Relay([keyed], ws_port=0, auth=auth, **_QUICK) as relay:
                # key-n holders spread over every topic
                paths = [
                    f"/chat/1.0/t{n % TOPICS}?apikey=key-{(n // TOPICS) % TOPICS}"
                    for n in range(connections)
                ]
                talkers = await open_all(relay.ports["ws"], paths)
                revoked = AuthConfig(api_keys={k: v for k, v in keys.items() if k != "key-7"})
                report, took = await reload_under_load(relay, talkers, auth=revoked)
                _print("one API key of ten revoked", connections, report, took)
                per_key = connections // TOPICS
                assert report == ReloadReport(
                    kept=connections - per_key, closed={(4001, "reload: API key revoked"): per_key}
                )
                for path, talker in zip(paths, talkers, strict=True):
                    if path.endswith("key-7"):
                        assert talker.close == (4001, "reload: API key revoked")
                    else:
                        assert talker.close is None, (path, talker.close)
                    assert talker.wrong == 0
                await close_all(talkers)

    run(main(), timeout=300)
