"""The relay shell's operations over real loopback sockets: path and header safety, query
forwarding, access log, drain, reload, backpressure, TLS and many connections."""

from __future__ import annotations

import asyncio
import json
import resource
import ssl
from pathlib import Path

import pytest
from relay_harness import UPGRADE, api, backend, client, http_get, run
from tls_certificates import self_signed
from websockets.asyncio.server import ServerConnection

from asyncapi_gw.model import Operation, Topic, TopicOperation
from asyncapi_gw.relay import Relay

_QUICK = {"close_timeout": 0.3, "drain_timeout": 0.3}


def test_header_allow_list_forwarded_headers_and_query_forwarding() -> None:
    async def main() -> None:
        async with backend() as b:
            async with Relay([api(b.url)], ws_port=0, forward_headers=["X-Tenant"]) as relay:
                headers = {"X-Tenant": "acme", "Cookie": "session=1", "X-Other": "no"}
                target = "/chat/1.0/x?a=1&access_token=t&b=%0D%0A&apikey=k"
                async with client(relay.ports["ws"], target, additional_headers=headers):
                    pass
            seen = b.headers[0]
            assert seen["X-Tenant"] == "acme"
            assert "Cookie" not in seen
            assert "X-Other" not in seen
            assert seen["X-Forwarded-For"] == "127.0.0.1"
            assert seen["X-Forwarded-Proto"] == "ws"
            assert seen["X-Forwarded-Host"].startswith("127.0.0.1:")
            assert b.paths[0] == "/?a=1&b=%0D%0A"
            async with (
                Relay([api(b.url)], ws_port=0, forward_query=False) as relay,
                client(relay.ports["ws"], "/chat/1.0/x?a=1"),
            ):
                pass
            assert b.paths[1] == "/"

    run(main())


def test_access_log_has_one_json_line_per_connection(tmp_path: Path) -> None:
    log = tmp_path / "access.log"

    async def main() -> None:
        async with backend() as b, Relay([api(b.url)], ws_port=0, access_log=str(log)) as relay:
            async with client(relay.ports["ws"], "/chat/1.0/x") as ws:
                await ws.send("hello")
                await ws.recv()
            await http_get(relay.ports["ws"], "/missing/1.0/x", UPGRADE)
            await asyncio.sleep(0.05)

    run(main())
    first, second = (json.loads(line) for line in log.read_text().splitlines())
    assert first["api"] == "Chat"
    assert first["topic"] == "/*"
    assert first["backend"].startswith("ws://127.0.0.1:")
    assert first["status"] == 101
    assert first["messages_in"] == first["messages_out"] == 1
    assert first["bytes_in"] > 0
    assert first["bytes_out"] > 0
    assert first["close_code"] == 1000
    assert first["closed_by"] == "client"
    assert first["duration_ms"] >= 0
    assert (first["auth"], first["principal"]) == ("none", None)  # an open API
    assert second["status"] == 404


def test_dropped_messages_are_counted_in_metrics_and_access_log(tmp_path: Path) -> None:
    log = tmp_path / "access.log"

    async def main() -> str:
        pub_only = (Topic(name="/*", publish=TopicOperation(operation=Operation.PUBLISH)),)
        async with (
            backend() as b,
            Relay(
                [api(b.url, topics=pub_only)],
                ws_port=0,
                on_wrong_direction="drop",
                access_log=str(log),
                admin_port=0,
            ) as relay,
        ):
            async with client(relay.ports["ws"], "/chat/1.0/x") as ws:
                await ws.send("one")
                await ws.send("two")
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(ws.recv(), 0.3)
            await asyncio.sleep(0.05)
            return (await http_get(relay.ports["admin"], "/metrics"))[2]

    metrics = run(main())
    # the echoes of the publish-only topic are dropped, and the drops are visible
    assert 'asyncapi_gw_messages_dropped_total{api="Chat",topic="/*",direction="out"} 2' in metrics
    entry = json.loads(log.read_text().splitlines()[0])
    assert entry["dropped_out"] == 2
    assert entry["dropped_in"] == 0


def test_slow_client_pauses_the_backend_and_memory_stays_bounded() -> None:
    async def main() -> None:
        sent = 0

        async def flood(ws: ServerConnection) -> None:
            nonlocal sent
            chunk = b"x" * 65536
            for _ in range(2000):  # 128 MiB if nothing pushed back
                await ws.send(chunk)
                sent += 1

        limit = 64 * 1024
        async with (
            backend(flood, compression=None) as b,
            Relay([api(b.url)], ws_port=0, write_buffer_limit=limit, **_QUICK) as relay,
        ):
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", relay.ports["ws"], limit=1024
            )
            writer.write(f"GET /chat/1.0/x HTTP/1.1\r\nHost: x\r\n{UPGRADE}\r\n".encode())
            await reader.readuntil(b"\r\n\r\n")
            writer.transport.pause_reading()  # the client stops reading
            settled = -1
            for _ in range(100):  # until the backend's sends stall
                settled = sent
                await asyncio.sleep(0.05)
                if sent == settled:
                    break
            await asyncio.sleep(0.2)
            # the backend is blocked too: what it sent is what the sockets' buffers and the
            # relay's write buffer limits hold, not the flood
            assert sent == settled < 1000
            assert relay.stats.connections_open == 1
            writer.transport.abort()
            assert b.closes == [] or b.closes[0] is not None

    run(main())


