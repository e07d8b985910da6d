"""The relay's counters and their Prometheus text exposition (format 0.0.4). No I/O."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import attrs

from asyncapi_gw.relay.quota import StoreHealth

__all__ = ["CONTENT_TYPE", "Metrics", "RelayStats", "Traffic"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@attrs.frozen(kw_only=True)
class Traffic:
    """Messages and bytes one connection carried in one direction (``in``: client to backend);
    ``dropped``: messages not relayed (wrong direction, throttled, invalid, cut short by a
    close)."""

    api: str
    topic: str
    direction: str
    messages: int
    bytes: int
    dropped: int = 0


@attrs.frozen(kw_only=True)
class RelayStats:
    """A snapshot of a relay's counters."""

    connections_open: int
    connections_total: int
    messages_in: int
    messages_out: int
    bytes_in: int
    bytes_out: int
    rejections: dict[int, int]
    close_codes: dict[int, int]


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Mutable counters owned by one relay; open connections report their traffic live."""

    def __init__(self) -> None:
        self.connections_open = 0
        self.connections_total: Counter[str] = Counter()
        self.rejections: Counter[int] = Counter()
        self.close_codes: Counter[int] = Counter()
        self.query_overrides: Counter[str] = Counter()
        self._messages: Counter[tuple[str, str, str]] = Counter()
        self._bytes: Counter[tuple[str, str, str]] = Counter()
        self._dropped: Counter[tuple[str, str, str]] = Counter()

    def opened(self, api: str) -> None:
        self.connections_open += 1
        self.connections_total[api] += 1

    def closed(self, code: int, traffic: Iterable[Traffic]) -> None:
        self.connections_open -= 1
        self.close_codes[code] += 1
        self._add(self._messages, self._bytes, self._dropped, traffic)

    def rejected(self, status: int) -> None:
        self.rejections[status] += 1

    def query_overridden(self, api: str, count: int) -> None:
        """``count`` client query parameters dropped: the URL mapping sets them."""
        self.query_overrides[api] += count

    def stats(self, live: Iterable[Traffic]) -> RelayStats:
        messages, octets, _ = self._totals(live)
        return RelayStats(
            connections_open=self.connections_open,
            connections_total=sum(self.connections_total.values()),
            messages_in=sum(n for key, n in messages.items() if key[2] == "in"),
            messages_out=sum(n for key, n in messages.items() if key[2] == "out"),
            bytes_in=sum(n for key, n in octets.items() if key[2] == "in"),
            bytes_out=sum(n for key, n in octets.items() if key[2] == "out"),
            rejections=dict(self.rejections),
            close_codes=dict(self.close_codes),
        )

    def render(self, live: Iterable[Traffic], *, quota_store: StoreHealth | None = None) -> str:
        """The Prometheus text exposition of every counter (and of the quota store's, when
        the quotas are shared through one)."""
        messages, octets, dropped = self._totals(live)
        out = [
            "# HELP asyncapi_gw_connections_open WebSocket connections being relayed.",
            "# TYPE asyncapi_gw_connections_open gauge",
            f"asyncapi_gw_connections_open {self.connections_open}",
            "# HELP asyncapi_gw_connections_total WebSocket connections accepted, per API.",
            "# TYPE asyncapi_gw_connections_total counter",
        ]
        out += [
            f'asyncapi_gw_connections_total{{api="{_label(api)}"}} {n}'
            for api, n in sorted(self.connections_total.items())
        ]
        for name, counter, what in (
            ("messages", messages, "Messages relayed"),
            ("bytes", octets, "Bytes relayed"),
            ("messages_dropped", dropped, "Messages dropped, not relayed"),
        ):
            out += [
                f"# HELP asyncapi_gw_{name}_total {what}; in: client to backend.",
                f"# TYPE asyncapi_gw_{name}_total counter",
            ]
            out += [
                f'asyncapi_gw_{name}_total{{api="{_label(api)}",topic="{_label(topic)}",'
                f'direction="{direction}"}} {n}'
                for (api, topic, direction), n in sorted(counter.items())
            ]
        out += [
            "# HELP asyncapi_gw_query_parameters_overridden_total Client query parameters "
            "dropped because the endpoint URL or the URL mapping sets them, per API.",
            "# TYPE asyncapi_gw_query_parameters_overridden_total counter",
        ]
        out += [
            f'asyncapi_gw_query_parameters_overridden_total{{api="{_label(api)}"}} {n}'
            for api, n in sorted(self.query_overrides.items())
        ]
        out += [
            "# HELP asyncapi_gw_rejections_total Handshakes refused, per HTTP status.",
            "# TYPE asyncapi_gw_rejections_total counter",
        ]
        out += [
            f'asyncapi_gw_rejections_total{{status="{status}"}} {n}'
            for status, n in sorted(self.rejections.items())
        ]
        out += [
            "# HELP asyncapi_gw_close_codes_total Relayed connections ended, per close code.",
            "# TYPE asyncapi_gw_close_codes_total counter",
        ]
        out += [
            f'asyncapi_gw_close_codes_total{{code="{code}"}} {n}'
            for code, n in sorted(self.close_codes.items())
        ]
        if quota_store is not None:
            out += _store_lines(quota_store)
        return "\n".join(out) + "\n"

    def _totals(
        self, live: Iterable[Traffic]
    ) -> tuple[
        Counter[tuple[str, str, str]], Counter[tuple[str, str, str]], Counter[tuple[str, str, str]]
    ]:
        messages, octets, dropped = self._messages.copy(), self._bytes.copy(), self._dropped.copy()
        self._add(messages, octets, dropped, live)
        return messages, octets, dropped

    @staticmethod
    def _add(
        messages: Counter[tuple[str, str, str]],
        octets: Counter[tuple[str, str, str]],
        dropped: Counter[tuple[str, str, str]],
        traffic: Iterable[Traffic],
    ) -> None:
        for t in traffic:
            messages[t.api, t.topic, t.direction] += t.messages
            octets[t.api, t.topic, t.direction] += t.bytes
            if t.dropped:
                dropped[t.api, t.topic, t.direction] += t.dropped


def _store_lines(health: StoreHealth) -> list[str]:
    return [
        "# HELP asyncapi_gw_quota_store_up Whether the shared quota store answered last time.",
        "# TYPE asyncapi_gw_quota_store_up gauge",
        f"asyncapi_gw_quota_store_up {int(health.up)}",
        "# HELP asyncapi_gw_quota_store_outages_total Times the shared quota store stopped "
        "answering.",
        "# TYPE asyncapi_gw_quota_store_outages_total counter",
        f"asyncapi_gw_quota_store_outages_total {health.outages}",
        "# HELP asyncapi_gw_quota_store_errors_total Round trips to the shared quota store "
        "that failed.",
        "# TYPE asyncapi_gw_quota_store_errors_total counter",
        f"asyncapi_gw_quota_store_errors_total {health.errors}",
        "# HELP asyncapi_gw_quota_store_leases_total Quota leases the shared quota store "
        "granted or refused.",
        "# TYPE asyncapi_gw_quota_store_leases_total counter",
        f"asyncapi_gw_quota_store_leases_total {health.leases}",
    ]
