"""A ranked document shown with the passage that earned its score highlighted, for terminals."""

from __future__ import annotations

from rich.text import Text

from rerank_plugins.results import RankedResult

__all__ = ["highlighted"]

AROUND = 160
"""Characters of the document shown each side of the passage; the rest is elided."""


def highlighted(result: RankedResult, around: int = AROUND, style: str = "bold black on yellow") -> Text:
    """The document around its evidence ``span``, the span in ``style``, elisions marked with an ellipsis."""
    document = result.document
    start, end = result.span if result.span is not None else (0, len(document))
    before, after = max(0, start - around), min(len(document), end + around)
    text = Text("…" if before else "")
    text.append(document[before:start])
    text.append(document[start:end], style=style)
    text.append(document[end:after])
    text.append("…" if after < len(document) else "")
    return text
