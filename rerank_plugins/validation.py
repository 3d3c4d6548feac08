"""Argument checks shared by the core and the adapters, so bad input fails early and clearly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeGuard

__all__ = [
    "check_count",
    "check_documents",
    "check_query",
    "check_ranking_query",
    "check_score_threshold",
    "check_top_n",
    "is_int",
    "is_number",
]


def is_int(value: Any) -> TypeGuard[int]:
    """Whether ``value`` is an int and not a bool (``True`` is an int to Python, but never a count here)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> TypeGuard[int | float]:
    """Whether ``value`` is an int or a float and not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_count(value: Any, name: str, least: int, *, error: type[Exception] | None = None) -> int:
    """``value`` if it is an int (not a bool) of at least ``least``, else an error naming ``name``.

    A non-int raises ``TypeError`` and a smaller int ``ValueError``; given ``error``, both raise that,
    saying "``name`` must be an int >= ``least``, got ``value``".
    """
    if error is not None:
        if not is_int(value) or value < least:
            raise error(f"{name} must be an int >= {least}, got {value!r}")
        return value
    if not is_int(value):
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
    if not is_int(top_n):
        raise TypeError(f"top_n must be an int or None, got {type(top_n).__name__}")
    return check_count(top_n, "top_n", 1)


def check_score_threshold(threshold: Any) -> float | None:
    """``None`` or a number in [0, 1] (thresholds apply to ``relevance_score``)."""
    if threshold is None:
        return None
    if not is_number(threshold):
        raise TypeError(f"score_threshold must be a number or None, got {type(threshold).__name__}")
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"score_threshold applies to relevance_score and must be in [0, 1], got {threshold}")
    return float(threshold)
