"""Prometheus metrics of one server, in their own registry (several apps can live in one process).

    curl -s 127.0.0.1:8000/metrics | grep kmed_
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

# Turn time of the default composer is milliseconds; a model's is seconds. The buckets cover both.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("kmed_http_requests", "HTTP requests by route and status", ["method", "route", "status"], registry=r)
        self.latency = Histogram("kmed_http_request_seconds", "HTTP request latency (to the last byte for streams)",
                                 ["route"], buckets=_BUCKETS, registry=r)
        self.turn_latency = Histogram("kmed_turn_seconds", "Agent turn time in a worker thread", buckets=_BUCKETS, registry=r)
        self.triage = Counter("kmed_triage", "Replies by triage level", ["level"], registry=r)
        self.kinds = Counter("kmed_replies", "Replies by kind (answer, clarify, emergency, refusal, empty, error)",
                             ["kind"], registry=r)
        self.refusals = Counter("kmed_refusals", "Replies that refused the request", registry=r)
        self.turn_errors = Counter("kmed_turn_errors", "Turns that failed outside the agent's own guard", registry=r)
        self.rejected = Counter("kmed_rejected", "Requests turned away before a turn", ["reason"], registry=r)
        self.queue_depth = Gauge("kmed_queue_depth", "Turns waiting for a worker thread", registry=r)
        self.in_flight = Gauge("kmed_turns_admitted", "Turns running or waiting", registry=r)
        self.sessions = Gauge("kmed_sessions", "Live (unexpired) sessions in the store", registry=r)

    def observe_reply(self, reply, seconds: float) -> None:
        self.turn_latency.observe(seconds)
        self.triage.labels(reply.triage.level).inc()
        self.kinds.labels(reply.kind).inc()
        if reply.refused:
            self.refusals.inc()

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
