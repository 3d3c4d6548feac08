"""Peak memory of streaming 100,000 (query, document) pairs through ``Reranker.rank_many``.

SciFact claims (test then train), each with 100 abstracts drawn from the corpus with a fixed seed;
the default ``Reranker`` (``auto``). Prints and saves the process's peak RSS before loading, after
loading and at the end, and the throughput. Run: ``HF_HUB_OFFLINE=1 .venv/bin/python
benchmarks/rank_many_memory.py [--pairs 100000]``.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import time
from pathlib import Path

from rerank_plugins import Reranker
from rerank_plugins.evaluation.beir import load_corpus, load_queries


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/scifact")
    parser.add_argument("--model", default="../shared/models/minilm-l6-scifact-ce")
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--output", default="benchmarks/results/rank_many_memory.json")
    args = parser.parse_args()

    corpus = list(load_corpus(Path(args.data) / "corpus.jsonl").values())
    claims = list(load_queries(Path(args.data) / "queries.jsonl").values())
    count = args.pairs // args.candidates
    if count > len(claims):
        raise SystemExit(
            f"{args.data} has {len(claims)} queries; ask for at most {len(claims) * args.candidates} pairs"
        )
    sampler = random.Random(0)
    queries = claims[:count]
    documents = [sampler.sample(corpus, args.candidates) for _ in queries]
    before = peak_rss_mb()
    reranker = Reranker(args.model, show_progress_bar=True).load()
    loaded = peak_rss_mb()
    started = time.perf_counter()
    rankings = reranker.rank_many(queries, documents, top_n=10)
    seconds = time.perf_counter() - started
    report = {
        "pairs": count * args.candidates,
        "queries": count,
        "reranker": repr(reranker),
        "seconds": seconds,
        "pairs_per_second": count * args.candidates / seconds,
        "tokens": reranker.stats.tokens,
        "padding_waste": reranker.stats.padding_waste,
        "peak_rss_mb_before_model": before,
        "peak_rss_mb_after_load": loaded,
        "peak_rss_mb_end": peak_rss_mb(),
        "rankings": len(rankings),
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
