"""The rerank HTTP service over one ``Reranker``: the common rerank APIs, probes, ``/info`` and ``/metrics``.

``POST /rerank`` (ours, or TEI's when the body has ``texts``), ``/v1/rerank`` (Cohere v1 and Jina, or
Voyage's) and ``/v2/rerank`` (Cohere v2) all run through the same checks, micro-batcher and ranking;
only the shapes differ (see ``apis``). A request is parsed, size-checked and costed in tokens before
it is queued (``admission``); its body is bounded before parsing (``guard``); work for a client that
has gone is dropped. ``/live`` answers while the process runs, ``/health`` once the model is warm.
"""

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from rerank_plugins._optional import require
from rerank_plugins.reranker import COST_SLICE, Reranker, TokenCost
from rerank_plugins.serving.admission import (
    Refused,
    check_cost,
    check_query,
    check_sizes,
    check_whole,
    parse_request,
    validation_detail,
)
from rerank_plugins.serving.apis import API_NAMES, Ask, render
from rerank_plugins.serving.auth import ApiKeyGuard
from rerank_plugins.serving.batching import IdempotencyConflict, MicroBatcher, Overloaded
from rerank_plugins.serving.guard import CLIENT_GONE, GuardStats, RequestGuard
from rerank_plugins.serving.limits import ServiceLimits
from rerank_plugins.serving.metrics import ServiceMetrics
from rerank_plugins.serving.observability import RequestLog, request_id_of
from rerank_plugins.serving.schemas import RerankRequest
from rerank_plugins.serving.uploads import BodyBudget

