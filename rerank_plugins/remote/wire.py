"""The two rerank APIs the client speaks: ours (``rerank-plugins serve``) and Text Embeddings Inference."""

from __future__ import annotations

import math
from typing import Any, Literal

from rerank_plugins.backend import PairScore
from rerank_plugins.validation import is_int, is_number

__all__ = ["Api", "MalformedAnswer", "parse_response", "request_body"]

Api = Literal["rerank-plugins", "tei"]


def request_body(api: Api, query: str, documents: list[str]) -> dict[str, Any]:
    """The JSON body of ``POST /rerank`` asking for every document's score."""
    if api == "tei":
        return {"query": query, "texts": documents, "raw_scores": True, "return_text": False, "truncate": True}
    return {"query": query, "documents": documents, "top_n": None, "return_documents": False}


def _sigmoid(value: float) -> float:
    return 1.0 / (1.0 + math.exp(-value)) if value >= 0 else math.exp(value) / (1.0 + math.exp(value))


class MalformedAnswer(ValueError):
    """A rerank answer that does not hold one finite, in-range score for each document."""


def _number(row: dict[str, Any], name: str, where: str) -> float:
    value = row.get(name)
    if not is_number(value):
        raise MalformedAnswer(f"{where}.{name} is {type(value).__name__}, not a number")
    if not math.isfinite(value):
        raise MalformedAnswer(f"{where}.{name} is {value}, not a finite number")
    return float(value)


def _count(row: dict[str, Any], name: str, default: int, least: int, where: str) -> int:
    value = row.get(name, default)
    if not is_int(value) or value < least:
        raise MalformedAnswer(f"{where}.{name} is {value!r:.40}, not an int >= {least}")
    return value


def _p_any(payload: dict[str, Any]) -> float | None:
    """The answer's P(at least one document is relevant), sent by a calibrated service; ``None`` if absent."""
    if payload.get("p_any_relevant") is None:
        return None
    value = _number(payload, "p_any_relevant", "answer")
    if not 0.0 <= value <= 1.0:
        raise MalformedAnswer(f"answer.p_any_relevant is {value}, outside [0, 1]")
    return value


def _span(row: dict[str, Any], length: int, where: str) -> tuple[int, int] | None:
    value = row.get("span")
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(is_int(end) for end in value)
        or not 0 <= value[0] <= value[1] <= length
    ):
        raise MalformedAnswer(
            f"{where}.span is {value!r:.40}, not [start, end] within the document's {length} characters"
        )
    return value[0], value[1]


def parse_response(api: Api, payload: Any, lengths: list[int]) -> list[PairScore]:
    """Scores in input order from a ``/rerank`` answer covering documents of ``lengths`` characters.

    Every row is checked: an int index in range, each once; finite scores; relevance in [0, 1];
    ``p_any_relevant`` in [0, 1] when a calibrated service sends it (its relevance is then calibrated);
    and an evidence ``span`` within its document when one is sent. Anything else raises
    :class:`MalformedAnswer`, so a bad server cannot reorder the valid documents.
    """
    count = len(lengths)
    rows = payload if api == "tei" else payload.get("results") if isinstance(payload, dict) else None
    if not isinstance(rows, list) or len(rows) != count:
        size = f"{len(rows)} rows" if isinstance(rows, list) else type(rows).__name__
        raise MalformedAnswer(f"answered {size} for {count} documents")
    p_any = _p_any(payload) if api != "tei" else None
    abstained = api == "rerank-plugins" and payload.get("abstained") is True
    scores: list[PairScore | None] = [None] * count
    for position, row in enumerate(rows):
        where = f"results[{position}]"
        if not isinstance(row, dict):
            raise MalformedAnswer(f"{where} is {type(row).__name__}, not an object")
        index = row.get("index")
        if not is_int(index) or not 0 <= index < count:
            raise MalformedAnswer(f"{where}.index is {index!r:.40}, not an int in [0, {count})")
        if scores[index] is not None:
            raise MalformedAnswer(f"{where}.index {index} appears twice")
        raw = _number(row, "score", where)
        if api == "tei":  # raw logits asked for; TEI maps them with a sigmoid when not
            scores[index] = PairScore(raw, _sigmoid(raw))
            continue
        relevance = _number(row, "relevance_score", where)
        if not 0.0 <= relevance <= 1.0:
            raise MalformedAnswer(f"{where}.relevance_score is {relevance}, outside [0, 1]")
        truncated = _count(row, "truncated_tokens", 0, 0, where)
        windows = _count(row, "windows", 1, 1, where)
        span = _span(row, lengths[index], where)
        scores[index] = PairScore(raw, relevance, truncated, windows, None, p_any is not None, p_any, span, abstained)
    return [score for score in scores if score is not None]
