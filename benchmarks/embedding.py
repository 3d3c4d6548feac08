"""Speed and fidelity of the FAISS retriever's bi-encoder: sentence-transformers fp32 against our runtimes.

Embeds the same SciFact abstracts with ``SentenceTransformer.encode`` in fp32 (the baseline, what
``FaissRetriever`` ran before) and with each ``Embedder`` mode, in one process, after one warm-up
pass each. Fidelity is recall@10 against the fp32 index: the share of each test claim's fp32 top 10
that the mode's own index also returns in its top 10, and the lowest cosine between the two embeddings
of a passage.

    HF_HUB_OFFLINE=1 PYTHONPATH=. .venv/bin/python benchmarks/embedding.py   # -> results/embedding.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import faiss
import numpy as np

from rerank_plugins.evaluation import load_beir
from rerank_plugins.retrieval.embedder import Embedder
from tests.paths import SCIFACT

MODES = (("torch", "fp32"), ("torch", "bf16"), ("openvino", "fp32"), ("openvino", "bf16"))


def _top10(vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return index.search(queries, 10)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=1000)
    parser.add_argument("--output", default=str(Path(__file__).parent / "results" / "embedding.json"))
    args = parser.parse_args()
    data = load_beir(SCIFACT, "test")
    texts = list(data.corpus.values())[: args.passages]
    claims = [data.queries[q] for q in data.qrels]
    baseline = Embedder(runtime="torch", precision="fp32")
    baseline.embed(texts[:64])  # warm-up
    started = time.perf_counter()
    reference = baseline.embed(texts)
    base_seconds = time.perf_counter() - started
    reference_top = _top10(reference, baseline.embed(claims))
    rows = []
    for runtime, precision in MODES:
        embedder = Embedder(runtime=runtime, precision=precision)
        embedder.embed(texts[:64])
        started = time.perf_counter()
        vectors = embedder.embed(texts)
        seconds = time.perf_counter() - started
        top = _top10(vectors, embedder.embed(claims))
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(reference_top, top, strict=True)])
        rows.append(
            {
                "mode": f"{runtime} {precision}",
                "passages_per_second": len(texts) / seconds,
                "x_baseline": base_seconds / seconds,
                "recall_at_10_vs_fp32": float(recall),
                "min_cosine_vs_fp32": float((vectors * reference).sum(axis=1).min()),
            }
        )
        print(rows[-1])
    result = {
        "passages": len(texts),
        "claims": len(claims),
        "bi_encoder": baseline.model_name,
        "baseline": {"mode": "sentence-transformers encode fp32", "passages_per_second": len(texts) / base_seconds},
        "modes": rows,
    }
    Path(args.output).write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps(result["baseline"]))


if __name__ == "__main__":
    main()
