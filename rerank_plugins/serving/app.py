"""The rerank HTTP service: ``POST /rerank``, ``GET /health``, ``GET /info`` over one ``Reranker``.

A request is parsed, size-checked and costed in tokens before it is queued (see ``admission``); the
body itself is bounded before parsing (``guard``); work for a client that has gone is dropped.
"""

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any, TypeVar

from rerank_plugins._optional import require
from rerank_plugins.reranker import Reranker
from rerank_plugins.serving.admission import Refused, check_cost, check_sizes, parse_request, validation_detail
from rerank_plugins.serving.batching import IdempotencyConflict, MicroBatcher, Overloaded
from rerank_plugins.serving.guard import GuardStats, RequestGuard
from rerank_plugins.serving.limits import ServiceLimits
from rerank_plugins.serving.schemas import RerankRequest, RerankResponse, ResultDocument, ResultRow, Usage

__all__ = ["ServiceLimits", "create_app", "served_name"]

T = TypeVar("T")
MAX_IDEMPOTENCY_KEY = 200


def served_name(model: str) -> str:
    """The name the service shows for ``model``: a hub id as it is, a local directory by its last part only."""
    return os.path.basename(os.path.normpath(model)) if os.path.isdir(model) else model


async def _unless_gone(result: Awaitable[T], receive: Callable[[], Awaitable[Any]]) -> T | None:
    """``result``, or ``None`` as soon as the client disconnects."""

    async def gone() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    waiting, watching = asyncio.ensure_future(result), asyncio.ensure_future(gone())
    try:
        await asyncio.wait({waiting, watching}, return_when=asyncio.FIRST_COMPLETED)
        return waiting.result() if waiting.done() else None
    finally:
        waiting.cancel()
        watching.cancel()


def _unavailable(reason: str, error: Overloaded) -> Refused:
    return Refused(503, f"{reason}; retry later", {"Retry-After": str(error.retry_after)})


def create_app(reranker: Reranker, limits: ServiceLimits | None = None, *, model_name: str | None = None) -> Any:
    """A FastAPI app serving ``reranker``; the model loads when the app starts. Needs the ``serve`` extra.

    ``model_name`` is the name answers show (default: the hub id, or a local directory's last part).
    """
    require("fastapi", "serve")
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response

    limits = limits or ServiceLimits()
    name = model_name or served_name(reranker.model_name)
    batcher = MicroBatcher(
        reranker,
        max_wait_ms=limits.max_wait_ms,
        max_batch_pairs=limits.max_batch_pairs,
        max_batch_tokens=limits.max_batch_tokens,
        max_queue=limits.max_queue,
        max_queued_pairs=limits.max_queued_pairs,
        max_queued_tokens=limits.max_queued_tokens,
        enabled=limits.micro_batching,
    )

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        reranker.load()
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="rerank-plugins", lifespan=lifespan)
    guard = GuardStats()
    app.add_middleware(RequestGuard, limits=limits, stats=guard, retry_after=batcher.retry_after)
    app.state.batcher = batcher
    started = time.time()

    @app.exception_handler(Refused)
    async def refused(request: Request, error: Refused) -> JSONResponse:
        guard.count(error.status)
        return JSONResponse({"detail": error.detail}, status_code=error.status, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        guard.count(422)
        detail = validation_detail(error.errors())
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(Exception)
    async def failed(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"detail": "the service failed on this request; see its log"}, status_code=500)

    body_schema = {"application/json": {"schema": RerankRequest.model_json_schema()}}
    schema = {"requestBody": {"required": True, "content": body_schema}}

    @app.post("/rerank", response_model=RerankResponse, response_model_exclude_none=True, openapi_extra=schema)
    async def rerank(request: Request) -> Any:
        body = await request.body()
        parsed = await asyncio.to_thread(parse_request, body)
        check_sizes(parsed, limits)
        if not parsed.documents:
            return RerankResponse(model=name, results=[], usage=Usage(pairs=0))
        if await request.is_disconnected():  # gone while its body was parsed: do not even tokenise it
            return Response(status_code=499)
        cost = await asyncio.to_thread(reranker.token_cost, parsed.query, parsed.documents)
        kept_whole = reranker.max_query_tokens  # a longer query would be cut: never silently here
        check_cost(cost, limits, min(limits.max_query_tokens or kept_whole, kept_whole))
        key = request.headers.get("idempotency-key")
        if key is not None and not 0 < len(key) <= MAX_IDEMPOTENCY_KEY:
            raise Refused(422, f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters")
        try:
            job = batcher.submit(
                parsed.query,
                parsed.documents,
                cost.pair_tokens,
                key=key,
                digest=hashlib.sha256(body).hexdigest() if key else None,
            )
        except Overloaded as error:
            raise _unavailable(f"service overloaded: {error}", error) from None
        except IdempotencyConflict as error:
            raise Refused(422, str(error)) from None
        try:
            ranking = await _unless_gone(batcher.result(job), request.receive)
        except Overloaded as error:  # the service stopped before this job was scored
            raise _unavailable(str(error), error) from None
        finally:
            batcher.release(job)
        if ranking is None:  # the client has gone: nobody reads this
            return Response(status_code=499)
        kept = ranking[: parsed.top_n] if parsed.top_n is not None else ranking
        rows = [
            ResultRow(
                index=result.index,
                relevance_score=result.relevance_score,
                score=result.score,
                truncated_tokens=result.truncated_tokens,
                windows=result.windows,
                document=ResultDocument(text=result.document) if parsed.return_documents else None,
            )
            for result in kept
        ]
        return RerankResponse(model=name, results=rows, usage=Usage(pairs=len(parsed.documents)))

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "uptime_seconds": round(time.time() - started, 1)}

    @app.get("/info")
    async def info() -> dict[str, Any]:
        return {
            "model": name,
            "device": reranker.device,
            "precision": reranker.precision,
            "runtime": reranker.runtime,
            "max_length": reranker.max_length,
            "long_documents": reranker.long_documents,
            "instruction": reranker.instruction,
            "limits": asdict(limits),
            "batches_run": batcher.batches,
            "queued": batcher.queued,
            "abandoned": batcher.abandoned,
            "tokens_per_second": round(batcher.tokens_per_second or 0.0, 1),
            "held_body_bytes": guard.held_bytes,
            "refused": {str(status): count for status, count in sorted(guard.refused.items())},
        }

    return app
