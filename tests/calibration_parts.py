"""A small judged BEIR directory cut from SciFact, with a first-stage run file, for calibration tests."""

from __future__ import annotations

import json
from pathlib import Path


def write_scifact_slice(
    root: Path,
    corpus: dict[str, str],
    queries: dict[str, str],
    qrels: dict[str, set[str]],
    claims: int = 40,
    others: int = 200,
    candidates: int = 8,
) -> Path:
    """``claims`` SciFact claims, their judged abstracts and ``others`` more as a BEIR directory under ``root``,
    plus ``run.trec``: a word-overlap first stage of ``candidates`` abstracts a claim, its judged ones among them."""
    query_ids = list(qrels)[:claims]
    judged = [doc_id for q in query_ids for doc_id in sorted(qrels[q])]
    doc_ids = list(dict.fromkeys([*judged, *list(corpus)[:others]]))
    with open(root / "corpus.jsonl", "w", encoding="utf-8") as out:
        for doc_id in doc_ids:
            out.write(json.dumps({"_id": doc_id, "title": "", "text": corpus[doc_id]}) + "\n")
    with open(root / "queries.jsonl", "w", encoding="utf-8") as out:
        for q in query_ids:
            out.write(json.dumps({"_id": q, "text": queries[q]}) + "\n")
    (root / "qrels").mkdir(exist_ok=True)
    rows = [f"{q}\t{d}\t1" for q in query_ids for d in sorted(qrels[q])]
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n", encoding="utf-8")
    words = {doc_id: set(corpus[doc_id].lower().split()) for doc_id in doc_ids}
    with open(root / "run.trec", "w", encoding="utf-8") as out:
        for q in query_ids:
            claim = set(queries[q].lower().split())
            overlap = {d: len(claim & words[d]) for d in doc_ids}
            ranked = sorted(doc_ids, key=lambda d: (-overlap[d], d))
            picked = list(dict.fromkeys([*sorted(qrels[q]), *ranked]))[:candidates]
            for rank, doc_id in enumerate(sorted(picked, key=lambda d: (-overlap[d], d)), 1):
                out.write(f"{q} Q0 {doc_id} {rank} {100 - rank} overlap\n")
    return root
