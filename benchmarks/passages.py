"""Evidence passages on SciFact test: window against truncate mode, and what ``compress="passage"`` saves the LLM.

Two document sets, each reranked for every SciFact test claim:

- **abstracts**: the claim's bi-encoder top-K abstracts, as they are;
- **chained**: the corpus shuffled (seed 0) into chains of three abstracts; the candidates are the chains
  holding the claim's bi-encoder top-K abstracts (first appearance order, at most K). A chain is relevant
  when it holds a relevant abstract (its grade), so the relevant text is one part of a longer document.

Each set is ranked in truncate mode and in window mode (token and sentence boundaries) at ``max_length``
512, 128 and 64, and scored by NDCG@10 (ir-measures). For the top 5 of each window ranking it counts the
tokens handed to an LLM (the cross-encoder's own tokenizer as the count) as whole documents and as
``compress="passage"`` passages, and, for the relevant chains among them, whether the passage holds text
of the relevant abstract (``overlap``) and whether most of it lies inside that abstract (``inside``).

    HF_HUB_OFFLINE=1 PYTHONPATH=. .venv/bin/python benchmarks/passages.py prepare          # here: needs ../shared
    HF_HUB_OFFLINE=1 PYTHONPATH=. python benchmarks/passages.py run --device cuda          # anywhere (a GPU)
    HF_HUB_OFFLINE=1 PYTHONPATH=. .venv/bin/python benchmarks/passages.py report          # -> results/passages.json

``run`` on a CPU takes ``--queries 20 --candidates 10`` in a few minutes; ``report`` needs ir-measures.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import time
from pathlib import Path
from typing import Any

SHARED = Path(os.environ.get("RERANK_PLUGINS_SHARED", "../shared"))
WORK = Path(".cache/gpu")
WORKLOAD = WORK / "passages.json.gz"
MODEL = WORK / "minilm-l6-scifact-ce-fp16"
RAW = Path("benchmarks/results/passages_raw.json")
RESULT = Path("benchmarks/results/passages.json")
TOP = 5
"""Results handed to the LLM."""
CONFIGS = [
    (None, "truncate", "tokens"),
    (None, "window", "tokens"),
    (128, "truncate", "tokens"),
    (128, "window", "tokens"),
    (128, "window", "sentence"),
    (64, "truncate", "tokens"),
    (64, "window", "tokens"),
    (64, "window", "sentence"),
]
"""(document tokens per window, mode, boundaries): None is the model's whole 512-token pair; 128 and 64 set each
claim's ``max_length`` to its own tokens plus the template's plus the window, so every window holds that many."""


def prepare(candidates: int, index_dir: Path) -> None:
    """Workload (claims, bi-encoder candidates, chains, texts, qrels) and the fp16 model, in ``.cache/gpu``."""
    from benchmarks.gpu_prepare import _fp16_copy
    from rerank_plugins.evaluation import load_beir
    from rerank_plugins.retrieval import FaissRetriever

    data = load_beir(SHARED / "data" / "scifact", "test")
    if (index_dir / "config.json").is_file():
        retriever = FaissRetriever.load(index_dir)
    else:
        retriever = FaissRetriever.from_texts(list(data.corpus.values()), ids=list(data.corpus))
        retriever.save(index_dir)
    query_ids = list(data.queries)
    hits = retriever.search_many([data.queries[q] for q in query_ids], k=candidates)
    ids = list(data.corpus)
    random.Random(0).shuffle(ids)
    chains = {f"chain-{n // 3}": ids[n : n + 3] for n in range(0, len(ids), 3)}
    workload = {
        "query_ids": query_ids,
        "queries": [data.queries[q] for q in query_ids],
        "candidates": [[hit.id for hit in row] for row in hits],
        "chains": chains,
        "corpus": data.corpus,
        "qrels": {q: data.qrels[q] for q in query_ids},
    }
    WORK.mkdir(parents=True, exist_ok=True)
    with gzip.open(WORKLOAD, "wt", encoding="utf-8") as stream:
        json.dump(workload, stream)
    if not MODEL.is_dir():
        _fp16_copy(SHARED / "models" / "minilm-l6-scifact-ce", MODEL)
    size = sum(path.stat().st_size for path in WORK.rglob("*") if path.is_file())
    print(f"{WORK}: {len(query_ids)} claims x top {candidates}; {size / 2**20:.1f} MiB with the fp16 model")


def _sets(workload: dict[str, Any], queries: int, candidates: int) -> dict[str, Any]:
    """Per set: each claim's candidate (id, text) list, the qrels, and each chain's abstracts with offsets."""
    corpus, chains = workload["corpus"], workload["chains"]
    chain_of = {doc_id: chain for chain, members in chains.items() for doc_id in members}
    query_ids = workload["query_ids"][:queries]
    qrels = {q: workload["qrels"][q] for q in query_ids}
    abstracts, chained, layout = [], [], {}
    for top in workload["candidates"][:queries]:
        top = top[:candidates]
        abstracts.append([(doc_id, corpus[doc_id]) for doc_id in top])
        own = list(dict.fromkeys(chain_of[doc_id] for doc_id in top))
        row = []
        for chain in own:
            parts, at, text = [], 0, []
            for doc_id in chains[chain]:
                parts.append((doc_id, at, at + len(corpus[doc_id])))
                text.append(corpus[doc_id])
                at += len(corpus[doc_id]) + 1
            layout[chain] = parts
            row.append((chain, " ".join(text)))
        chained.append(row)
    chain_qrels: dict[str, dict[str, int]] = {}
    for q, grades in qrels.items():  # relevant chains never retrieved still count in the ideal ranking
        for doc_id, grade in grades.items():
            chain = chain_of[doc_id]
            chain_qrels.setdefault(q, {})[chain] = max(grade, chain_qrels.get(q, {}).get(chain, 0))
    return {
        "query_ids": query_ids,
        "queries": workload["queries"][:queries],
        "abstracts": {"docs": abstracts, "qrels": qrels},
        "chained": {"docs": chained, "qrels": chain_qrels, "layout": layout},
    }


def _rank(
    model: str,
    device: str,
    precision: str,
    mode: str,
    boundaries: str,
    window_tokens: int | None,
    queries: list[str],
    docs: list[list[tuple[str, str]]],
) -> list[Any]:
    """Each claim's ranking; with ``window_tokens``, claims of one length share a ``max_length`` that leaves
    exactly that many tokens for the document (the model's weights are loaded once and shared)."""
    from rerank_plugins import Reranker

    def core(max_length: int) -> Reranker:
        return Reranker(model, device=device, precision=precision, runtime="torch", max_length=max_length,
                        long_documents=mode, window_boundaries=boundaries, show_progress_bar=False)  # fmt: skip

    texts = [[text for _, text in row] for row in docs]
    if window_tokens is None:
        return core(512).rank_many(queries, texts)
    probe = core(512)
    special = probe._model()[1].special_count
    groups: dict[int, list[int]] = {}
    for position, query in enumerate(queries):
        groups.setdefault(probe.query_tokens(query) + special + window_tokens, []).append(position)
    rankings: list[Any] = [None] * len(queries)
    for max_length, members in groups.items():
        ranked = core(max_length).rank_many([queries[i] for i in members], [texts[i] for i in members])
        for position, ranking in zip(members, ranked, strict=True):
            rankings[position] = ranking
    return rankings


def run(model: str, device: str, precision: str, queries: int, candidates: int) -> None:
    """Rank every set in every configuration; keep the runs, the top-5 passages and their token counts."""
    from transformers import AutoTokenizer

    with gzip.open(WORKLOAD, "rt", encoding="utf-8") as stream:
        sets = _sets(json.load(stream), queries, candidates)
    tokenizer = AutoTokenizer.from_pretrained(model)
    tokenizer.model_max_length = 10**9  # counting whole documents, not feeding them to the model

    def tokens(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    raw: dict[str, Any] = {"device": device, "precision": precision, "queries": len(sets["query_ids"]),
                           "candidates": candidates, "model": os.path.basename(model), "configs": []}  # fmt: skip
    for name in ("abstracts", "chained"):
        docs = sets[name]["docs"]
        raw[f"{name}_qrels"] = sets[name]["qrels"]
        raw[f"{name}_mean_tokens"] = sum(tokens(t) for row in docs for _, t in row) / sum(len(r) for r in docs)
        for window_tokens, mode, boundaries in CONFIGS:
            started = time.perf_counter()
            rankings = _rank(model, device, precision, mode, boundaries, window_tokens, sets["queries"], docs)
            seconds = time.perf_counter() - started
            run_scores: dict[str, dict[str, float]] = {}
            whole = passage = 0
            overlap = inside = relevant = 0
            for query_id, row, ranking in zip(sets["query_ids"], docs, rankings, strict=True):
                run_scores[query_id] = {row[r.index][0]: r.score for r in ranking}
                for result in ranking[:TOP]:
                    whole += tokens(result.document)
                    passage += tokens(result.passage)
                    if name != "chained" or result.span is None:
                        continue
                    grades = sets[name]["qrels"].get(query_id, {})
                    chain = row[result.index][0]
                    if not grades.get(chain):
                        continue
                    relevant += 1
                    start, end = result.span
                    own = sets["abstracts"]["qrels"][query_id]
                    parts = [(s, e) for d, s, e in sets[name]["layout"][chain] if own.get(d)]
                    shared = max(max(0, min(end, e) - max(start, s)) for s, e in parts)
                    overlap += shared > 0
                    inside += shared >= (end - start) / 2
            raw["configs"].append({
                "set": name, "window_tokens": window_tokens, "mode": mode, "boundaries": boundaries,
                "seconds": seconds, "run": run_scores, "top5_whole_tokens": whole, "top5_passage_tokens": passage,
                "relevant_in_top5": relevant, "passage_overlaps_relevant": overlap,
                "passage_mostly_inside_relevant": inside,
            })  # fmt: skip
            print(
                f"{name:9} {window_tokens or 'all':4} {mode:8} {boundaries:8} {seconds:7.1f}s  "
                f"top-5 tokens {whole} -> {passage}"
            )
    RAW.parent.mkdir(parents=True, exist_ok=True)
    RAW.write_text(json.dumps(raw), encoding="utf-8")


def report() -> None:
    """NDCG@10 of every configuration (ir-measures), the table, and ``results/passages.json`` without the runs."""
    from rerank_plugins.evaluation.metrics import score_run

    raw = json.loads(RAW.read_text(encoding="utf-8"))
    rows = []
    for config in raw["configs"]:
        qrels = raw[f"{config['set']}_qrels"]
        ndcg = score_run(config["run"], qrels, 10)["ndcg@10"]
        row = {key: value for key, value in config.items() if key != "run"}
        row["ndcg@10"] = round(ndcg, 4)
        row["token_reduction"] = round(1 - config["top5_passage_tokens"] / config["top5_whole_tokens"], 4)
        if config["relevant_in_top5"]:
            row["overlap_rate"] = round(config["passage_overlaps_relevant"] / config["relevant_in_top5"], 4)
            row["inside_rate"] = round(config["passage_mostly_inside_relevant"] / config["relevant_in_top5"], 4)
        rows.append(row)
        print(
            f"{row['set']:9} {row['window_tokens'] or 'all':4} {row['mode']:8} {row['boundaries']:8} "
            f"NDCG@10 {ndcg:.4f}  "
            f"top-5 tokens {config['top5_whole_tokens']:>7} -> {config['top5_passage_tokens']:>7} "
            f"({row['token_reduction']:.1%} fewer)  evidence {row.get('overlap_rate', '-')} / "
            f"{row.get('inside_rate', '-')}"
        )
    summary = {key: value for key, value in raw.items() if not key.endswith("_qrels") and key != "configs"}
    RESULT.write_text(json.dumps({**summary, "rows": rows}, indent=1) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["prepare", "run", "report"])
    parser.add_argument("--candidates", type=int, default=30, help="bi-encoder top-K per claim")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--model", default=str(MODEL))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--index-dir", default=".cache/scifact-index")
    args = parser.parse_args()
    if args.step == "prepare":
        prepare(args.candidates, Path(args.index_dir))
    elif args.step == "run":
        run(args.model, args.device, args.precision, args.queries, args.candidates)
    else:
        report()


if __name__ == "__main__":
    main()
