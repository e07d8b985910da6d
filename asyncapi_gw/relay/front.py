"""What every front of the relay that owns its gate shares: the configuration, the gate, the
counters and the reload (:class:`~asyncapi_gw.relay.Relay`, the listener, and
:class:`~asyncapi_gw.relay.AsgiRelay`, the ASGI app). Each front only says which connections
it holds open and how it closes one a reload drops."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import attrs

from asyncapi_gw.errors import RelayError
from asyncapi_gw.model import StreamingAPI
from asyncapi_gw.relay.auth import AuthConfig
from asyncapi_gw.relay.config import RelayConfig
from asyncapi_gw.relay.gate import Gate
from asyncapi_gw.relay.metrics import RelayStats, Traffic
from asyncapi_gw.relay.reload import Drop, Keep, ReloadReport

__all__ = ["GatedFront"]

log = logging.getLogger("asyncapi_gw.relay")


class GatedFront:
    """A front that decides through one :class:`Gate` built from ``apis`` and ``config``
    (keyword options are :class:`RelayConfig` fields and override ``config``). Raises
    :class:`RelayError` for an invalid configuration or duplicate gateway paths."""

    def __init__(
        self,
        apis: Iterable[StreamingAPI],
        *,
        config: RelayConfig | None = None,
        **options: Any,
    ) -> None:
        try:
            config = attrs.evolve(config or RelayConfig(), **options)
        except (TypeError, ValueError) as exc:
            raise RelayError(f"invalid relay configuration: {exc}") from None
        self._gate = self._new_gate(apis, config)
        self._log_warnings()

    def _new_gate(self, apis: Iterable[StreamingAPI], config: RelayConfig) -> Gate:
        """The gate this front decides through (the listener adds its shared quota store)."""
        return Gate(apis, config)

    def _log_warnings(self) -> None:
        for warning in self._gate.warnings():
            log.warning("%s", warning)

    @property
    def config(self) -> RelayConfig:
        """The settings; a reload with new credentials changes its ``auth``."""
        return self._gate.config

    @property
    def apis(self) -> tuple[StreamingAPI, ...]:
        return self._gate.apis

    @property
    def stats(self) -> RelayStats:
        """Connections, messages, bytes (payloads), refusals and close codes so far."""
        return self._gate.metrics.stats(self._live_traffic())

    def metrics_text(self) -> str:
        """The Prometheus text of the counters (the admin listener's ``/metrics``)."""
        return self._gate.metrics.render(self._live_traffic())

    def reload(
        self, apis: Iterable[StreamingAPI] | None = None, *, auth: AuthConfig | None = None
    ) -> ReloadReport:
        """Serve ``apis`` and authenticate with ``auth`` from now on (``None``: unchanged).

        Every open connection is judged again as :mod:`asyncapi_gw.relay.reload` states: it
        stays while its own topic's route, backend URL and auth hold (a changed direction,
        quota or payload schema applies from its next message); a removed topic or a changed
        backend closes it with 1012, a credential no longer accepted with 4001. Raises
        :class:`RelayError`, and changes nothing, when the new APIs or credentials are invalid.
        Call it on the relay's event loop.
        """
        self._gate.reload(apis, auth=auth)
        self._log_warnings()
        return ReloadReport.tally(self._rejudge())

    def _rejudge(self) -> list[Keep | Drop]:
        """Judge every open connection again after the gate's reload, and close the dropped."""
        raise NotImplementedError

    def _live_traffic(self) -> Iterable[Traffic]:
        """The traffic of the connections open now (the gate counts the finished ones)."""
        raise NotImplementedError
