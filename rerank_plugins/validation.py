"""Argument checks shared by the core and the adapters, so bad input fails early and clearly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "check_count",
    "check_documents",
    "check_query",
    "check_ranking_query",
    "check_score_threshold",
    "check_top_n",
]


def check_count(value: Any, name: str, least: int) -> int:
    """``value`` if it is an int (not a bool) of at least ``least``, else an error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < least:
        raise ValueError(f"{name} must be >= {least}, got {value}")
    return value


def check_query(query: Any, name: str = "query") -> str:
    """Return ``query`` if it is a ``str``, else raise ``TypeError`` naming its type."""
    if not isinstance(query, str):
        raise TypeError(f"{name} must be a str, got {type(query).__name__}")
    return query


def check_ranking_query(query: Any, name: str = "query") -> str:
    """``check_query``, and refuse an empty or blank query: ranking against nothing orders documents by noise."""
    text = check_query(query, name)
    if not text.strip():
        raise ValueError(f"{name} is empty{' (only whitespace)' if text else ''}: there is nothing to rank against")
    return text


def check_documents(documents: Any, name: str = "documents") -> list[str]:
    """Return ``documents`` as a list of ``str``, naming the first position that is not one."""
    if isinstance(documents, (str, bytes)) or not isinstance(documents, Sequence):
        raise TypeError(f"{name} must be a list of str, got {type(documents).__name__}")
    for position, document in enumerate(documents):
        if not isinstance(document, str):
            raise TypeError(f"{name}[{position}] must be a str, got {type(document).__name__}")
    return list(documents)


def check_top_n(top_n: Any) -> int | None:
    """``None`` or an int >= 1."""
    if top_n is None:
        return None
    if isinstance(top_n, bool) or not isinstance(top_n, int):
        raise TypeError(f"top_n must be an int or None, got {type(top_n).__name__}")
    if top_n < 1:
        raise ValueError(f"top_n must be >= 1, got {top_n}")
    return top_n


def check_score_threshold(threshold: Any) -> float | None:
    """``None`` or a number in [0, 1] (thresholds apply to ``relevance_score``)."""
    if threshold is None:
        return None
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise TypeError(f"score_threshold must be a number or None, got {type(threshold).__name__}")
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"score_threshold applies to relevance_score and must be in [0, 1], got {threshold}")
    return float(threshold)
