"""Everything ``gpu_rerank.py`` needs on a GPU machine that has no ``../shared``, in ``.cache/gpu`` (git-ignored).

- ``workload.json``: SciFact test claims with their bi-encoder top-100 abstracts (ids, and each text once)
  and qrels;
- ``minilm-l6-scifact-ce-fp16/``: the SciFact cross-encoder with its weights stored in fp16 (about 45 MB),
  so checkout and model fit the device tool's 64 MiB. Loaded in fp32 it gives the fp32 model's scores
  to fp16 rounding of the weights, which every mode, the baseline included, shares.

    HF_HUB_OFFLINE=1 PYTHONPATH=. .venv/bin/python benchmarks/gpu_prepare.py [--queries 100]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

SHARED = Path(os.environ.get("RERANK_PLUGINS_SHARED", "../shared"))


def _fp16_copy(source: Path, target: Path) -> None:
    from safetensors.torch import load_file, save_file

    target.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if path.is_file() and path.suffix != ".safetensors" and path.name not in ("SOURCE.txt",):
            shutil.copyfile(path, target / path.name)
    weights = load_file(source / "model.safetensors")
    save_file(
        {name: tensor.half() if tensor.is_floating_point() else tensor for name, tensor in weights.items()},
        target / "model.safetensors",
        metadata={"format": "pt"},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--index-dir", default=".cache/scifact-index", help="saved FAISS index (built if absent)")
    parser.add_argument("--output", default=".cache/gpu")
    args = parser.parse_args()

    from rerank_plugins.evaluation import load_beir
    from rerank_plugins.retrieval import FaissRetriever

    output = Path(args.output)
    data = load_beir(SHARED / "data" / "scifact", "test")
    index_dir = Path(args.index_dir)
    if (index_dir / "config.json").is_file():
        retriever = FaissRetriever.load(index_dir)
    else:
        retriever = FaissRetriever.from_texts(list(data.corpus.values()), ids=list(data.corpus))
        retriever.save(index_dir)
    query_ids = list(data.queries)[: args.queries]
    hits = retriever.search_many([data.queries[q] for q in query_ids], k=args.candidates)
    output.mkdir(parents=True, exist_ok=True)
    workload = {
        "query_ids": query_ids,
        "queries": [data.queries[q] for q in query_ids],
        "doc_ids": [[hit.id for hit in row] for row in hits],
        "corpus": {hit.id: hit.text for row in hits for hit in row},  # each abstract once
        "qrels": {q: data.qrels[q] for q in query_ids},
    }
    (output / "workload.json").write_text(json.dumps(workload), encoding="utf-8")
    _fp16_copy(SHARED / "models" / "minilm-l6-scifact-ce", output / "minilm-l6-scifact-ce-fp16")
    size = sum(path.stat().st_size for path in output.rglob("*") if path.is_file())
    print(f"{output}: {len(query_ids)} queries x {args.candidates} candidates, fp16 model; {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
