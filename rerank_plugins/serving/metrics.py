"""Prometheus metrics of the rerank service (``GET /metrics``), in a registry of its own.

Requests by endpoint and status, latency, passes through the model (pairs, tokens, time), work
scored, the queue, and refusals. Nothing is registered globally, so two apps in one process
(tests, notebooks) keep separate counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from rerank_plugins._optional import require

__all__ = ["ServiceMetrics"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
PAIR_BUCKETS = tuple(float(2**power) for power in range(11))
TOKEN_BUCKETS = tuple(float(2**power) for power in range(6, 18))


class ServiceMetrics:
    """The service's counters and histograms; ``queue`` and ``refused`` are read at scrape time.

    ``queue()`` gives the waiting ``requests``, ``pairs`` and ``tokens``; ``refused()`` the refusals
    by HTTP status counted by the guard and the app (401, 408, 413, 422, 431, 503, ...).
    """

    def __init__(
        self,
        queue: Callable[[], dict[str, int]],
        refused: Callable[[], dict[int, int]],
        ready: Callable[[], bool],
    ) -> None:
        prometheus = require("prometheus_client", "serve")
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        self.registry = prometheus.CollectorRegistry(auto_describe=True)
        self._exposition = prometheus.generate_latest
        self.content_type: str = prometheus.CONTENT_TYPE_LATEST
        self.requests = prometheus.Counter(
            "rerank_requests", "HTTP requests answered, by endpoint and status.", ["endpoint", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = prometheus.Histogram(
            "rerank_request_duration_seconds", "Time from a request's arrival to its answer, by endpoint.",
            ["endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.batch_pairs = prometheus.Histogram(
            "rerank_batch_pairs", "Pairs in one pass through the model.", buckets=PAIR_BUCKETS, registry=self.registry
        )
        self.batch_tokens = prometheus.Histogram(
            "rerank_batch_tokens", "Model tokens in one pass.", buckets=TOKEN_BUCKETS, registry=self.registry
        )
        self.batch_seconds = prometheus.Histogram(
            "rerank_batch_duration_seconds", "Time of one pass.", buckets=LATENCY_BUCKETS, registry=self.registry
        )
        self.pairs = prometheus.Counter("rerank_pairs_scored", "Pairs scored.", registry=self.registry)
        self.tokens = prometheus.Counter("rerank_tokens_scored", "Model tokens scored.", registry=self.registry)

        class _Live:
            """Gauges and counters read from the service when scraped."""

            def describe(self) -> list[Any]:
                return []

            def collect(self) -> Iterator[Any]:
                waiting = GaugeMetricFamily("rerank_queue", "Work admitted and not yet scored.", labels=["unit"])
                for unit, value in queue().items():
                    waiting.add_metric([unit], value)
                yield waiting
                refusals = CounterMetricFamily(
                    "rerank_refused", "Requests refused, by HTTP status (401, 413, 422, 503, ...).", labels=["status"]
                )
                for status, count in sorted(refused().items()):
                    refusals.add_metric([str(status)], count)
                yield refusals
                yield GaugeMetricFamily("rerank_ready", "1 once the model is loaded and warmed.", value=int(ready()))

        self.registry.register(_Live())

    def observe_pass(self, pairs: int, tokens: int, seconds: float) -> None:
        """Count one pass through the model."""
        self.batch_pairs.observe(pairs)
        self.batch_tokens.observe(tokens)
        self.batch_seconds.observe(seconds)
        self.pairs.inc(pairs)
        self.tokens.inc(tokens)

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return bytes(self._exposition(self.registry))