def test_flooding_client_is_paused_by_a_slow_backend() -> None:
    async def main() -> None:
        async def never_reads(ws: ServerConnection) -> None:
            await ws.wait_closed()

        limit = 64 * 1024
        async with (
            backend(never_reads, compression=None, max_queue=1, close_timeout=0.3) as b,
            Relay([api(b.url)], ws_port=0, write_buffer_limit=limit, **_QUICK) as relay,
        ):
            ws = await client(relay.ports["ws"], "/chat/1.0/x", compression=None)
            sent = 0

            async def flood() -> None:
                nonlocal sent
                for _ in range(2000):  # 128 MiB if nothing pushed back
                    await ws.send(b"y" * 65536)
                    sent += 1

            task = asyncio.create_task(flood())
            settled = -1
            for _ in range(100):  # until the client's sends stall
                settled = sent
                await asyncio.sleep(0.05)
                if sent == settled:
                    break
            await asyncio.sleep(0.2)
            assert sent == settled < 1000  # the relay stopped reading the client
            assert not task.done()
            task.cancel()
            ws.transport.abort()

    run(main())


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_wss_listener_with_a_self_signed_certificate(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)

    async def main() -> None:
        context = ssl.create_default_context(cafile=cert)
        context.check_hostname = False
        async with (
            backend() as b,
            Relay([api(b.url)], ws_port=0, wss_port=0, tls_cert=cert, tls_key=key) as relay,
        ):
            assert set(relay.ports) == {"ws", "wss"}
            uri = f"wss://localhost:{relay.ports['wss']}/chat/1.0/x"
            from websockets.asyncio.client import connect

            async with connect(uri, ssl=context, host="127.0.0.1") as ws:
                await ws.send("secret")
                assert await ws.recv() == "secret"
                assert ws.transport.get_extra_info("ssl_object").version() in ("TLSv1.2", "TLSv1.3")
            assert b.headers[0]["X-Forwarded-Proto"] == "wss"
            old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            old.check_hostname, old.verify_mode = False, ssl.CERT_NONE
            old.set_ciphers("ALL:@SECLEVEL=0")
            old.maximum_version = ssl.TLSVersion.TLSv1_1
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", relay.ports["wss"], ssl=old)
            except (ssl.SSLError, OSError):
                pass
            else:
                writer.close()
                raise AssertionError("TLS 1.1 was accepted")

    run(main())


def test_a_thousand_concurrent_connections_deliver_every_message_once_in_order() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 8192:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(8192, hard), hard))
    count, per_connection = 1000, 5

    async def main() -> None:
        async with backend(compression=None) as b, Relay([api(b.url)], ws_port=0) as relay:
            port = relay.ports["ws"]
            gate = asyncio.Semaphore(100)

            async def one(n: int, opened: asyncio.Event, go: asyncio.Event) -> list[str]:
                async with gate:
                    ws = await client(port, f"/chat/1.0/c{n}", compression=None, ping_interval=None)
                opened.set()
                await go.wait()
                try:
                    for i in range(per_connection):
                        await ws.send(f"{n}:{i}")
                    return [await ws.recv() for _ in range(per_connection)]
                finally:
                    await ws.close()

            events = [asyncio.Event() for _ in range(count)]
            go = asyncio.Event()
            tasks = [asyncio.create_task(one(n, events[n], go)) for n in range(count)]
            await asyncio.gather(*(e.wait() for e in events))
            assert relay.stats.connections_open == count
            go.set()
            results = await asyncio.gather(*tasks)
            for n, got in enumerate(results):
                assert got == [f"{n}:{i}" for i in range(per_connection)]
            assert relay.stats.messages_in == count * per_connection
            assert relay.stats.messages_out == count * per_connection
            del b

    run(main(), timeout=60)


def test_shutdown_answers_503_to_handshakes_in_progress() -> None:
    async def main() -> None:
        relay = Relay([api("ws://127.0.0.1:9")], ws_port=0)
        await relay.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", relay.ports["ws"])
        writer.write(b"GET /chat/1.0/x HTTP/1.1\r\nHost: x\r\n")  # not finished
        await asyncio.sleep(0.05)
        await asyncio.wait_for(relay.close(), 2)
        assert (await asyncio.wait_for(reader.read(), 2)).startswith(b"HTTP/1.1 503 ")
        writer.close()

    run(main())
