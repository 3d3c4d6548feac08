"""``Reranker``: the one scoring core every adapter, command and benchmark goes through."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rerank_plugins.backend import PairScore, RerankBackend
from rerank_plugins.cache import ScoreCache, pair_digest
from rerank_plugins.devices import Precision, resolve_device, resolve_precision
from rerank_plugins.encoding import Encoder, PairEncoder, Unit
from rerank_plugins.inference import score_units
from rerank_plugins.loading import LoadedModel, check_cross_encoder_reference, load_model
from rerank_plugins.progress import tqdm
from rerank_plugins.prompting import PromptEncoder
from rerank_plugins.results import ScoringStats
from rerank_plugins.runtime import Runtime, resolve_runtime
from rerank_plugins.scores import aggregate_windows, scores_and_relevance
from rerank_plugins.validation import check_documents

__all__ = ["Reranker", "DEFAULT_MODEL", "TokenCost"]

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "cross-encoder/ms-marco-MiniLM-L6-v2"
CHUNK_PAIRS = 2048
"""Pairs tokenised and scored together: length sorting works within a chunk, memory stays bounded."""
PROGRESS_MIN_PAIRS = 5000
"""Jobs of at least this many new pairs show a progress bar unless told otherwise."""
LongDocuments = Literal["truncate", "window"]
WindowAggregation = Literal["max", "mean"]


COST_SLICE = 64
"""Documents tokenised at a time when costing a request, so counting never holds a large job's ids."""


@dataclass(frozen=True)
class TokenCost:
    """What scoring one query's documents would cost, counted before any forward pass.

    Attributes:
        query_tokens: Tokens of the query alone (no special tokens).
        pair_tokens: Model tokens each (query, document) pair runs, windows and special tokens included.
        truncated_tokens: Tokens of each document the model would not see (0 in window mode).
    """

    query_tokens: int
    pair_tokens: list[int]
    truncated_tokens: list[int] = field(default_factory=list)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


