"""``RelayConfig.reuse_port``: relays that share one port (``serve --workers``) each relay."""

from __future__ import annotations

import pytest
from relay_harness import api, backend, client, run

from asyncapi_gw import Relay
from asyncapi_gw.errors import RelayError


def test_two_relays_with_reuse_port_listen_on_one_port_and_both_relay() -> None:
    async def scenario() -> None:
        async with backend() as echo, Relay([api(echo.url)], ws_port=0, reuse_port=True) as one:
            port = one.ports["ws"]
            async with Relay([api(echo.url)], ws_port=port, reuse_port=True) as two:
                assert two.ports["ws"] == port
                for _ in range(16):  # the kernel spreads them: 2**-15 that one relay gets all
                    async with client(port, "/chat/1.0/room") as ws:
                        await ws.send("either relay")
                        assert await ws.recv() == "either relay"
                assert one.stats.connections_total + two.stats.connections_total == 16
                assert one.stats.connections_total > 0
                assert two.stats.connections_total > 0

    run(scenario())


def test_without_reuse_port_a_second_relay_cannot_share_the_port() -> None:
    async def scenario() -> None:
        async with Relay([api("ws://127.0.0.1:9")], ws_port=0, reuse_port=True) as first:
            with pytest.raises(RelayError, match="cannot listen"):
                await Relay([api("ws://127.0.0.1:9")], ws_port=first.ports["ws"]).start()

    run(scenario())
