"""The one seam between the views and the mesh's figures.

Every view (the TUI's screens, the plain printers) reads through a
:class:`Source`; :func:`open_source` is the only place that decides which one.
Two real sources stand side by side: the controller over gRPC
(:mod:`meshtui.client.controller_source`) and any Prometheus holding
Linkerd-shaped metrics (:mod:`meshtui.client.prometheus_source`). Tests and
screenshots hand the app a deterministic one (:mod:`meshtui.client.fake_source`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Protocol

from meshtui.client.queries import (
    EdgeQuery,
    HistoryPoint,
    StatQuery,
    StatSnapshot,
    TapBatch,
    TapQuery,
)
from meshtui.model.edges import EdgeRow


class Source(Protocol):
    """What a view needs from a mesh."""

    @property
    def label(self) -> str:
        """Shown in every view's header: which source, and where it is."""
        ...

    @property
    def meshed_note(self) -> str | None:
        """What MESHED counts, where it is not the inventory's pods (shown beside it)."""
        ...

    @property
    def tap_label(self) -> str:
        """Where tap streams come from (the controller, whatever the figures' source)."""
        ...

    @property
    def history_s(self) -> int:
        """How far back the source holds figures, in seconds."""
        ...

    async def ready(self, timeout: float) -> None:
        """Returns once the source answers; RuntimeFailure naming it if not within ``timeout``."""
        ...

    async def stats(self, query: StatQuery) -> StatSnapshot: ...

    async def history(self, query: StatQuery, span_s: int, step_s: int
                      ) -> dict[tuple[str, str, str], list[HistoryPoint]]:
        """Per row key, points over the ``span_s`` seconds up to ``query.until`` (or now)."""
        ...

    async def edges(self, query: EdgeQuery) -> list[EdgeRow]:
        """Who calls whom over the window, sorted by source then destination."""
        ...

    def tap(self, query: TapQuery) -> AsyncGenerator[TapBatch, None]:
        """Batches of tap events until the caller stops iterating (closing the
        generator ends the stream)."""
        ...

    async def close(self) -> None: ...


def open_source(server: str, prometheus: str | None = None, *,
                tap_share: float | None = 0.4) -> Source:
    """The source a command's options name.

    Args:
        server: the controller (HOST:PORT); it also serves tap when the figures
            come from a Prometheus, which has no requests to stream.
        prometheus: a Prometheus base URL, or None for the controller's figures.
        tap_share: the share of a core taking tap events in may use before
            batches are shed (a screen's budget); None takes every event (printing).
    """
    from meshtui.client.controller_source import ControllerSource

    controller = ControllerSource(server, tap_share=tap_share)
    if prometheus is None:
        return controller
    from meshtui.client.prometheus_source import PrometheusSource

    return PrometheusSource(prometheus, tap=controller)
