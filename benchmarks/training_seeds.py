"""Fine-tuning's spread over seeds, and whether the bi-encoder's precision changes the hard negatives.

Builds a small SciFact task (the first 30 train claims to train on, 4 of them held out as ``train``'s dev
set; 50 other train claims as a held-out test; their judged abstracts plus 500 others as the corpus), mines
hard negatives with the bi-encoder in the precision asked, then fine-tunes the SciFact cross-encoder for one
epoch per seed (the ``rerank-plugins train`` recipe) and reranks the held-out claims' bi-encoder top 20 with
each model. ``--src`` runs another checkout's code (a ``git worktree`` of an older commit) on the same task.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/training_seeds.py --mining fp32 --label main-fp32
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/training_seeds.py --mining bf16 --label main-bf16
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/training_seeds.py --src /tmp/before-17 --mining default \\
        --label before-17
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/training_seeds.py --compare main-fp32 main-bf16 before-17
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

SHARED = Path(__file__).resolve().parents[2] / "shared"
SCIFACT = SHARED / "data" / "scifact"
MODEL = SHARED / "models" / "minilm-l6-scifact-ce"
RESULTS = Path(__file__).resolve().parent / "results" / "training_seeds"
TRAIN_CLAIMS, HELDOUT_CLAIMS, OTHER_ABSTRACTS, HELDOUT_TOP_K = 30, 50, 500, 20


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def build_task(root: Path) -> Path:
    """The BEIR folder of the task: ``qrels/train.tsv`` (30 claims) and ``qrels/heldout.tsv`` (50 claims)."""
    lines = (SCIFACT / "qrels" / "train.tsv").read_text(encoding="utf-8").splitlines()[1:]
    judged = [line.split("\t") for line in lines]
    claims = list(dict.fromkeys(q for q, _, score in judged if int(score) > 0))
    train, heldout = claims[:TRAIN_CLAIMS], claims[TRAIN_CLAIMS : TRAIN_CLAIMS + HELDOUT_CLAIMS]
    corpus = {row["_id"]: row for row in _rows(SCIFACT / "corpus.jsonl")}
    wanted = [d for q, d, _ in judged if q in set(train + heldout)] + list(corpus)[:OTHER_ABSTRACTS]
    queries = {row["_id"]: row for row in _rows(SCIFACT / "queries.jsonl")}
    (root / "qrels").mkdir(parents=True, exist_ok=True)
    with open(root / "corpus.jsonl", "w", encoding="utf-8") as out:
        out.writelines(json.dumps(corpus[d]) + "\n" for d in dict.fromkeys(wanted))
    with open(root / "queries.jsonl", "w", encoding="utf-8") as out:
        out.writelines(json.dumps(queries[q]) + "\n" for q in train + heldout)
    for split, ids in (("train", train), ("heldout", heldout)):
        rows = "".join(f"{q}\t{d}\t{s}\n" for q, d, s in judged if q in set(ids))
        (root / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + rows, encoding="utf-8")
    return root


def run(label: str, mining: str, seeds: list[int], epochs: int) -> dict[str, Any]:
    """Mine, then train and evaluate once per seed, with whichever ``rerank_plugins`` is first on the path."""
    import rerank_plugins
    from rerank_plugins import Reranker
    from rerank_plugins.evaluation.beir import load_beir
    from rerank_plugins.evaluation.pipeline import evaluate
    from rerank_plugins.retrieval import FaissRetriever, default_bi_encoder
    from rerank_plugins.training import TrainingConfig, fine_tune, load_training_data
    from rerank_plugins.training.negatives import mine_hard_negatives

    work = Path(tempfile.mkdtemp(prefix="training-seeds-"))
    data_dir = build_task(work / "task")
    heldout = load_beir(data_dir, "heldout")
    options = {} if mining == "default" else {"precision": mining, "runtime": "torch" if mining == "bf16" else "auto"}
    retriever = FaissRetriever.from_texts(
        list(heldout.corpus.values()), ids=list(heldout.corpus), model=default_bi_encoder(), **options
    )
    config = TrainingConfig(epochs=epochs, dev_queries=4)
    data = load_training_data(data_dir, dev_queries=config.dev_queries, dev_seed=config.dev_seed)
    negatives = mine_hard_negatives(retriever, data.train, config.negative_depth)

    def heldout_ndcg(model: str) -> dict[str, float]:
        report = evaluate(heldout, retriever, Reranker(model, precision="fp32", runtime="torch"), top_k=HELDOUT_TOP_K)
        return {"retrieval": report.metrics["retrieval"]["ndcg@10"], "reranked": report.metrics["reranked"]["ndcg@10"]}

    result: dict[str, Any] = {
        "label": label,
        "code": str(Path(rerank_plugins.__file__).parents[1]),
        "mining": mining,
        "embedder": [retriever.embedder.runtime, retriever.embedder.precision]
        if hasattr(retriever.embedder, "runtime")
        else ["torch", "fp32"],
        "negatives": negatives,
        "base": heldout_ndcg(str(MODEL)),
        "seeds": {},
    }
    for seed in seeds:
        out = work / f"seed-{seed}"
        seeded = TrainingConfig(epochs=epochs, dev_queries=4, seed=seed)
        report = fine_tune(data_dir, str(MODEL), out, seeded, retriever=retriever, show_progress_bar=False)
        result["seeds"][str(seed)] = {
            "dev_ndcg_at_10": report.best.dev_ndcg_at_10,
            "dev_retrieval_ndcg_at_10": report.dev_retrieval_ndcg_at_10,
            "heldout": heldout_ndcg(str(out)),
        }
        print(label, seed, result["seeds"][str(seed)], flush=True)
    return result


def _spread(values: list[float]) -> str:
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.4f}"


def compare(labels: list[str]) -> None:
    """Hard-negative overlap with the first label's, and each label's mean ± standard deviation over seeds."""
    runs = [json.loads((RESULTS / f"{label}.json").read_text()) for label in labels]
    first = runs[0]["negatives"]
    for run_ in runs:
        same = [len(set(first[q][:5]) & set(run_["negatives"][q][:5])) / 5 for q in first]
        ordered = sum(first[q] == run_["negatives"][q] for q in first) / len(first)
        dev = [seed["dev_ndcg_at_10"] for seed in run_["seeds"].values()]
        held = [seed["heldout"]["reranked"] for seed in run_["seeds"].values()]
        print(
            f"{run_['label']:>12} mining {run_['embedder']}: top-5 negatives shared with {runs[0]['label']} "
            f"{statistics.mean(same):.3f}, identical lists {ordered:.2f}; held-out NDCG@10 base "
            f"{run_['base']['reranked']:.4f} (bi-encoder {run_['base']['retrieval']:.4f}), after one epoch "
            f"{_spread(held)} over {len(held)} seeds; dev (4 claims) {_spread(dev)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", default=None, help="a checkout whose rerank_plugins to run (default: this one)")
    parser.add_argument("--mining", choices=("default", "fp32", "bf16"), default="fp32")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--label", default="main-fp32")
    parser.add_argument("--compare", nargs="+", default=None, help="labels of saved runs to compare")
    args = parser.parse_args()
    if args.compare:
        compare(args.compare)
        return
    sys.path.insert(0, str(Path(args.src).resolve()) if args.src else str(Path(__file__).resolve().parents[1]))
    result = run(args.label, args.mining, args.seeds, args.epochs)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.label}.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
