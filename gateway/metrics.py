"""Prometheus metrics (SPEC 4.3 names), one registry per application."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from runtime.pool import PoolStats

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    """The gateway's metrics; a fresh registry per app keeps tests independent."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "gateway_http_requests",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "gateway_http_request_duration_seconds",
            "HTTP request latency by route",
            ["route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.runs = Counter(
            "gateway_runs",
            "Script runs by kind and status",
            ["kind", "status"],
            registry=self.registry,
        )
        self.run_seconds = Histogram(
            "gateway_run_duration_seconds",
            "Script run duration by kind",
            ["kind"],
            registry=self.registry,
        )
        self.workers = Gauge(
            "gateway_workers", "Script workers by state", ["state"], registry=self.registry
        )
        self.queue_waiting = Gauge(
            "gateway_run_queue_waiting", "Runs waiting for a worker", registry=self.registry
        )
        self.refreshes = Counter(
            "gateway_oauth_refreshes",
            "OAuth token refreshes by outcome",
            ["outcome"],
            registry=self.registry,
        )

        self.run_writes = Counter(
            "gateway_run_writes",
            "Run records by what the group-commit writer did with them (written, failed, lost)",
            ["outcome"],
            registry=self.registry,
        )
        self.cache_drops = Counter(
            "gateway_cache_invalidations",
            "Cache areas dropped, by area and cause (local write, another process's write)",
            ["area", "cause"],
            registry=self.registry,
        )

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one HTTP request and its latency."""
        self.requests.labels(route, method, str(status)).inc()
        self.request_seconds.labels(route).observe(seconds)

    def observe_run(self, kind: str, status: str, seconds: float) -> None:
        """Count one finished script run of any kind and its duration."""
        self.runs.labels(kind, status).inc()
        self.run_seconds.labels(kind).observe(seconds)

    def observe_pool(self, stats: PoolStats) -> None:
        """Update the worker gauges from a pool snapshot."""
        self.workers.labels("idle").set(stats.idle)
        self.workers.labels("busy").set(stats.busy)
        self.workers.labels("starting").set(stats.starting)
        self.queue_waiting.set(stats.waiting)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
