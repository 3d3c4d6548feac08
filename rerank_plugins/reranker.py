"""``Reranker``: the one scoring core every adapter, command and benchmark goes through."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from rerank_plugins.backend import PairScore, RerankBackend
from rerank_plugins.cache import ScoreCache, pair_digest
from rerank_plugins.calibration.calibrator import Calibration
from rerank_plugins.calibration.drift import DriftWatch
from rerank_plugins.calibration.identity import weights_digest
from rerank_plugins.calibration.resolve import resolve_calibration
from rerank_plugins.devices import Precision, resolve_device, resolve_precision
from rerank_plugins.encoding import Encoder, PairEncoder, TokenMemo
from rerank_plugins.inference import BatchPolicy, UnitScores
from rerank_plugins.loading import LoadedModel, check_cross_encoder_reference, exported_source, load_model
from rerank_plugins.options import (
    CORE_OPTIONS,
    DEFAULT_MODEL,
    LongDocuments,
    MetadataMode,
    WindowAggregation,
    check_options,
    docstring_args,
)
from rerank_plugins.pipeline import pipelined
from rerank_plugins.progress import tqdm
from rerank_plugins.prompting import PromptEncoder
from rerank_plugins.results import RankedResult, ScoringStats
from rerank_plugins.runtime import Runtime, resolve_runtime, runtime_precisions
from rerank_plugins.scores import aggregate_windows, scores_and_relevance
from rerank_plugins.units import ChunkPlan
from rerank_plugins.validation import check_count, check_documents
from rerank_plugins.windows import WindowBoundaries, widen_span

__all__ = ["Reranker", "DEFAULT_MODEL", "TokenCost"]

logger = logging.getLogger(__name__)

CHUNK_PAIRS = 2048
"""Pairs tokenised and scored together: length sorting works within a chunk, memory stays bounded."""
MEMO_TEXTS = 8192
"""Distinct texts whose token ids one call keeps across its chunks (a few MB), so repeats are tokenised once."""
PROGRESS_MIN_PAIRS = 5000
"""Jobs of at least this many new pairs show a progress bar unless told otherwise."""
ATTRIBUTES = {"model": "model_name", "max_length": "_max_length", "calibration": "_calibration_option"}
"""Where an option's value lives on the instance, when not under its own name."""
REPR_ALWAYS = frozenset({"model", "device", "precision", "runtime", "batch_size", "max_batch_tokens", "unpadded"})
"""Options ``repr`` always shows: what the defaults resolved to on this machine."""
OPTION_NAMES = frozenset(o.name for o in CORE_OPTIONS)


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


