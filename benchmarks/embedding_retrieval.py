"""Retrieval quality of the bi-encoder in fp32 and bf16 (OpenVINO) on the full SciFact test set.

Embeds all 5,183 abstracts in each precision, retrieves the top 50 for the 300 test claims, and reports
NDCG@10, MRR@10 and Recall@50 (``ir-measures``), the embedding time, and how many of the fp32 top-50
candidates the bf16 index also returns.

    HF_HUB_OFFLINE=1 PYTHONPATH=. .venv/bin/python benchmarks/embedding_retrieval.py
    # -> results/embedding_scifact_full.json
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from rerank_plugins.evaluation import load_beir
from rerank_plugins.evaluation.metrics import score_run
from rerank_plugins.retrieval import FaissRetriever
from tests.paths import SCIFACT

OUTPUT = Path(__file__).parent / "results" / "embedding_scifact_full.json"


def main() -> None:
    data = load_beir(SCIFACT, "test")
    query_ids = [q for q in data.queries if q in data.qrels]
    result: dict[str, object] = {}
    tops: dict[str, dict[str, list[str]]] = {}
    for precision in ("fp32", "bf16"):
        started = time.perf_counter()
        retriever = FaissRetriever.from_texts(
            list(data.corpus.values()), ids=list(data.corpus), runtime="openvino", precision=precision
        )
        seconds = time.perf_counter() - started
        hits = retriever.search_many([data.queries[q] for q in query_ids], k=50)
        run = {q: {hit.id: hit.score for hit in row} for q, row in zip(query_ids, hits, strict=True)}
        tops[precision] = {q: [hit.id for hit in row] for q, row in zip(query_ids, hits, strict=True)}
        result[f"openvino {precision}"] = {**score_run(run, data.qrels, 50), "embed_seconds": seconds}
        print(precision, result[f"openvino {precision}"], flush=True)
    shared = sum(len(set(tops["fp32"][q]) & set(tops["bf16"][q])) for q in query_ids)
    result["top50_overlap"] = shared / (50 * len(query_ids))
    OUTPUT.write_text(json.dumps(result, indent=1), encoding="utf-8")
    print("top-50 overlap", result["top50_overlap"])


if __name__ == "__main__":
    main()
