"""What the adapters score: ``metadata_mode="none"`` (the text alone) against ``"embed"`` (metadata lines first).

SciFact test, the first 60 claims with a relevant judgment. Each claim's 20 candidates are its judged
abstracts plus abstracts judged for other test claims (drawn with a seeded RNG; no bi-encoder), each a
LlamaIndex ``TextNode`` whose text is the abstract and whose metadata is ``{"doc_id": id, "title": title}``.
``RerankPostprocessor`` (the real SciFact cross-encoder, fp32) ranks them in each mode; we report NDCG@10
(ir-measures) and the mean ``relevance_score`` of the judged abstracts and of the others.

A reference row ranks the same nodes in mode ``"none"`` with the title put in the text (``title + " " +
abstract``, how the model was trained): it tells what ``"embed"`` gains by the title from what it gains or
loses by the ``key: value`` formatting.

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONPATH=. .venv/bin/python benchmarks/metadata_mode.py
    # -> benchmarks/results/metadata_mode.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any

SHARED = Path(os.environ.get("RERANK_PLUGINS_SHARED", "../shared"))
MODEL = SHARED / "models" / "minilm-l6-scifact-ce"
DATA = SHARED / "data" / "scifact"
RESULT = Path("benchmarks/results/metadata_mode.json")
CLAIMS = 60
CANDIDATES = 20
SEED = 0

logger = logging.getLogger("benchmarks.metadata_mode")


def workload(claims: int, candidates: int, seed: int) -> dict[str, Any]:
    """Claims, their candidate ids (judged first, then others' judged abstracts), titles, texts and qrels."""
    from rerank_plugins.evaluation.beir import load_qrels, load_queries

    qrels = {
        q: {d: grade for d, grade in judged.items() if grade > 0}
        for q, judged in load_qrels(DATA / "qrels" / "test.tsv").items()
    }
    qrels = {q: judged for q, judged in qrels.items() if judged}
    queries = load_queries(DATA / "queries.jsonl")
    query_ids = list(qrels)[:claims]
    pool = sorted({d for judged in qrels.values() for d in judged})  # every abstract judged for some test claim
    rng = random.Random(seed)
    lists = {}
    for q in query_ids:
        own = sorted(qrels[q])
        others = [d for d in pool if d not in qrels[q]]
        lists[q] = [*own, *rng.sample(others, candidates - len(own))]
        rng.shuffle(lists[q])  # no order to lean on: every node gets the same retrieval score
    needed = {d for ids in lists.values() for d in ids}
    rows = {}
    with open(DATA / "corpus.jsonl", encoding="utf-8") as lines:
        for row in map(json.loads, lines):
            if row["_id"] in needed:
                rows[row["_id"]] = (row.get("title") or "", row["text"])
    return {
        "query_ids": query_ids,
        "queries": {q: queries[q] for q in query_ids},
        "candidates": lists,
        "rows": rows,
        "qrels": {q: qrels[q] for q in query_ids},
    }


def measure(work: dict[str, Any], mode: str, title_in_text: bool) -> dict[str, Any]:
    """NDCG@10 and mean relevance of judged and other abstracts, ranking every claim's nodes in ``mode``."""
    import ir_measures
    from llama_index.core.schema import NodeWithScore, TextNode

    from rerank_plugins.evaluation.metrics import score_run
    from rerank_plugins.llama_index import RerankPostprocessor

    postprocessor = RerankPostprocessor(
        model=str(MODEL), precision="fp32", calibration=None, metadata_mode=mode, top_n=None
    )
    run: dict[str, dict[str, float]] = {}
    judged_scores, other_scores = [], []
    started = time.perf_counter()
    for q in work["query_ids"]:
        nodes = []
        for doc_id in work["candidates"][q]:
            title, abstract = work["rows"][doc_id]
            text = f"{title} {abstract}" if title_in_text else abstract
            node = TextNode(text=text, id_=doc_id, metadata={"doc_id": doc_id, "title": title})
            nodes.append(NodeWithScore(node=node, score=0.0))
        reranked = postprocessor.postprocess_nodes(nodes, query_str=work["queries"][q])
        run[q] = {n.node.node_id: float(n.score or 0.0) for n in reranked}
        for doc_id, score in run[q].items():
            (judged_scores if doc_id in work["qrels"][q] else other_scores).append(score)
    seconds = time.perf_counter() - started
    metrics = score_run(run, work["qrels"], recall_at=CANDIDATES)
    per_query = {m.query_id: float(m.value) for m in ir_measures.iter_calc([ir_measures.nDCG @ 10], work["qrels"], run)}
    return {
        "metadata_mode": mode,
        "title_in_text": title_in_text,
        "ndcg@10": metrics["ndcg@10"],
        "mrr@10": metrics["mrr@10"],
        "mean_relevance_judged": statistics.fmean(judged_scores),
        "mean_relevance_other": statistics.fmean(other_scores),
        "judged": len(judged_scores),
        "pairs": len(judged_scores) + len(other_scores),
        "seconds": seconds,
        "ndcg@10_per_claim": per_query,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=CLAIMS)
    parser.add_argument("--candidates", type=int, default=CANDIDATES)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", type=Path, default=RESULT)
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    work = workload(arguments.claims, arguments.candidates, arguments.seed)
    rows = [measure(work, "none", False), measure(work, "embed", False), measure(work, "none", True)]
    labels = ["none (abstract)", "embed (doc_id, title; abstract)", "reference: none (title + abstract)"]
    logger.info("%-36s %8s %8s %14s %14s", "metadata_mode", "NDCG@10", "MRR@10", "rel. judged", "rel. others")
    for label, row in zip(labels, rows, strict=True):
        logger.info(
            "%-36s %8.4f %8.4f %14.4f %14.4f",
            label,
            row["ndcg@10"],
            row["mrr@10"],
            row["mean_relevance_judged"],
            row["mean_relevance_other"],
        )
    none, embed = rows[0]["ndcg@10_per_claim"], rows[1]["ndcg@10_per_claim"]
    paired = {
        "embed_better": sum(embed[q] > none[q] + 1e-9 for q in none),
        "equal": sum(abs(embed[q] - none[q]) <= 1e-9 for q in none),
        "none_better": sum(none[q] > embed[q] + 1e-9 for q in none),
    }
    logger.info("NDCG@10 per claim, embed against none: %s", paired)
    result = {
        "setup": {
            "model": MODEL.name,
            "precision": "fp32",
            "claims": len(work["query_ids"]),
            "candidates_per_claim": arguments.candidates,
            "negatives": "abstracts judged for other SciFact test claims, seeded random sample",
            "seed": arguments.seed,
            "node_text": "abstract (title only in metadata), except the reference row",
            "metadata": ["doc_id", "title"],
        },
        "results": dict(zip(labels, rows, strict=True)),
        "ndcg@10_per_claim_embed_vs_none": paired,
    }
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    logger.info("wrote %s", arguments.out)


if __name__ == "__main__":
    main()