class Reranker(RerankBackend):
    """Scores (query, document) pairs with a cross-encoder and ranks documents best first.

    The model loads on first use and is shared by every ``Reranker`` in the process with the same
    model, revision, device and precision, so adapters over one model hold one copy of its weights.

    Every keyword argument is a row of ``rerank_plugins.options.CORE_OPTIONS`` (type, default, help), and
    ``help(Reranker.__init__)`` lists them from there.

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
        abstain: bool = False,
        metadata_mode: MetadataMode = "none",
    ) -> None:
        given = {name: value for name, value in locals().items() if name in OPTION_NAMES}
        checked = check_options(given)  # every value checked against the table before anything resolves
        self.model_name = check_cross_encoder_reference(model, revision)
        exported = exported_source(self.model_name, revision, runtime)
        if exported is not None:  # an exported graph runs as it was exported: on the CPU, with no torch
            self.device, self.runtime, self.precision = exported.settings(device, runtime, precision)
        else:
            self.device = resolve_device(device)
            chosen = resolve_runtime(runtime, self.device, precision)  # the runtime first: auto precision is per one
            self.precision = resolve_precision(precision, self.device, runtime_precisions(chosen))
            self.runtime = resolve_runtime(chosen, self.device, self.precision)
        default_size, default_tokens = BATCH_DEFAULTS["cuda" if self.device.startswith("cuda") else "other"]
        self.batch_size: int = default_size if batch_size is None else batch_size
        self.max_batch_tokens: int = default_tokens if max_batch_tokens is None else max_batch_tokens
        self.unpadded: bool = self.device.startswith("cuda") if unpadded is None else unpadded
        self._max_length = max_length
        self.long_documents: LongDocuments = long_documents
        self.window_aggregation: WindowAggregation = window_aggregation
        self.window_overlap = window_overlap
        self.window_boundaries: WindowBoundaries = window_boundaries
        self.revision = revision
        self.trust_remote_code = trust_remote_code
        self.show_progress_bar = show_progress_bar
        self.instruction = instruction
        self.abstain = abstain
        self.metadata_mode: MetadataMode = metadata_mode
        option = checked["calibration"]
        self._calibration_option: str | None = option
        self._given_calibration = Calibration.load(option) if option is not None and option != "auto" else None
        self._calibration: Calibration | None = None
        self._drift: DriftWatch | None = None
        self._cache: ScoreCache[PairScore] = ScoreCache(cache_size)
        self._loaded: LoadedModel | None = None
        self._encoder: Encoder | None = None
        self._load_lock = threading.Lock()
        self._stats = ScoringStats()
        self._stats_lock = threading.Lock()

    def __repr__(self) -> str:
        """The model, what it resolved to (device, precision, runtime, batches), and every option not at its default."""
        options = self.options()
        shown = [
            f"{o.name}={options[o.name]!r}"
            for o in CORE_OPTIONS
            if o.name in REPR_ALWAYS or options[o.name] != o.default
        ]
        return f"Reranker({', '.join(shown)})"

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
        return {o.name: getattr(self, ATTRIBUTES.get(o.name, o.name)) for o in CORE_OPTIONS}

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
                self._check_abstain()
                if self._calibration is not None:
                    self._drift = DriftWatch(self._calibration.report, str(self._calibration_option))
                self._loaded, self._encoder = loaded, encoder
            return self._loaded, self._encoder

    def _score_options(self, loaded: LoadedModel) -> dict[str, Any]:
        """The model and every option that changes its scores (``scores`` in the table): the score cache key."""
        windowed = self.long_documents == "window"
        resolved = {
            **self.options(),
            "model": loaded.name,
            "revision": loaded.revision,
            "max_length": self._max_length or loaded.max_length,
            "precision": loaded.precision,
            "runtime": loaded.runtime,
        }
        return {
            o.name: resolved[o.name] if o.scores == "yes" or windowed else None
            for o in CORE_OPTIONS
            if o.scores != "no"
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

    def _check_abstain(self) -> None:
        """``abstain=True`` needs a rule to apply: refused at load, naming what is missing, never ignored."""
        if not self.abstain:
            return
        if self._calibration is None:
            raise ValueError(
                "abstain=True applies a calibration's \"nothing relevant\" rule, and this Reranker has no "
                "calibration: pass calibration=FILE from 'rerank-plugins calibrate --unanswerable ...'"
            )
        if self._calibration.answer_from is None:
            raise ValueError(
                f"abstain=True: the calibration {self._calibration_option} has no abstention rule (it was fitted "
                "without unanswerable queries); calibrate again with --unanswerable"
            )

    def answer_from(self) -> float | None:
        """The calibration's rule level when ``abstain`` is on: rankings below it in P(any relevant) are empty."""
        if not self.abstain:
            return None
        self._model()
        return None if self._calibration is None else self._calibration.answer_from

    def any_relevant(self, scored: Sequence[PairScore]) -> float | None:
        """P(at least one of one query's candidates is relevant), from the calibration's query-level map on the
        best raw margin; ``None`` (unknown) without a calibration fitted on unanswerable queries."""
        if self._calibration is None or not scored or any(s.margin is None for s in scored):
            return None
        return self._calibration.p_any([float(s.margin) for s in scored if s.margin is not None])

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
        max_tokens = check_count(max_tokens, "max_tokens", 1)
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
        commit = loaded.commit
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
        if self._drift is not None:
            self._drift.observe(margins.tolist())
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


Reranker.__init__.__doc__ = "Build a core (the model loads on first use).\n\n" + docstring_args()
