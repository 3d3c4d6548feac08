"""The text an adapter scores for ``metadata_mode``: metadata lines before the text, as LlamaIndex formats them.

Framework-free, so the LangChain and LlamaIndex adapters build the same string for the same text and
metadata, and both get the same score. The reranker's own metadata keys (``metadata_keys``) never count:
reranking an already reranked document scores the same text again. Each scored text comes with where the
document's own text starts in it, so an evidence span found in the scored string maps back onto the text
without searching for it.
"""

from __future__ import annotations

import string
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from rerank_plugins import metadata_keys

__all__ = [
    "DEFAULT_METADATA_SEPARATOR",
    "DEFAULT_METADATA_TEMPLATE",
    "DEFAULT_TEXT_TEMPLATE",
    "RERANKER_KEYS",
    "ScoredText",
    "format_metadata",
    "scored_text",
    "text_span",
]

DEFAULT_METADATA_TEMPLATE = "{key}: {value}"
"""LlamaIndex's default line for one metadata key (``DEFAULT_METADATA_TMPL``)."""
DEFAULT_METADATA_SEPARATOR = "\n"
"""LlamaIndex's default separator between metadata lines."""
DEFAULT_TEXT_TEMPLATE = "{metadata_str}\n\n{content}"
"""LlamaIndex's default text node template (``DEFAULT_TEXT_NODE_TMPL``)."""
RERANKER_KEYS: frozenset[str] = frozenset(getattr(metadata_keys, name) for name in metadata_keys.__all__)
"""Every metadata key the adapters write: never part of the scored text, so scores survive a second rerank."""


@dataclass(frozen=True)
class ScoredText:
    """The string the model scores and where the document's own text starts in it.

    Attributes:
        text: What the model reads: the text alone, or metadata lines and the text through the template.
        offset: Index in ``text`` of the document text's first character; negative when stripping the
            formatted string cut leading white space off the document text; ``None`` when the template
            leaves the text out.
    """

    text: str
    offset: int | None = 0


def format_metadata(
    metadata: Mapping[str, Any],
    excluded: Collection[str] = (),
    template: str = DEFAULT_METADATA_TEMPLATE,
    separator: str = DEFAULT_METADATA_SEPARATOR,
) -> str:
    """``key: value`` lines for the metadata that counts (not ``excluded``, not the reranker's own), stripped,
    as LlamaIndex's ``get_metadata_str`` and ``TextNode.get_content`` build them."""
    lines = [
        template.format(key=key, value=str(value))
        for key, value in metadata.items()
        if key not in excluded and key not in RERANKER_KEYS
    ]
    return separator.join(lines).strip()


def scored_text(content: str, metadata_str: str, text_template: str = DEFAULT_TEXT_TEMPLATE) -> ScoredText:
    """``content`` alone without metadata, else ``text_template`` filled and stripped (as ``TextNode.get_content``
    does), with the place of ``content`` in the result."""
    if not metadata_str:
        return ScoredText(content, 0)
    values = {"content": content, "metadata_str": metadata_str}
    formatter = string.Formatter()
    pieces: list[str] = []
    offset: int | None = None
    length = 0
    for literal, field, spec, conversion in formatter.parse(text_template):
        pieces.append(literal)
        length += len(literal)
        if field is None:
            continue
        if field == "content" and offset is None and not spec and not conversion:
            offset = length  # the first verbatim {content}: the text a span maps back onto
        value = formatter.convert_field(formatter.get_field(field, (), values)[0], conversion)
        piece = formatter.format_field(value, formatter.format(spec, **values) if spec else "")
        pieces.append(piece)
        length += len(piece)
    formatted = "".join(pieces)
    if offset is not None:
        offset -= len(formatted) - len(formatted.lstrip())
    return ScoredText(formatted.strip(), offset)


def text_span(span: tuple[int, int], offset: int | None, length: int) -> tuple[int, int]:
    """A span of a scored string as characters of the document text (``length`` long) it holds at ``offset``.

    The part of the span over the metadata is dropped; a span over the metadata alone, or a text the scored
    string does not hold, gives the whole text.
    """
    if offset is None:
        return 0, length
    start, end = max(span[0] - offset, 0), min(span[1] - offset, length)
    return (start, end) if start < end else (0, length)