__all__ = ["Lifecycle", "ServiceLimits", "create_app", "served_name"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
MAX_IDEMPOTENCY_KEY = 200
RERANK_PATHS = ("/rerank", "/v1/rerank", "/v2/rerank")
ENDPOINTS = frozenset({*RERANK_PATHS, "/health", "/live", "/info", "/metrics", "/docs", "/openapi.json"})


@dataclass
class Lifecycle:
    """Where the service is: warm (``/health`` ready), draining after SIGTERM, and its URL once bound."""

    ready: bool = False
    draining: bool = False
    url: str | None = None


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


def _startup_line(reranker: Reranker, name: str, limits: ServiceLimits, url: str | None, keyed: bool) -> str:
    values = " ".join(f"{key}={value}" for key, value in asdict(limits).items())
    return (
        f"rerank-plugins ready at {url or '(address set by the server)'}: model {name} on {reranker.device} "
        f"({reranker.precision}, {reranker.runtime}); APIs {', '.join(RERANK_PATHS)}; "
        f"API key {'required' if keyed else 'off'}; limits {values}"
    )


def create_app(
    reranker: Reranker,
    limits: ServiceLimits | None = None,
    *,
    model_name: str | None = None,
    aliases: Sequence[str] = (),
    api_key: str | None = None,
) -> Any:
    """A FastAPI app serving ``reranker``; the model loads when the app starts. Needs the ``serve`` extra.

    ``model_name`` is the name answers show (default: the hub id, or a local directory's last part);
    a request's ``model`` must be it or one of ``aliases``. With ``api_key``, every route but the
    probes needs ``Authorization: Bearer <api_key>``.
    """
    require("fastapi", "serve")
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response

    limits = limits or ServiceLimits()
    name = model_name or served_name(reranker.model_name)
    names = frozenset([name, *aliases])
    lifecycle = Lifecycle()
    guard = GuardStats(BodyBudget(limits.max_inflight_body_bytes))
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
    metrics = ServiceMetrics(lambda: batcher.queued, lambda: dict(guard.refused), lambda: lifecycle.ready)
    batcher.on_pass = metrics.observe_pass

    async def warm_up() -> None:
        await asyncio.to_thread(reranker.pair_scores, [("warm-up", "warm-up")])  # compiles, allocates
        logger.info("%s", _startup_line(reranker, name, limits, lifecycle.url, api_key is not None))
        lifecycle.ready = True

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        reranker.load()
        await batcher.start()
        warming = asyncio.create_task(warm_up())
        yield
        lifecycle.draining, lifecycle.ready = True, False
        warming.cancel()
        await batcher.stop()

    app = FastAPI(title="rerank-plugins", lifespan=lifespan)
    app.add_middleware(RequestGuard, limits=limits, stats=guard, backlog=batcher.retry_after)
    if api_key is not None:
        app.add_middleware(ApiKeyGuard, api_key=api_key, stats=guard)
    app.add_middleware(RequestLog, metrics=metrics, endpoints=ENDPOINTS)
    app.state.batcher = batcher
    app.state.lifecycle = lifecycle
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
        logger.error("request %s failed", request_id_of(request.scope), exc_info=error)
        return JSONResponse({"detail": "the service failed on this request; see its log"}, status_code=500)

    def check_model(ask: Ask) -> None:
        if ask.model is not None and ask.model not in names:
            shown = ask.model if len(ask.model) <= 80 else ask.model[:80] + "..."
            raise Refused(
                404,
                f"model {shown!r} is not served here; this service serves {name!r} "
                "(start it with --served-model-name to accept other names)",
            )

    async def fit(ask: Ask) -> tuple[list[str], TokenCost, list[str]]:
        """The documents as they will be scored, their cost, and what was cut (refused where it may not be).

        The query is checked first, so an over-long one is refused before any document is tokenised.
        """
        kept_whole = reranker.max_query_tokens  # a longer query would be cut: never silently here
        query_limit = min(limits.max_query_tokens or kept_whole, kept_whole)
        check_query(await asyncio.to_thread(reranker.query_tokens, ask.query), query_limit)
        documents, warnings = ask.documents, []
        if ask.max_tokens_per_doc is not None:
            clipped: list[tuple[str, int]] = []
            for start in range(0, len(documents), COST_SLICE):
                piece = documents[start : start + COST_SLICE]
                clipped += await asyncio.to_thread(reranker.clip_documents, piece, ask.max_tokens_per_doc)
            documents = [text for text, _ in clipped]
            if cut := sum(1 for _, lost in clipped if lost):
                warnings.append(
                    f"{cut} of {len(documents)} documents were cut to max_tokens_per_doc={ask.max_tokens_per_doc}"
                )
        cost = TokenCost(0, [], [])
        for start in range(0, len(documents), COST_SLICE):  # a slice per thread hop: small requests interleave
            part = await asyncio.to_thread(reranker.token_cost, ask.query, documents[start : start + COST_SLICE])
            cost = TokenCost(part.query_tokens, cost.pair_tokens + part.pair_tokens,
                             cost.truncated_tokens + part.truncated_tokens)  # fmt: skip
            check_cost(cost, limits)  # over budget: refused before the rest is tokenised
        if not ask.truncate:
            check_whole(cost, reranker.max_length)
        if cut := sum(1 for lost in cost.truncated_tokens if lost):
            warnings.append(
                f"{cut} of {len(documents)} documents were cut to fit the model's {reranker.max_length}-token pairs"
            )
        return documents, cost, warnings

    async def answer(request: Request) -> Any:
        """Parse, check, cost, queue and score one request; answer in the shape it came in."""
        if lifecycle.draining:
            raise Refused(503, "the service is shutting down; retry later", {"Retry-After": "1"})
        body = await request.body()
        ask = await asyncio.to_thread(parse_request, request.url.path, body, limits.max_documents)
        check_model(ask)
        check_sizes(ask, limits)
        request_id = request_id_of(request.scope)
        if not ask.documents:
            return JSONResponse(render(ask, [], model=name, request_id=request_id, tokens=0, warnings=[]))
        if await request.is_disconnected():  # gone while its body was parsed: do not even tokenise it
            return Response(status_code=CLIENT_GONE)
        documents, cost, warnings = await fit(ask)
        key = request.headers.get("idempotency-key")
        if key is not None and not 0 < len(key) <= MAX_IDEMPOTENCY_KEY:
            raise Refused(422, f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters")
        try:
            job = batcher.submit(
                ask.query,
                documents,
                cost.pair_tokens,
                key=key,
                digest=hashlib.sha256(request.url.path.encode() + body).hexdigest() if key else None,
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
            return Response(status_code=CLIENT_GONE)
        tokens = sum(cost.pair_tokens)
        return JSONResponse(render(ask, ranking, model=name, request_id=request_id, tokens=tokens, warnings=warnings))

    ours = {"application/json": {"schema": RerankRequest.model_json_schema()}}
    for path in RERANK_PATHS:
        extra = {"requestBody": {"required": True, "content": ours}} if path == "/rerank" else None
        app.add_api_route(path, answer, methods=["POST"], openapi_extra=extra, summary=_SUMMARIES[path])

    @app.get("/live")
    async def live() -> dict[str, Any]:
        return {"status": "ok", "uptime_seconds": round(time.time() - started, 1)}

    @app.get("/health")
    async def health() -> Any:
        if lifecycle.ready:
            return {"status": "ok", "ready": True, "uptime_seconds": round(time.time() - started, 1)}
        status = "draining" if lifecycle.draining else "warming"
        return JSONResponse({"status": status, "ready": False}, status_code=503, headers={"Retry-After": "1"})

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.exposition(), media_type=metrics.content_type)

    @app.get("/info")
    async def info() -> dict[str, Any]:
        return {
            "model": name,
            "aliases": sorted(names - {name}),
            "apis": {path: _SUMMARIES[path] for path in RERANK_PATHS},
            "api_key": api_key is not None,
            "ready": lifecycle.ready,
            "device": reranker.device,
            "precision": reranker.precision,
            "runtime": reranker.runtime,
            "max_length": reranker.max_length,
            "long_documents": reranker.long_documents,
            "instruction": reranker.instruction,
            "calibration": _calibration_info(reranker),
            "limits": asdict(limits),
            "batches_run": batcher.batches,
            "queued": batcher.queued,
            "abandoned": batcher.abandoned,
            "tokens_per_second": round(batcher.tokens_per_second or 0.0, 1),
            "held_body_bytes": guard.held_bytes,
            "refused": {str(status): count for status, count in sorted(guard.refused.items())},
        }

    return app


def _calibration_info(reranker: Reranker) -> dict[str, Any] | None:
    """What makes ``relevance_score`` a probability here: the calibration's method, digest and held-out ECE."""
    calibration = reranker.calibration
    if calibration is None:
        return None
    calibrated = calibration.report.get("calibrated", {})
    return {"method": calibration.method, "digest": calibration.digest, "heldout_ece": calibrated.get("ece")}


_SUMMARIES = {
    "/rerank": f"{API_NAMES['rerank-plugins']} (documents) or {API_NAMES['tei']} (texts)",
    "/v1/rerank": f"{API_NAMES['cohere-v1']} (top_n) or {API_NAMES['voyage']} (top_k)",
    "/v2/rerank": API_NAMES["cohere-v2"],
}
