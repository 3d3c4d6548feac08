"""``Reranker``: the one scoring core every adapter, command and benchmark goes through."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rerank_plugins.backend import PairScore, RerankBackend
from rerank_plugins.cache import ScoreCache, pair_digest
from rerank_plugins.calibration.calibrator import Calibration
from rerank_plugins.calibration.identity import weights_digest
from rerank_plugins.calibration.resolve import resolve_calibration
from rerank_plugins.devices import Precision, resolve_device, resolve_precision
from rerank_plugins.encoding import Encoder, PairEncoder, TokenMemo
from rerank_plugins.inference import BatchPolicy, UnitScores
from rerank_plugins.loading import LoadedModel, check_cross_encoder_reference, load_model
from rerank_plugins.pipeline import pipelined
from rerank_plugins.progress import tqdm
from rerank_plugins.prompting import PromptEncoder
from rerank_plugins.results import RankedResult, ScoringStats
from rerank_plugins.runtime import Runtime, resolve_runtime
from rerank_plugins.scores import aggregate_windows, scores_and_relevance
from rerank_plugins.units import ChunkPlan
from rerank_plugins.validation import check_documents
from rerank_plugins.windows import WindowBoundaries, widen_span

__all__ = ["Reranker", "DEFAULT_MODEL", "TokenCost"]

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "cross-encoder/ms-marco-MiniLM-L6-v2"
CHUNK_PAIRS = 2048
"""Pairs tokenised and scored together: length sorting works within a chunk, memory stays bounded."""
MEMO_TEXTS = 8192
"""Distinct texts whose token ids one call keeps across its chunks (a few MB), so repeats are tokenised once."""
PROGRESS_MIN_PAIRS = 5000
"""Jobs of at least this many new pairs show a progress bar unless told otherwise."""
LongDocuments = Literal["truncate", "window"]
WindowAggregation = Literal["max", "mean"]


BATCH_DEFAULTS = {"cuda": (512, 65_536), "other": (32, 16_384)}
"""(pairs, tokens) per forward pass by device: a GPU wants far larger batches than a CPU; 32 x 512 tokens
keeps every model of up to 512 positions at 32 pairs a batch on the CPU."""

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
        batch_size: Most pairs per forward pass; ``None``: 512 on CUDA, 32 elsewhere.
        max_batch_tokens: Most tokens per forward pass, padding included, so batches of long pairs stay
            small and short ones large; ``None``: 65,536 on CUDA, 16,384 elsewhere.
        unpadded: Run batches packed, without padding tokens (BERT, XLM-R and ELECTRA on the torch
            runtime; flash attention over variable lengths on CUDA). ``None``: on CUDA only.
        max_length: Token limit of one pair; defaults to the model's own configured limit.
        long_documents: ``"truncate"`` cuts a document to fit; ``"window"`` scores overlapping windows
            over the whole document and aggregates them per document.
        window_aggregation: ``"max"`` or ``"mean"`` over a document's windows.
        window_overlap: Tokens shared by consecutive windows; ``None`` means half a window.
        window_boundaries: ``"tokens"`` (windows step by a fixed number of tokens) or ``"sentence"``
            (each window starts and ends on a sentence boundary within a few tokens), so the passage a
            result's ``span`` points at reads from the start of a sentence.
        cache_size: Entries in an LRU score cache (0 turns it off).
        revision: Model revision on the hub (branch, tag or commit).
        trust_remote_code: Run custom model code from the model repository (off by default).
        show_progress_bar: ``None`` shows one for large jobs only.
        instruction: For causal-LM rerankers (Qwen3-Reranker, ...): the task instruction in their prompt;
            ``None`` keeps the model's own default. Sequence classifiers have no prompt and refuse it.
        calibration: A calibration file from ``rerank-plugins calibrate``: ``relevance_score`` becomes
            the calibrated P(relevant) (``score`` stays raw). ``"auto"`` uses the model directory's
            ``rerank-calibration.json`` when there is one; ``None`` keeps the sigmoid of the raw score.
            A file made for another model or configuration is refused, naming the difference.

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
        batch_size: int | None = None,
        max_batch_tokens: int | None = None,
        unpadded: bool | None = None,
        max_length: int | None = None,
        long_documents: LongDocuments = "truncate",
        window_aggregation: WindowAggregation = "max",
        window_overlap: int | None = None,
        window_boundaries: WindowBoundaries = "tokens",
        cache_size: int = 0,
        revision: str | None = None,
        trust_remote_code: bool = False,
        show_progress_bar: bool | None = None,
        instruction: str | None = None,
        calibration: str | os.PathLike[str] | None = "auto",
    ) -> None:
        self.model_name = check_cross_encoder_reference(model, revision)
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.runtime = resolve_runtime(runtime, self.device, self.precision)
        default_size, default_tokens = BATCH_DEFAULTS["cuda" if self.device.startswith("cuda") else "other"]
        self.batch_size = default_size if batch_size is None else _positive_int("batch_size", batch_size)
        self.max_batch_tokens = (
            default_tokens if max_batch_tokens is None else _positive_int("max_batch_tokens", max_batch_tokens)
        )
        if unpadded is not None and not isinstance(unpadded, bool):
            raise ValueError(f"unpadded must be None, True or False, got {unpadded!r}")
        self.unpadded = self.device.startswith("cuda") if unpadded is None else unpadded
        self._max_length = None if max_length is None else _positive_int("max_length", max_length)
        if long_documents not in ("truncate", "window"):
            raise ValueError(f"long_documents must be 'truncate' or 'window', got {long_documents!r}")
        if window_aggregation not in ("max", "mean"):
            raise ValueError(f"window_aggregation must be 'max' or 'mean', got {window_aggregation!r}")
        if window_overlap is not None and (
            isinstance(window_overlap, bool) or not isinstance(window_overlap, int) or window_overlap < 0
        ):
            raise ValueError(f"window_overlap must be None or an int >= 0, got {window_overlap!r}")
        if window_boundaries not in ("tokens", "sentence"):
            raise ValueError(f"window_boundaries must be 'tokens' or 'sentence', got {window_boundaries!r}")
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise ValueError(f"cache_size must be an int >= 0, got {cache_size!r}")
        self.long_documents: LongDocuments = long_documents
        self.window_aggregation: WindowAggregation = window_aggregation
        self.window_overlap = window_overlap
        self.window_boundaries: WindowBoundaries = window_boundaries
        self.revision = revision
        self.trust_remote_code = bool(trust_remote_code)
        self.show_progress_bar = show_progress_bar
        if instruction is not None and (not isinstance(instruction, str) or not instruction.strip()):
            raise ValueError(f"instruction must be None or a non-empty string, got {instruction!r}")
        self.instruction = instruction
        if calibration is not None and not isinstance(calibration, (str, os.PathLike)):
            raise TypeError(f"calibration must be a file path, 'auto' or None, got {type(calibration).__name__}")
        option = None if calibration is None else os.fspath(calibration)
        self._calibration_option = option
        self._given_calibration = Calibration.load(option) if option is not None and option != "auto" else None
        self._calibration: Calibration | None = None
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
            f"batch_size={self.batch_size}, max_batch_tokens={self.max_batch_tokens}, unpadded={self.unpadded}, "
            f"long_documents={self.long_documents!r}"
            + ("" if self.window_boundaries == "tokens" else f", window_boundaries={self.window_boundaries!r}")
            + ("" if self.instruction is None else f", instruction={self.instruction!r}")
            + ("" if self._calibration_option in (None, "auto") else f", calibration={self._calibration_option!r}")
            + ")"
        )

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (and deep-copied) by its options: frameworks copy components (LangChain ``with_config``,
        multiprocessing, Ray). The other side loads the model on first use, or shares it when the same model
        is loaded in its process; a calibration read from a file travels with it. Cache and stats do not."""
        return {"options": self.options(), "calibration": self._given_calibration}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**{**state["options"], "calibration": None})  # type: ignore[misc]  # not read again
        self._calibration_option = state["options"]["calibration"]
        self._given_calibration = state["calibration"]

    def options(self) -> dict[str, Any]:
        """The constructor arguments of this instance: ``Reranker(**r.options())`` builds an equivalent one."""
        return {
            "model": self.model_name,
            "device": self.device,
            "precision": self.precision,
            "runtime": self.runtime,
            "batch_size": self.batch_size,
            "max_batch_tokens": self.max_batch_tokens,
            "unpadded": self.unpadded,
            "max_length": self._max_length,
            "long_documents": self.long_documents,
            "window_aggregation": self.window_aggregation,
            "window_overlap": self.window_overlap,
            "window_boundaries": self.window_boundaries,
            "cache_size": self._cache.capacity,
            "revision": self.revision,
            "trust_remote_code": self.trust_remote_code,
            "show_progress_bar": self.show_progress_bar,
            "instruction": self.instruction,
            "calibration": self._calibration_option,
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
                self._calibration = resolve_calibration(
                    self._calibration_option,
                    self._given_calibration,
                    self.model_name,
                    lambda: self._score_configuration(loaded),
                )
                self._loaded, self._encoder = loaded, encoder
            return self._loaded, self._encoder

    def _score_options(self, loaded: LoadedModel) -> dict[str, Any]:
        """The model and every option that changes its scores: what the score cache is keyed by."""
        windowed = self.long_documents == "window"
        return {
            "model": loaded.name,
            "revision": loaded.revision,
            "max_length": self._max_length or loaded.max_length,
            "precision": loaded.precision,
            "runtime": loaded.runtime,
            "long_documents": self.long_documents,
            "window_aggregation": self.window_aggregation if windowed else None,
            "window_overlap": self.window_overlap if windowed else None,
            "window_boundaries": self.window_boundaries if windowed else None,
            "instruction": self.instruction,
        }

    def _score_configuration(self, loaded: LoadedModel) -> dict[str, Any]:
        """``_score_options`` with the digest of the weight files: what a calibration belongs to."""
        return {**self._score_options(loaded), "weights_digest": weights_digest(loaded.name)}

    def score_configuration(self) -> dict[str, Any]:
        """What decides this core's scores (model, weights digest, precision, max_length, ...), loading it if needed.

        ``rerank-plugins calibrate`` records it in the calibration file, and a calibration is used only by a
        core whose configuration matches it.
        """
        return self._score_configuration(self._model()[0])

    def any_relevant(self, scored: Sequence[PairScore]) -> float | None:
        """P(at least one of one query's candidates is relevant), through the calibration's query-level map."""
        if self._calibration is None or not scored or not all(s.calibrated for s in scored):
            return None
        return self._calibration.p_any([s.relevance_score for s in scored])

    @property
    def calibration(self) -> Calibration | None:
        """The calibration in use (loading the model if needed); ``None`` when scores are uncalibrated."""
        self._model()
        return self._calibration

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
    def _policy(self) -> BatchPolicy:
        return BatchPolicy(self.batch_size, self.max_batch_tokens, self.unpadded)

    @property
    def max_length(self) -> int:
        """Token limit of one (query, document) pair; the model's own limit unless set."""
        return self._max_length if self._max_length is not None else self._model()[0].max_length

    @property
    def max_query_tokens(self) -> int:
        """The longest query this model scores: three quarters of a pair, so the document has room; a longer
        one is refused (``ValueError``), never cut."""
        return self._model()[1].query_room(self.max_length)

    def query_tokens(self, query: str) -> int:
        """Tokens of ``query`` alone, as the model reads it (compare with ``max_query_tokens``)."""
        return self._model()[1].query_tokens(query)

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
            plan = encoder.plan_chunk(pairs, max_length, window, self.window_overlap, sentences=self._sentences)
            pair_tokens.extend(plan.pair_tokens.tolist())
            truncated.extend(plan.truncated_tokens.tolist())
        return TokenCost(encoder.query_tokens(query), pair_tokens, truncated)

    @property
    def _sentences(self) -> bool:
        return self.long_documents == "window" and self.window_boundaries == "sentence"

    def clip_documents(self, documents: Sequence[str], max_tokens: int) -> list[tuple[str, int]]:
        """Each document cut to its first ``max_tokens`` tokens, with the tokens it lost (0: whole).

        A per-request document budget (Cohere's ``max_tokens_per_doc``) on top of ``max_length``.
        """
        max_tokens = _positive_int("max_tokens", max_tokens)
        return self._model()[1].clip(check_documents(documents), max_tokens)

    def _widen(
        self,
        results: Sequence[RankedResult],
        spans: list[tuple[int, int]],
        context_tokens: int,
        max_tokens: int | None,
    ) -> list[tuple[int, int]]:
        """``passage_spans`` in this model's tokens: each document's offsets read once, no forward pass."""
        _, encoder = self._model()
        texts = list(dict.fromkeys(result.document for result in results))
        offsets = dict(zip(texts, encoder.offsets(texts), strict=True))
        return [
            widen_span(offsets[result.document], span, result.document, context_tokens, max_tokens)
            for result, span in zip(results, spans, strict=True)
        ]

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
        calibration = None if self._calibration is None else self._calibration.digest
        return (*self._score_options(loaded).values(), commit, calibration)

    # -- scoring -----------------------------------------------------------------------------------

    def _score_pairs(self, pairs: list[tuple[str, str]]) -> list[PairScore]:
        """Score pairs once each (duplicates and cache hits are not run again), in input order."""
        unique = list(dict.fromkeys(pairs))
        loaded, encoder = self._model()
        known: dict[tuple[str, str], PairScore] = {}
        keys: dict[tuple[str, str], tuple[Any, bytes]] = {}
        missing = unique
        if self._cache.capacity:  # no hashing at all when the cache is off
            settings = self._settings_key(loaded)
            keys = {pair: (settings, pair_digest(*pair)) for pair in unique}
            missing = []
            for pair in unique:
                cached = self._cache.get(keys[pair])
                if cached is None:
                    missing.append(pair)
                else:
                    known[pair] = cached
        show = self.show_progress_bar if self.show_progress_bar is not None else len(missing) >= PROGRESS_MIN_PAIRS
        chunks = [missing[start : start + CHUNK_PAIRS] for start in range(0, len(missing), CHUNK_PAIRS)]
        with tqdm(total=len(missing), desc="Reranking", unit="pair", disable=not show) as progress:
            for chunk, results in zip(chunks, self._scored_chunks(loaded, encoder, chunks, progress), strict=True):
                for pair, result in zip(chunk, results, strict=True):
                    known[pair] = result
                    if keys:
                        self._cache.put(keys[pair], result)
        return [known[pair] for pair in pairs]

    def _scored_chunks(
        self, loaded: LoadedModel, encoder: Encoder, chunks: list[list[tuple[str, str]]], progress: tqdm[Any]
    ) -> Iterator[list[PairScore]]:
        """Each chunk's scores, in order, through the device pipeline (``pipeline.pipelined``)."""
        memo: TokenMemo = {}
        window, max_length = self.long_documents == "window", self.max_length

        def plan(chunk: list[tuple[str, str]]) -> ChunkPlan:
            if len(memo) > MEMO_TEXTS:  # bounded for any number of pairs
                memo.clear()
            return encoder.plan_chunk(
                chunk, max_length, window, self.window_overlap, memo, sentences=self._sentences, spans=True
            )

        def planned(chunk: list[tuple[str, str]], chunk_plan: ChunkPlan) -> None:
            self._refuse_cut_queries(chunk_plan, encoder)
            progress.total += len(chunk_plan.units) - len(chunk)  # windows: count model inputs, not pairs

        for chunk_plan, scored, seconds in pipelined(
            loaded, encoder, chunks, plan, self._policy, planned, progress.update
        ):
            yield self._results(loaded, chunk_plan, scored, seconds)

    def _refuse_cut_queries(self, plan: ChunkPlan, encoder: Encoder) -> None:
        """Refuse a query the model would have to cut: its end (often the question) would be lost silently.

        Read from the chunk's plan, so no text is tokenised twice; raised before the chunk's forward pass.
        """
        keep = encoder.query_room(self.max_length)
        longest = int(plan.query_tokens.max(initial=0))
        if longest > keep:
            raise ValueError(
                f"the query is {longest} tokens; this model keeps at most {keep} within "
                f"max_length={self.max_length} (the rest of a pair is the document's): shorten the query, "
                "or raise max_length if the model allows"
            )

    def _results(self, loaded: LoadedModel, plan: ChunkPlan, scored: UnitScores, seconds: float) -> list[PairScore]:
        pairs = len(plan.truncated_tokens)
        margins, windows, best = aggregate_windows(scored.margins, plan.owners, pairs, self.window_aggregation)
        spans = [None] * pairs if plan.spans is None else plan.spans.of(best)
        scores, relevance = scores_and_relevance(margins, loaded, self._calibration)
        calibrated = self._calibration is not None
        spent = ScoringStats(pairs, len(plan.units), scored.tokens, scored.padded_tokens, seconds)
        with self._stats_lock:
            self._stats = self._stats + spent
        return [
            PairScore(score, rel, cut, count, margin, calibrated, span=span)
            for score, rel, cut, count, margin, span in zip(
                scores,
                relevance,
                plan.truncated_tokens.tolist(),
                windows.tolist(),
                margins.tolist(),
                spans,
                strict=True,
            )
        ]
