"""The rerank HTTP service: ``POST /rerank``, ``GET /health``, ``GET /info`` over one ``Reranker``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any

from rerank_plugins._optional import require
from rerank_plugins.reranker import Reranker
from rerank_plugins.serving.batching import MicroBatcher, Overloaded
from rerank_plugins.serving.schemas import RerankRequest, RerankResponse, ResultDocument, ResultRow, Usage

__all__ = ["ServiceLimits", "create_app"]


@dataclass(frozen=True)
class ServiceLimits:
    """What one request may ask, and how requests are batched and queued."""

    max_documents: int = 1000
    max_document_bytes: int = 100_000
    max_wait_ms: float = 5.0
    max_batch_pairs: int = 512
    max_queue: int = 256
    micro_batching: bool = True
    retry_after_seconds: int = 1


def _too_large(request: RerankRequest, limits: ServiceLimits) -> str | None:
    if len(request.documents) > limits.max_documents:
        return f"{len(request.documents)} documents exceed the limit of {limits.max_documents} per request"
    for position, document in enumerate(request.documents):
        size = len(document.encode("utf-8", "surrogatepass"))
        if size > limits.max_document_bytes:
            return f"documents[{position}] is {size} bytes; the limit is {limits.max_document_bytes} bytes"
    return None


def create_app(reranker: Reranker, limits: ServiceLimits | None = None) -> Any:
    """A FastAPI app serving ``reranker``; the model loads when the app starts. Needs the ``serve`` extra."""
    require("fastapi", "serve")
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    limits = limits or ServiceLimits()
    batcher = MicroBatcher(
        reranker,
        max_wait_ms=limits.max_wait_ms,
        max_batch_pairs=limits.max_batch_pairs,
        max_queue=limits.max_queue,
        enabled=limits.micro_batching,
    )

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        reranker.load()
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="rerank-plugins", lifespan=lifespan)
    app.state.batcher = batcher
    started = time.time()

    @app.post("/rerank", response_model=RerankResponse, response_model_exclude_none=True)
    async def rerank(request: RerankRequest) -> Any:
        problem = _too_large(request, limits)
        if problem:
            return JSONResponse({"detail": problem}, status_code=413)
        try:
            ranking = await batcher.rank(request.query, request.documents) if request.documents else []
        except Overloaded as error:
            return JSONResponse(
                {"detail": f"service overloaded: {error}; retry later"},
                status_code=503,
                headers={"Retry-After": str(limits.retry_after_seconds)},
            )
        kept = ranking[: request.top_n] if request.top_n is not None else ranking
        rows = [
            ResultRow(
                index=result.index,
                relevance_score=result.relevance_score,
                score=result.score,
                truncated_tokens=result.truncated_tokens,
                windows=result.windows,
                document=ResultDocument(text=result.document) if request.return_documents else None,
            )
            for result in kept
        ]
        return RerankResponse(model=reranker.model_name, results=rows, usage=Usage(pairs=len(request.documents)))

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "uptime_seconds": round(time.time() - started, 1)}

    @app.get("/info")
    async def info() -> dict[str, Any]:
        return {
            "model": reranker.model_name,
            "device": reranker.device,
            "precision": reranker.precision,
            "runtime": reranker.runtime,
            "max_length": reranker.max_length,
            "long_documents": reranker.long_documents,
            "limits": asdict(limits),
            "batches_run": batcher.batches,
        }

    return app
