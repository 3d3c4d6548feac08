"""IR metrics of a ranked run, computed by ir-measures (the trec_eval implementations)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rerank_plugins._optional import require

__all__ = ["score_run"]


def score_run(
    run: Mapping[str, Mapping[str, float]], qrels: Mapping[str, Mapping[str, int]], recall_at: int
) -> dict[str, float]:
    """NDCG@10, MRR@10 and Recall@``recall_at`` averaged over the run's queries."""
    ir_measures: Any = require("ir_measures", "eval")
    measures = {
        "ndcg@10": ir_measures.nDCG @ 10,
        "mrr@10": ir_measures.RR @ 10,
        f"recall@{recall_at}": ir_measures.R @ recall_at,
    }
    judged = {query_id: dict(qrels[query_id]) for query_id in run if query_id in qrels}
    values = ir_measures.calc_aggregate(list(measures.values()), judged, {q: dict(d) for q, d in run.items()})
    return {name: float(values[measure]) for name, measure in measures.items()}
