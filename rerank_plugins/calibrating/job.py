"""``calibrate``: score BEIR-format candidates, fit on some queries, measure on the others, and say what it buys."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import numpy as np

from rerank_plugins.calibrating.abstention import (
    ANSWER_RATE,
    UnanswerableSource,
    real_rows,
    recommend_rule,
    removed_twins,
    synthetic_id,
)
from rerank_plugins.calibrating.candidates import (
    Candidates,
    LabelledScores,
    QueryRows,
    read_run,
    retrieve_candidates,
    score_candidates,
)
from rerank_plugins.calibrating.fitting import fit_parameters
from rerank_plugins.calibrating.report import fit_summary, heldout_report
from rerank_plugins.calibrating.trained import trained_queries
from rerank_plugins.calibration.calibrator import Calibration, Method

if TYPE_CHECKING:
    from rerank_plugins.reranker import Reranker
    from rerank_plugins.retrieval import FaissRetriever

__all__ = ["CalibrationRun", "calibrate", "fit_and_report", "split_queries"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CalibrationRun:
    """A fitted calibration with the scored pairs it was fitted on and measured on."""

    calibration: Calibration
    fit: LabelledScores
    heldout: LabelledScores

    def probabilities(self, rows: LabelledScores) -> np.ndarray:
        """Calibrated P(relevant) of ``rows``."""
        return self.calibration.apply(rows.margins)


def split_queries(query_ids: Sequence[str], heldout: float, seed: int) -> tuple[list[str], list[str]]:
    """A seeded split of whole queries (never one query's pairs on both sides): (fit, held-out)."""
    if not 0.0 < heldout < 1.0:
        raise ValueError(f"the held-out share must be between 0 and 1, got {heldout}")
    ordered = sorted(query_ids)
    if len(ordered) < 2:
        raise ValueError(f"need at least 2 judged queries to hold some out, got {len(ordered)}")
    random.Random(seed).shuffle(ordered)
    cut = max(1, min(len(ordered) - 1, round(len(ordered) * heldout)))
    return sorted(ordered[cut:]), sorted(ordered[:cut])


def _fit_any(queries: QueryRows) -> dict[str, float] | None:
    """Platt on each query's best raw margin against "has a relevant candidate"; ``None`` (said loudly) when the
    fitted queries hold no unanswerable one: P(any relevant) is then unknown, never a guess."""
    if queries.has_relevant.min() == queries.has_relevant.max():
        logger.warning(
            "every fitted query has %s relevant candidate: no abstention rule was fitted and P(any relevant) is "
            "unknown (None); calibrate with --unanswerable (queries of a run with no qrels row, or synthesised ones)",
            "a" if queries.has_relevant.max() else "no",
        )
        return None
    parameters = fit_parameters(queries.best_margins, queries.has_relevant, "platt")
    return {"slope": float(parameters["slope"]), "intercept": float(parameters["intercept"])}


def _unjudged(candidates: Candidates, judged: set[str], all_queries: dict[str, str]) -> list[str]:
    """The run's queries with no qrels row on either side: unanswerable, as the user said."""
    return sorted(q for q in candidates if q not in judged and q in all_queries)


def _sample(ids: list[str], most: int | None, seed: int) -> list[str]:
    return ids if most is None else sorted(random.Random(seed).sample(ids, min(most, len(ids))))


def _swapped_twins(
    reranker: Reranker,
    answerable: list[str],
    queries: dict[str, str],
    corpus: dict[str, str],
    candidates: Candidates,
    qrels: dict[str, dict[str, int]],
    seed: int,
) -> LabelledScores | None:
    """Each answerable query's text against another answerable query's candidates (minus any it has judged)."""
    if len(answerable) < 2:
        return None
    order = sorted(answerable)
    random.Random(seed).shuffle(order)
    partner = dict(zip(order, order[1:] + order[:1], strict=True))
    twins = {synthetic_id(q, "swapped"): q for q in order}
    twin_candidates = {
        twin: [d for d in candidates[partner[q]] if d not in qrels.get(q, {})] for twin, q in twins.items()
    }
    twin_candidates = {twin: docs for twin, docs in twin_candidates.items() if docs}
    if not twin_candidates:
        return None
    texts = {twin: queries[twins[twin]] for twin in twin_candidates}
    return score_candidates(reranker, texts, corpus, twin_candidates, {}, 0)


def calibrate(
    reranker: Reranker,
    data: str | Path,
    *,
    split: str = "test",
    heldout: float = 0.3,
    heldout_split: str | None = None,
    top_k: int = 50,
    retriever: FaissRetriever | None = None,
    run: str | Path | None = None,
    heldout_run: str | Path | None = None,
    method: Method = "platt",
    min_grade: int = 0,
    max_queries: int | None = None,
    seed: int = 0,
    unanswerable: Sequence[UnanswerableSource] = (),
    answer_rate: float = ANSWER_RATE,
) -> CalibrationRun:
    """Fit ``reranker``'s calibration on BEIR-format ``data`` and measure it on held-out queries.

    Candidates are each query's ``top_k`` from ``run`` (a TREC run file; ``heldout_run`` for the held-out
    split's queries when they are in another file) or ``retriever`` (FAISS; built over the corpus with the
    default bi-encoder when omitted). Queries judged in ``split`` are fitted on; a seeded ``heldout`` share of
    them is measured on, or the queries of ``heldout_split`` when given. ``max_queries`` keeps a seeded sample
    of each side, for a quicker fit.

    ``unanswerable`` says where queries with no relevant candidate come from, so that P(any relevant) and a
    "nothing relevant" rule can be fitted: ``"unjudged"``, the run's queries with no qrels row (real ones,
    such as WikiQA's); ``"removed"``, each answerable query again with its relevant candidates removed;
    ``"swapped"``, each answerable query against another one's candidates. Without any, no rule is fitted and
    P(any relevant) is unknown. The rule answers ``answer_rate`` of the fitted answerable queries.

    Queries the model was fine-tuned on (``training.json`` beside a model from ``rerank-plugins train``) are
    left out, with a warning: calibrate on queries the model has not seen.
    """
    from rerank_plugins.evaluation.beir import check_beir_directory, load_corpus, load_qrels, load_queries

    unknown = sorted(set(unanswerable) - set(get_args(UnanswerableSource)))
    if unknown:
        raise ValueError(f"unanswerable sources must be among {get_args(UnanswerableSource)}, got {unknown}")
    if "unjudged" in unanswerable and run is None:
        raise ValueError(
            "unanswerable=('unjudged',) needs a run file: the queries of a run with no qrels row are the "
            "unanswerable ones (with FAISS retrieval every query of queries.jsonl would count)"
        )
    if heldout_run is not None and (run is None or heldout_split is None):
        raise ValueError("heldout_run is the held-out split's run file: give run and heldout_split too")
    root = check_beir_directory(data, split, *([heldout_split] if heldout_split else []))
    corpus, all_queries = load_corpus(root / "corpus.jsonl"), load_queries(root / "queries.jsonl")
    qrels = load_qrels(root / "qrels" / f"{split}.tsv")
    candidates: Candidates = read_run(run, top_k) if run is not None else {}
    held_candidates: Candidates = read_run(heldout_run, top_k) if heldout_run is not None else candidates
    judged = [q for q in qrels if q in all_queries]
    if heldout_split:
        heldout_qrels = load_qrels(root / "qrels" / f"{heldout_split}.tsv")
        held = sorted(q for q in heldout_qrels if q in all_queries and q not in qrels)
        fitted = sorted(judged)
        qrels = {**heldout_qrels, **qrels}
    else:
        fitted, held = split_queries(judged, heldout, seed)
    fit_none: list[str] = []
    held_none: list[str] = []
    if "unjudged" in unanswerable:
        fit_none = _unjudged(candidates, set(qrels), all_queries)
        if heldout_split:
            held_none = [q for q in _unjudged(held_candidates, set(qrels), all_queries) if q not in fit_none]
            if heldout_run is None:  # one run for both splits: its unjudged queries cannot be told apart
                fit_none, held_none = split_queries(fit_none, 0.5, seed) if len(fit_none) > 1 else (fit_none, [])
        elif len(fit_none) > 1:
            fit_none, held_none = split_queries(fit_none, heldout, seed)
        if not fit_none:
            raise ValueError("unanswerable=('unjudged',): every query of the run has a qrels row; none is unanswerable")
    trained = trained_queries(reranker.model_name)
    if trained:
        dropped = sum(q in trained for q in (*fitted, *held, *fit_none, *held_none))
        if dropped:
            logger.warning(
                "left out %d queries %s was fine-tuned on (its training.json lists them): the model scores "
                "questions it learned higher than new ones, so fitting or measuring on them would make the "
                "probabilities and the abstention rule too confident", dropped, reranker.model_name,
            )
        fitted, held = [q for q in fitted if q not in trained], [q for q in held if q not in trained]
        fit_none, held_none = [q for q in fit_none if q not in trained], [q for q in held_none if q not in trained]
    fitted, held = _sample(fitted, max_queries, seed), _sample(held, max_queries, seed + 1)
    fit_none, held_none = _sample(fit_none, max_queries, seed + 2), _sample(held_none, max_queries, seed + 3)
    if not fitted or not held:
        raise ValueError(f"need judged queries on both sides, got {len(fitted)} to fit and {len(held)} held out")
    queries = {q: all_queries[q] for q in (*fitted, *held, *fit_none, *held_none)}
    if run is None:
        if retriever is None:
            from rerank_plugins.retrieval import FaissRetriever

            retriever = FaissRetriever.from_texts(list(corpus.values()), ids=list(corpus))
        candidates = held_candidates = retrieve_candidates(retriever, queries, top_k)
    pooled = {**held_candidates, **candidates}
    logger.info("scoring the top-%d candidates of %d queries", top_k, len(queries))
    rows = score_candidates(reranker, queries, corpus, pooled, qrels, min_grade)
    fit_rows, held_rows = rows.subset([*fitted, *fit_none]), rows.subset([*held, *held_none])
    if "removed" in unanswerable:
        fit_rows, held_rows = fit_rows.concat(removed_twins(fit_rows)), held_rows.concat(removed_twins(held_rows))
    if "swapped" in unanswerable:
        fit_twins = _swapped_twins(reranker, fitted, queries, corpus, pooled, qrels, seed)
        held_twins = _swapped_twins(reranker, held, queries, corpus, pooled, qrels, seed + 1)
        fit_rows = fit_rows if fit_twins is None else fit_rows.concat(fit_twins)
        held_rows = held_rows if held_twins is None else held_rows.concat(held_twins)
    settings = {"data": str(data), "split": split, "heldout_split": heldout_split, "heldout_share": heldout,
                "top_k": top_k, "candidates": "run file" if run is not None else "faiss", "min_grade": min_grade,
                "seed": seed, "unanswerable": sorted(unanswerable), "answer_rate": answer_rate}  # fmt: skip
    return fit_and_report(fit_rows, held_rows, method, reranker.score_configuration(), settings)


def fit_and_report(
    fit: LabelledScores,
    heldout: LabelledScores,
    method: Method,
    belongs_to: dict[str, Any],
    settings: dict[str, Any],
) -> CalibrationRun:
    """Fit on ``fit``'s pairs and measure on ``heldout``'s: the step after scoring, so another method can be
    fitted on the same scores without scoring again.

    The per-document map is fitted on real candidates only (synthetic twins repeat them); the query-level map
    and the recommended rule on every fitted query.
    """
    real = real_rows(fit)
    parameters = fit_parameters(real.margins, real.labels, method)
    queries = fit.per_query()
    any_parameters = _fit_any(queries)
    fitted = Calibration(method, parameters, belongs_to, any_parameters=any_parameters)
    if any_parameters is not None:
        rule = recommend_rule(fitted.apply_any(queries.best_margins), queries.has_relevant,
                              settings.get("answer_rate", ANSWER_RATE))  # fmt: skip
        fitted = replace(fitted, abstention=rule)
    report = {"settings": {**settings, "method": method}, "fit": fit_summary(real, settings),
              **heldout_report(heldout, fitted)}  # fmt: skip
    report["fit"]["queries_with_synthetic"] = len(queries)
    return CalibrationRun(replace(fitted, report=report), fit, heldout)
