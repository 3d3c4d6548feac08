"""``RerankService``: the rerank service's state and answers, without HTTP, so each can be read and tested alone.

It holds the ``Reranker``, the limits, the micro-batcher, the metrics, the lifecycle and the served
names. ``answer`` runs one rerank request (parse, check, cost, queue, score, render), ``fit`` costs a
request against the limits, ``check_model`` checks the name it asks for, and ``info`` and ``health``
are what those endpoints say. ``create_app`` only routes HTTP to these.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple, TypeVar

from rerank_plugins.reranker import COST_SLICE, Reranker, TokenCost
from rerank_plugins.serving.admission import (
    Refused,
    check_cost,
    check_query,
    check_sizes,
    check_whole,
    parse_request,
)
from rerank_plugins.serving.apis import API_NAMES, Ask, render
from rerank_plugins.serving.batching import IdempotencyConflict, MicroBatcher, Overloaded
from rerank_plugins.serving.guard import GuardStats, Receive
from rerank_plugins.serving.limits import ServiceLimits
from rerank_plugins.serving.metrics import ServiceMetrics
from rerank_plugins.serving.uploads import BodyBudget

__all__ = ["RERANK_PATHS", "SUMMARIES", "Fitted", "Lifecycle", "RerankService", "Reply", "served_name"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
MAX_IDEMPOTENCY_KEY = 200
RERANK_PATHS = ("/rerank", "/v1/rerank", "/v2/rerank")
SUMMARIES = {
    "/rerank": f"{API_NAMES['rerank-plugins']} (documents) or {API_NAMES['tei']} (texts)",
    "/v1/rerank": f"{API_NAMES['cohere-v1']} (top_n) or {API_NAMES['voyage']} (top_k)",
    "/v2/rerank": API_NAMES["cohere-v2"],
}
"""Which APIs each rerank path speaks: the OpenAPI summaries and ``/info``'s ``apis``."""


@dataclass
class Lifecycle:
    """Where the service is: warm (``/health`` ready), draining after SIGTERM, and its URL once bound."""

    ready: bool = False
    draining: bool = False
    url: str | None = None


@dataclass(frozen=True)
class Reply:
    """A JSON answer with its HTTP status and headers, for endpoints whose status follows the service's state."""

    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


class Fitted(NamedTuple):
    """A request made to fit the limits: the documents as they will be scored, their cost, and what was cut."""

    documents: list[str]
    cost: TokenCost
    warnings: list[str]


def served_name(model: str) -> str:
    """The name the service shows for ``model``: a hub id as it is, a local directory by its last part only."""
    return os.path.basename(os.path.normpath(model)) if os.path.isdir(model) else model


async def _unless_gone(result: Awaitable[T], receive: Receive | None) -> T | None:
    """``result``, or ``None`` as soon as ``receive`` says the client disconnected (never, without it)."""
    if receive is None:
        return await result

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


async def _stays() -> bool:
    """A client that never leaves: the default for callers without a connection."""
    return False


def _unavailable(reason: str, error: Overloaded) -> Refused:
    """The 503 for ``error``, with its backlog estimate as ``Retry-After``."""
    return Refused(503, f"{reason}; retry later", {"Retry-After": str(error.retry_after)})


def _calibration_info(reranker: Reranker) -> dict[str, Any] | None:
    """What makes ``relevance_score`` a probability here: the calibration's method, digest and held-out ECE."""
    calibration = reranker.calibration
    if calibration is None:
        return None
    calibrated = calibration.report.get("calibrated", {})
    return {"method": calibration.method, "digest": calibration.digest, "heldout_ece": calibrated.get("ece")}


