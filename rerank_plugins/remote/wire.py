"""The two rerank APIs the client speaks: ours (``rerank-plugins serve``) and Text Embeddings Inference."""

from __future__ import annotations

import math
from typing import Any, Literal

from rerank_plugins.backend import PairScore

__all__ = ["Api", "parse_response", "request_body"]

Api = Literal["rerank-plugins", "tei"]


def request_body(api: Api, query: str, documents: list[str]) -> dict[str, Any]:
    """The JSON body of ``POST /rerank`` asking for every document's score."""
    if api == "tei":
        return {"query": query, "texts": documents, "raw_scores": True, "return_text": False, "truncate": True}
    return {"query": query, "documents": documents, "top_n": None, "return_documents": False}


def _sigmoid(value: float) -> float:
    return 1.0 / (1.0 + math.exp(-value)) if value >= 0 else math.exp(value) / (1.0 + math.exp(value))


def parse_response(api: Api, payload: Any, count: int) -> list[PairScore]:
    """Scores in input order from a ``/rerank`` answer covering ``count`` documents."""
    rows = payload if api == "tei" else payload.get("results") if isinstance(payload, dict) else None
    if not isinstance(rows, list) or len(rows) != count:
        raise ValueError(f"the rerank service answered {type(rows).__name__} for {count} documents: {payload!r:.200}")
    scores: list[PairScore | None] = [None] * count
    for row in rows:
        index = int(row["index"])
        if api == "tei":  # raw logits asked for; TEI maps them with a sigmoid when not
            raw = float(row["score"])
            scores[index] = PairScore(raw, _sigmoid(raw))
        else:
            scores[index] = PairScore(
                float(row["score"]),
                float(row["relevance_score"]),
                int(row.get("truncated_tokens", 0)),
                int(row.get("windows", 1)),
            )
    missing = [position for position, score in enumerate(scores) if score is None]
    if missing:
        raise ValueError(f"the rerank service left out documents {missing[:5]}")
    return [score for score in scores if score is not None]