class Reranker(RerankBackend):
    """Scores (query, document) pairs with a cross-encoder and ranks documents best first.

    The model loads on first use and is shared by every ``Reranker`` in the process with the same
    model, revision, device and precision, so adapters over one model hold one copy of its weights.

    Args:
        model: Hugging Face id or local directory of a cross-encoder.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``; ``None`` picks cuda, then mps, then cpu.
        precision: ``"auto"`` (bf16 on CPUs with native bf16, fp16 on CUDA, else fp32), ``"fp32"``,
            ``"bf16"``, ``"fp16"`` or ``"int8"`` (OpenVINO only). Scores are always returned in fp32.
        runtime: ``"auto"`` (OpenVINO on CPU when the ``openvino`` extra is installed, else torch),
            ``"torch"`` or ``"openvino"``. OpenVINO exports the model once and caches it on disk
            (``$RERANK_PLUGINS_CACHE``, default ``~/.cache/rerank-plugins``).
        batch_size: Pairs per forward pass.
        max_length: Token limit of one pair; defaults to the model's own configured limit.
        long_documents: ``"truncate"`` cuts a document to fit; ``"window"`` scores overlapping windows
            over the whole document and aggregates them per document.
        window_aggregation: ``"max"`` or ``"mean"`` over a document's windows.
        window_overlap: Tokens shared by consecutive windows; ``None`` means half a window.
        cache_size: Entries in an LRU score cache (0 turns it off).
        revision: Model revision on the hub (branch, tag or commit).
        trust_remote_code: Run custom model code from the model repository (off by default).
        show_progress_bar: ``None`` shows one for large jobs only.
        instruction: For causal-LM rerankers (Qwen3-Reranker, ...): the task instruction in their prompt;
            ``None`` keeps the model's own default. Sequence classifiers have no prompt and refuse it.

    Example:
        >>> reranker = Reranker("../shared/models/minilm-l6-scifact-ce")  # doctest: +SKIP
        >>> [r.index for r in reranker.rank("Vitamin D lowers fracture risk", docs, top_n=3)]  # doctest: +SKIP
        [4, 0, 7]
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        device: str | None = None,
        precision: Precision = "auto",
        runtime: Runtime = "auto",
        batch_size: int = 32,
        max_length: int | None = None,
        long_documents: LongDocuments = "truncate",
        window_aggregation: WindowAggregation = "max",
        window_overlap: int | None = None,
        cache_size: int = 0,
        revision: str | None = None,
        trust_remote_code: bool = False,
        show_progress_bar: bool | None = None,
        instruction: str | None = None,
    ) -> None:
        self.model_name = check_cross_encoder_reference(model)
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.runtime = resolve_runtime(runtime, self.device, self.precision)
        self.batch_size = _positive_int("batch_size", batch_size)
        self._max_length = None if max_length is None else _positive_int("max_length", max_length)
        if long_documents not in ("truncate", "window"):
            raise ValueError(f"long_documents must be 'truncate' or 'window', got {long_documents!r}")
        if window_aggregation not in ("max", "mean"):
            raise ValueError(f"window_aggregation must be 'max' or 'mean', got {window_aggregation!r}")
        if window_overlap is not None and (
            isinstance(window_overlap, bool) or not isinstance(window_overlap, int) or window_overlap < 0
        ):
            raise ValueError(f"window_overlap must be None or an int >= 0, got {window_overlap!r}")
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise ValueError(f"cache_size must be an int >= 0, got {cache_size!r}")
        self.long_documents: LongDocuments = long_documents
        self.window_aggregation: WindowAggregation = window_aggregation
        self.window_overlap = window_overlap
        self.revision = revision
        self.trust_remote_code = bool(trust_remote_code)
        self.show_progress_bar = show_progress_bar
        if instruction is not None and (not isinstance(instruction, str) or not instruction.strip()):
            raise ValueError(f"instruction must be None or a non-empty string, got {instruction!r}")
        self.instruction = instruction
        self._cache: ScoreCache[PairScore] = ScoreCache(cache_size)
        self._loaded: LoadedModel | None = None
        self._encoder: Encoder | None = None
        self._load_lock = threading.Lock()
        self._stats = ScoringStats()
        self._stats_lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"Reranker(model={self.model_name!r}, device={self.device!r}, precision={self.precision!r}, "
            f"runtime={self.runtime!r}, "
            f"batch_size={self.batch_size}, long_documents={self.long_documents!r}"
            + ("" if self.instruction is None else f", instruction={self.instruction!r}")
            + ")"
        )

    def options(self) -> dict[str, Any]:
        """The constructor arguments of this instance: ``Reranker(**r.options())`` builds an equivalent one."""
        return {
            "model": self.model_name,
            "device": self.device,
            "precision": self.precision,
            "runtime": self.runtime,
            "batch_size": self.batch_size,
            "max_length": self._max_length,
            "long_documents": self.long_documents,
            "window_aggregation": self.window_aggregation,
            "window_overlap": self.window_overlap,
            "cache_size": self._cache.capacity,
            "revision": self.revision,
            "trust_remote_code": self.trust_remote_code,
            "show_progress_bar": self.show_progress_bar,
            "instruction": self.instruction,
        }

    # -- loading -----------------------------------------------------------------------------------

    def load(self) -> Reranker:
        """Load the model now rather than on first use (it is shared with other instances)."""
        self._model()
        return self

    def _model(self) -> tuple[LoadedModel, Encoder]:
        with self._load_lock:
            if self._loaded is None or self._encoder is None:
                loaded = load_model(
                    self.model_name,
                    revision=self.revision,
                    device=self.device,
                    precision=self.precision,
                    runtime=self.runtime,
                    trust_remote_code=self.trust_remote_code,
                )
                if self._max_length is not None and self._max_length > loaded.max_positions:
                    raise ValueError(
                        f"max_length={self._max_length} exceeds the {loaded.max_positions} "
                        f"positions {self.model_name!r} was built for"
                    )
                encoder = self._pair_encoder(loaded)
                if (self._max_length or loaded.max_length) <= encoder.special_count + 2:
                    raise ValueError(f"max_length={self._max_length} leaves no room for a query and a document")
                self._loaded, self._encoder = loaded, encoder
            return self._loaded, self._encoder

    def _pair_encoder(self, loaded: LoadedModel) -> Encoder:
        if loaded.is_causal:
            return PromptEncoder(loaded.tokenizer, self.instruction, self.model_name)
        if self.instruction is not None:
            raise ValueError(
                f"instruction= is for causal-LM rerankers (Qwen3-Reranker, mxbai-rerank-v2, ...); "
                f"{self.model_name!r} is a sequence classifier, which takes no prompt"
            )
        return PairEncoder(loaded.tokenizer)

    @property
    def max_length(self) -> int:
        """Token limit of one (query, document) pair; the model's own limit unless set."""
        return self._max_length if self._max_length is not None else self._model()[0].max_length

    @property
    def max_query_tokens(self) -> int:
        """The longest query kept whole; a longer one is cut (with a warning) to leave room for the document."""
        return self._model()[1].query_room(self.max_length)

    def token_cost(self, query: str, documents: Sequence[str]) -> TokenCost:
        """Tokens ``query`` has and each pair would run through the model, without scoring anything.

        A service checks budgets with it before admitting work; it tokenises a few documents at a time.
        """
        _, encoder = self._model()
        window, max_length = self.long_documents == "window", self.max_length
        pair_tokens: list[int] = []
        truncated: list[int] = []
        for start in range(0, len(documents), COST_SLICE):
            pairs = [(query, document) for document in documents[start : start + COST_SLICE]]
            for plan in encoder.plans(pairs, max_length, window, self.window_overlap):
                pair_tokens.append(sum(len(ids) for ids, _ in plan.units))
                truncated.append(plan.truncated_tokens)
        return TokenCost(encoder.query_tokens(query), pair_tokens, truncated)

    def clip_documents(self, documents: Sequence[str], max_tokens: int) -> list[tuple[str, int]]:
        """Each document cut to its first ``max_tokens`` tokens, with the tokens it lost (0: whole).

        A per-request document budget (Cohere's ``max_tokens_per_doc``) on top of ``max_length``.
        """
        max_tokens = _positive_int("max_tokens", max_tokens)
        return self._model()[1].clip(check_documents(documents), max_tokens)

    @property
    def stats(self) -> ScoringStats:
        """Pairs, model inputs, tokens and time this instance has spent scoring (see ``reset_stats``)."""
        return self._stats

    def reset_stats(self) -> None:
        """Start the ``stats`` counters again from zero."""
        with self._stats_lock:
            self._stats = ScoringStats()

    @property
    def cache_size(self) -> int:
        """Capacity of the score cache (0 when off)."""
        return self._cache.capacity

    def _settings_key(self, loaded: LoadedModel) -> tuple[Any, ...]:
        commit = getattr(loaded.network.config, "_commit_hash", None)
        return (
            loaded.name,
            loaded.revision,
            commit,
            self.max_length,
            loaded.precision,
            loaded.runtime,
            self.long_documents,
            self.window_aggregation,
            self.window_overlap,
            self.instruction,
        )

    # -- scoring -----------------------------------------------------------------------------------

    def _score_pairs(self, pairs: list[tuple[str, str]]) -> list[PairScore]:
        """Score pairs once each (duplicates and cache hits are not run again), in input order."""
        unique = list(dict.fromkeys(pairs))
        loaded, encoder = self._model()
        settings = self._settings_key(loaded)
        known: dict[tuple[str, str], PairScore] = {}
        missing: list[tuple[str, str]] = []
        for pair in unique:
            cached = self._cache.get((settings, pair_digest(*pair)))
            if cached is None:
                missing.append(pair)
            else:
                known[pair] = cached
        show = self.show_progress_bar if self.show_progress_bar is not None else len(missing) >= PROGRESS_MIN_PAIRS
        with tqdm(total=len(missing), desc="Reranking", unit="pair", disable=not show) as progress:
            for start in range(0, len(missing), CHUNK_PAIRS):  # bounded memory for any number of pairs
                chunk = missing[start : start + CHUNK_PAIRS]
                for pair, result in zip(chunk, self._run(loaded, encoder, chunk, progress), strict=True):
                    known[pair] = result
                    self._cache.put((settings, pair_digest(*pair)), result)
        return [known[pair] for pair in pairs]

    def _run(
        self, loaded: LoadedModel, encoder: Encoder, pairs: list[tuple[str, str]], progress: tqdm[Any]
    ) -> list[PairScore]:
        started = time.perf_counter()
        window, max_length = self.long_documents == "window", self.max_length
        units: list[Unit] = []
        owners: list[int] = []
        truncated: list[int] = []
        keep = encoder.query_room(max_length)
        for owner, plan in enumerate(encoder.plans(pairs, max_length, window, self.window_overlap)):
            if plan.query_tokens > keep:
                logger.warning(
                    "query of %d tokens leaves no room for the document within max_length=%d; "
                    "keeping its first %d tokens",
                    plan.query_tokens,
                    max_length,
                    keep,
                )
            units.extend(plan.units)
            owners.extend([owner] * len(plan.units))
            truncated.append(plan.truncated_tokens)
        progress.total += len(units) - len(pairs)  # windows: count model inputs, not pairs
        scored = score_units(loaded, encoder, units, self.batch_size, progress.update)
        margins, windows = aggregate_windows(scored.margins, owners, len(pairs), self.window_aggregation)
        scores, relevance = scores_and_relevance(margins, loaded)
        spent = ScoringStats(len(pairs), len(units), scored.tokens, scored.padded_tokens, time.perf_counter() - started)
        with self._stats_lock:
            self._stats = self._stats + spent
        return [
            PairScore(float(score), float(rel), int(cut), int(count))
            for score, rel, cut, count in zip(scores, relevance, truncated, windows, strict=True)
        ]
