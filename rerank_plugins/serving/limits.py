"""``ServiceLimits``: every bound the rerank service enforces, with defaults safe for a shared service."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from rerank_plugins.validation import is_number

__all__ = ["ServiceLimits"]

MiB = 2**20


@dataclass(frozen=True)
class ServiceLimits:
    """What one request may ask, how much work may wait, and how long a connection may dawdle.

    Requests over a per-request limit get 413 before any scoring; work that would overflow the queue
    gets 503 with a ``Retry-After`` estimated from the backlog; slow or oversized connections are cut.

    Each field's ``help`` (its metadata, shown by ``rerank-plugins serve --help``) says what it bounds.
    """

    max_documents: int = field(default=1000, metadata={"help": "Documents in one request."})
    max_document_bytes: int = field(default=100_000, metadata={"help": "UTF-8 bytes of one document."})
    max_query_bytes: int = field(default=16_384, metadata={"help": "UTF-8 bytes of the query."})
    max_query_tokens: int | None = field(
        default=None, metadata={"help": "Tokens of the query; ``None`` is the longest query the model keeps whole."}
    )
    max_request_tokens: int = field(
        default=262_144,
        metadata={"help": "Model tokens one request may cost (pairs after truncation, windows counted)."},
    )
    max_body_bytes: int = field(
        default=8 * MiB,
        metadata={"help": "Bytes of one request body, checked from ``Content-Length`` and while reading."},
    )
    max_inflight_body_bytes: int = field(
        default=64 * MiB, metadata={"help": "Bytes of all request bodies held at once (reading, parsing, queued)."}
    )
    max_header_bytes: int = field(default=16_384, metadata={"help": "Bytes of a request's header block."})
    max_headers: int = field(default=100, metadata={"help": "Header lines in one request."})
    header_timeout_s: float = field(
        default=10.0, metadata={"help": "Seconds a connection may take to send a request's headers."}
    )
    body_timeout_s: float = field(default=30.0, metadata={"help": "Seconds a request may take to send its whole body."})
    keep_alive_s: float = field(default=5.0, metadata={"help": "Seconds an idle keep-alive connection is kept."})
    max_connections: int = field(
        default=512,
        metadata={"help": "Open connections; past it the oldest idle ones (no request under way) are closed."},
    )
    max_inflight_requests: int = field(
        default=256,
        metadata={"help": "Requests being read, checked, queued or scored at once; more get 503 (never the probes)."},
    )
    max_queue: int = field(default=256, metadata={"help": "Requests waiting for the model."})
    max_queued_pairs: int = field(default=16_384, metadata={"help": "Pairs waiting for the model, over all requests."})
    max_queued_tokens: int = field(default=2_097_152, metadata={"help": "Model tokens waiting, over all requests."})
    max_wait_ms: float = field(
        default=5.0, metadata={"help": "How long the micro-batcher waits for more requests to share a pass."}
    )
    max_batch_pairs: int = field(default=512, metadata={"help": "Pairs in one pass through the model."})
    max_batch_tokens: int = field(
        default=32_768,
        metadata={
            "help": "Model tokens in one pass; a larger request is scored over several passes, "
            "and work for a client that has gone stops at the next pass."
        },
    )
    micro_batching: bool = field(default=True, metadata={"help": "``False`` runs one request per pass."})
    drain_timeout_s: float = field(
        default=30.0, metadata={"help": "On SIGTERM, seconds to finish the work of clients still connected."}
    )

    def __post_init__(self) -> None:
        for limit in fields(self):
            value = getattr(self, limit.name)
            if limit.name == "micro_batching" or (limit.name == "max_query_tokens" and value is None):
                continue
            if not is_number(value):
                raise TypeError(f"ServiceLimits.{limit.name} must be a number, got {type(value).__name__}")
            if value < 0 or (value == 0 and limit.name != "max_wait_ms"):
                raise ValueError(f"ServiceLimits.{limit.name} must be > 0, got {value!r}")
        for small, large in (
            ("max_documents", "max_queued_pairs"),
            ("max_request_tokens", "max_queued_tokens"),
            ("max_body_bytes", "max_inflight_body_bytes"),
            ("max_inflight_requests", "max_connections"),
        ):
            if getattr(self, small) > getattr(self, large):
                raise ValueError(f"ServiceLimits.{small} must not exceed {large}: one request has to fit")
