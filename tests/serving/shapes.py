"""The request shapes the service speaks (its own, TEI, Cohere v1/v2, Voyage): build a request, read its scores."""

from __future__ import annotations

from typing import Any

SHAPES = ("rerank-plugins", "tei", "cohere-v2", "cohere-v1", "voyage")
"""The request shapes the service speaks; ``request_in`` and ``scores_in`` build and read each."""


def request_in(shape: str, query: str, documents: list[str]) -> tuple[str, dict[str, Any]]:
    """The path and JSON body asking for every document's score in ``shape``."""
    if shape == "rerank-plugins":
        return "/rerank", {"query": query, "documents": documents}
    if shape == "tei":
        return "/rerank", {"query": query, "texts": documents, "raw_scores": True}
    if shape == "voyage":
        return "/v1/rerank", {"query": query, "documents": documents, "top_k": None, "truncation": True}
    return f"/{shape[-2:]}/rerank", {"query": query, "documents": documents, "top_n": len(documents)}


def scores_in(shape: str, answer: Any, count: int) -> tuple[str, list[float]]:
    """Which score ``shape`` answers (``score`` raw, or ``relevance_score``) and its values in input order."""
    rows = answer if shape == "tei" else answer["data"] if shape == "voyage" else answer["results"]
    kind = "score" if shape in ("rerank-plugins", "tei") else "relevance_score"
    by_index = {row["index"]: row[kind] for row in rows}
    assert len(by_index) == len(rows) == count, f"{shape}: {len(rows)} rows for {count} documents"
    return kind, [by_index[position] for position in range(count)]
