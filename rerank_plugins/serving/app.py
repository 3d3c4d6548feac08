"""The rerank HTTP service over one ``Reranker``: the common rerank APIs, probes, ``/info`` and ``/metrics``.

``POST /rerank`` (ours, or TEI's when the body has ``texts``), ``/v1/rerank`` (Cohere v1 and Jina, or
Voyage's) and ``/v2/rerank`` (Cohere v2) all run through the same checks, micro-batcher and ranking;
only the shapes differ (see ``apis``). A request is parsed, size-checked and costed in tokens before
it is queued (``admission``); its body is bounded before parsing (``guard``); work for a client that
has gone is dropped. ``/live`` answers while the process runs, ``/health`` once the model is warm.
The service's state and answers live in :class:`~rerank_plugins.serving.service.RerankService`;
this module only routes HTTP to it.
"""

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from rerank_plugins._optional import require
from rerank_plugins.reranker import Reranker
from rerank_plugins.serving.admission import Refused, validation_detail
from rerank_plugins.serving.auth import ApiKeyGuard
from rerank_plugins.serving.guard import CLIENT_GONE, RequestGuard
from rerank_plugins.serving.limits import ServiceLimits
from rerank_plugins.serving.observability import RequestLog, request_id_of
from rerank_plugins.serving.schemas import RerankRequest
from rerank_plugins.serving.service import RERANK_PATHS, SUMMARIES, Lifecycle, RerankService, served_name

__all__ = ["Lifecycle", "ServiceLimits", "create_app", "served_name"]

logger = logging.getLogger(__name__)

ENDPOINTS = frozenset({*RERANK_PATHS, "/health", "/live", "/info", "/metrics", "/docs", "/openapi.json"})


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

    service = RerankService(reranker, limits, model_name=model_name, aliases=aliases, keyed=api_key is not None)

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        await service.startup()
        yield
        await service.shutdown()

    app = FastAPI(title="rerank-plugins", lifespan=lifespan)
    app.add_middleware(RequestGuard, limits=service.limits, stats=service.guard, backlog=service.batcher.retry_after)
    if api_key is not None:
        app.add_middleware(ApiKeyGuard, api_key=api_key, stats=service.guard)
    app.add_middleware(RequestLog, metrics=service.metrics, endpoints=ENDPOINTS)
    app.state.service = service
    app.state.batcher = service.batcher
    app.state.lifecycle = service.lifecycle

    @app.exception_handler(Refused)
    async def refused(request: Request, error: Refused) -> JSONResponse:
        service.guard.count(error.status)
        return JSONResponse({"detail": error.detail}, status_code=error.status, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        service.guard.count(422)
        return JSONResponse({"detail": validation_detail(error.errors())}, status_code=422)

    @app.exception_handler(Exception)
    async def failed(request: Request, error: Exception) -> JSONResponse:
        logger.error("request %s failed", request_id_of(request.scope), exc_info=error)
        return JSONResponse({"detail": "the service failed on this request; see its log"}, status_code=500)

    async def answer(request: Request) -> Any:
        """Parse, check, cost, queue and score one request; answer in the shape it came in."""
        service.check_open()  # before the body is read
        rendered = await service.answer(
            request.url.path,
            await request.body(),
            request_id=request_id_of(request.scope),
            idempotency_key=request.headers.get("idempotency-key"),
            is_gone=request.is_disconnected,
            receive=request.receive,
        )
        return Response(status_code=CLIENT_GONE) if rendered is None else JSONResponse(rendered)

    ours = {"application/json": {"schema": RerankRequest.model_json_schema()}}
    for path in RERANK_PATHS:
        extra = {"requestBody": {"required": True, "content": ours}} if path == "/rerank" else None
        app.add_api_route(path, answer, methods=["POST"], openapi_extra=extra, summary=SUMMARIES[path])

    @app.get("/live")
    async def live() -> dict[str, Any]:
        return service.live()

    @app.get("/health")
    async def health() -> Any:
        reply = service.health()
        return JSONResponse(reply.body, status_code=reply.status, headers=reply.headers)

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(service.metrics.exposition(), media_type=service.metrics.content_type)

    @app.get("/info")
    async def info() -> dict[str, Any]:
        return service.info()

    return app