class RerankService:
    """One ``Reranker`` served under ``limits``: its batcher, metrics, lifecycle and the names it answers to.

    ``model_name`` is the name answers show (default: the hub id, or a local directory's last part);
    a request's ``model`` must be it or one of ``aliases``. ``keyed`` says whether an API key guards
    the routes (the key itself stays with the HTTP layer). Needs the ``serve`` extra (Prometheus).
    """

    def __init__(
        self,
        reranker: Reranker,
        limits: ServiceLimits | None = None,
        *,
        model_name: str | None = None,
        aliases: Sequence[str] = (),
        keyed: bool = False,
    ) -> None:
        self.reranker = reranker
        self.limits = limits or ServiceLimits()
        self.name = model_name or served_name(reranker.model_name)
        self.names = frozenset([self.name, *aliases])
        self.keyed = keyed
        self.lifecycle = Lifecycle()
        self.guard = GuardStats(BodyBudget(self.limits.max_inflight_body_bytes))
        self.batcher = MicroBatcher(reranker, self.limits)
        self.metrics = ServiceMetrics(
            lambda: self.batcher.queued, lambda: dict(self.guard.refused), lambda: self.lifecycle.ready
        )
        self.batcher.on_pass = self.metrics.observe_pass
        self.started = time.time()
        self._warming: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------------------

    async def startup(self) -> None:
        """Load the model and start the batcher; warm up in the background, then turn ready."""
        self.reranker.load()
        await self.batcher.start()
        self._warming = asyncio.create_task(self._warm_up())

    async def shutdown(self) -> None:
        """Stop answering: not ready, draining; stop warming and the batcher (waiting work gets 503)."""
        self.lifecycle.draining, self.lifecycle.ready = True, False
        if self._warming is not None:
            self._warming.cancel()
        await self.batcher.stop()

    async def _warm_up(self) -> None:
        await asyncio.to_thread(self.reranker.pair_scores, [("warm-up", "warm-up")])  # compiles, allocates
        logger.info("%s", self.startup_line())
        self.lifecycle.ready = True

    def startup_line(self) -> str:
        """The one log line saying where the service is, what it serves, and under which limits."""
        reranker = self.reranker
        values = " ".join(f"{key}={value}" for key, value in asdict(self.limits).items())
        return (
            f"rerank-plugins ready at {self.lifecycle.url or '(address set by the server)'}: model {self.name} "
            f"on {reranker.device} ({reranker.precision}, {reranker.runtime}); APIs {', '.join(RERANK_PATHS)}; "
            f"API key {'required' if self.keyed else 'off'}; limits {values}"
        )

    def uptime(self) -> float:
        """Seconds since the service was built, to a tenth."""
        return round(time.time() - self.started, 1)

    # -- answering -------------------------------------------------------------------------------------

    def check_open(self) -> None:
        """Refuse (503) a request that arrives while the service drains; checked before its body is read."""
        if self.lifecycle.draining:
            raise Refused(503, "the service is shutting down; retry later", {"Retry-After": "1"})

    def check_model(self, ask: Ask) -> None:
        """Refuse (404) a request naming a model this service does not answer to; no name is fine."""
        if ask.model is not None and ask.model not in self.names:
            shown = ask.model if len(ask.model) <= 80 else ask.model[:80] + "..."
            raise Refused(
                404,
                f"model {shown!r} is not served here; this service serves {self.name!r} "
                "(start it with --served-model-name to accept other names)",
            )

    async def fit(self, ask: Ask) -> Fitted:
        """The documents as they will be scored, their cost, and what was cut (refused where it may not be).

        The query is checked first, so an over-long one is refused before any document is tokenised.
        """
        reranker, limits = self.reranker, self.limits
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
        return Fitted(documents, cost, warnings)

    async def answer(
        self,
        path: str,
        body: bytes,
        *,
        request_id: str = "",
        idempotency_key: str | None = None,
        is_gone: Callable[[], Awaitable[bool]] = _stays,
        receive: Receive | None = None,
    ) -> Any | None:
        """Parse, check, cost, queue and score one request sent to ``path``; its answer in the shape it came in.

        ``None`` means the client has gone (``is_gone`` said so once parsed, or ``receive`` a disconnect
        while it was queued or scored): nobody reads the answer. Refusals raise :class:`Refused`.
        """
        ask = await asyncio.to_thread(parse_request, path, body, self.limits.max_documents)
        self.check_model(ask)
        check_sizes(ask, self.limits)
        if not ask.documents:
            return render(ask, [], model=self.name, request_id=request_id, tokens=0, warnings=[])
        if await is_gone():  # gone while its body was parsed: do not even tokenise it
            return None
        documents, cost, warnings = await self.fit(ask)
        key = idempotency_key
        if key is not None and not 0 < len(key) <= MAX_IDEMPOTENCY_KEY:
            raise Refused(422, f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters")
        digest = hashlib.sha256(path.encode() + body).hexdigest() if key else None
        try:
            job = self.batcher.submit(ask.query, documents, cost.pair_tokens, key=key, digest=digest)
        except Overloaded as error:
            raise _unavailable(f"service overloaded: {error}", error) from None
        except IdempotencyConflict as error:
            raise Refused(422, str(error)) from None
        try:
            ranking = await _unless_gone(self.batcher.result(job), receive)
        except Overloaded as error:  # the service stopped before this job was scored
            raise _unavailable(str(error), error) from None
        finally:
            self.batcher.release(job)
        if ranking is None:  # the client has gone: nobody reads this
            return None
        tokens = sum(cost.pair_tokens)
        return render(ask, ranking, model=self.name, request_id=request_id, tokens=tokens, warnings=warnings,
                      answer_from=self.reranker.answer_from())  # fmt: skip

    # -- describing ------------------------------------------------------------------------------------

    def live(self) -> dict[str, Any]:
        """``/live``: the process answers (whether or not the model is warm)."""
        return {"status": "ok", "uptime_seconds": self.uptime()}

    def health(self) -> Reply:
        """``/health``: 200 once warm; 503 with ``Retry-After`` while warming or draining."""
        if self.lifecycle.ready:
            return Reply({"status": "ok", "ready": True, "uptime_seconds": self.uptime()})
        status = "draining" if self.lifecycle.draining else "warming"
        return Reply({"status": status, "ready": False}, 503, {"Retry-After": "1"})

    def info(self) -> dict[str, Any]:
        """``/info``: what is served and how (model, APIs, limits), and the batcher's and guard's counters."""
        reranker, batcher, guard = self.reranker, self.batcher, self.guard
        return {
            "model": self.name,
            "aliases": sorted(self.names - {self.name}),
            "apis": {path: SUMMARIES[path] for path in RERANK_PATHS},
            "api_key": self.keyed,
            "ready": self.lifecycle.ready,
            "device": reranker.device,
            "precision": reranker.precision,
            "runtime": reranker.runtime,
            "max_length": reranker.max_length,
            "long_documents": reranker.long_documents,
            "instruction": reranker.instruction,
            "calibration": _calibration_info(reranker),
            "limits": asdict(self.limits),
            "batches_run": batcher.batches,
            "queued": batcher.queued,
            "abandoned": batcher.abandoned,
            "tokens_per_second": round(batcher.tokens_per_second or 0.0, 1),
            "held_body_bytes": guard.held_bytes,
            "refused": {str(status): count for status, count in sorted(guard.refused.items())},
        }
