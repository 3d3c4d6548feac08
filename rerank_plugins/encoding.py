"""Turning (query, document) pairs into model inputs: tokenise once, truncate or window the document.

The tokenizer's own pair template ([CLS] q [SEP] d [SEP], <s> q </s></s> d </s>, ...) is read once from
the fast tokenizer, so pairs are assembled from cached token ids without tokenising anything twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, Protocol

import numpy as np
from tokenizers import Tokenizer

from rerank_plugins.units import ChunkPlan, KnownSpans, Unit, Units, ragged_arange, ragged_ranges
from rerank_plugins.windows import (
    char_span,
    sentence_token_starts,
    sentence_windows,
    token_windows,
    window_step,
)

__all__ = [
    "Encoder",
    "PairEncoder",
    "PairPlan",
    "Unit",
    "clean_text",
    "clip_texts",
    "fit_pair",
    "plan_chunk",
    "token_offsets",
]


@dataclass(frozen=True)
class _Template:
    """Special tokens around the query and the document, with their token type ids."""

    prefix: tuple[tuple[int, int], ...]
    middle: tuple[tuple[int, int], ...]
    suffix: tuple[tuple[int, int], ...]
    query_type: int
    document_type: int

    @property
    def special_count(self) -> int:
        return len(self.prefix) + len(self.middle) + len(self.suffix)


@dataclass(frozen=True)
class PairPlan:
    """The model inputs of one pair: one unit (truncate) or several (window), plus what was cut.

    ``query_tokens`` is the query's own length: over ``query_room`` it was cut to fit, which the
    scorer reports (planning stays silent, so costing a request logs nothing). ``pieces`` are each
    unit's document tokens as (start, count); ``spans`` their characters in the document, where known.
    """

    units: list[Unit]
    truncated_tokens: int
    query_tokens: int
    pieces: list[tuple[int, int]]
    spans: list[tuple[int, int]] | None = None


class Encoder(Protocol):
    """What the scoring core needs of a pair encoder: ``PairEncoder``, or ``PromptEncoder`` for causal LMs."""

    pad_id: int
    uses_token_types: bool

    @property
    def special_count(self) -> int: ...

    def query_room(self, max_length: int) -> int: ...

    def query_tokens(self, query: str) -> int: ...

    def clip(self, texts: Sequence[str], max_tokens: int) -> list[tuple[str, int]]: ...

    def offsets(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]: ...

    def plan_chunk(
        self,
        pairs: Sequence[tuple[str, str]],
        max_length: int,
        window: bool,
        overlap: int | None,
        memo: TokenMemo | None = None,
        *,
        sentences: bool = False,
        spans: bool = False,
    ) -> ChunkPlan: ...


TokenMemo = dict[str, tuple[np.ndarray, int]]
"""Texts already tokenised in one call: the token ids a pair can use, and the text's full token count.
Chunks of one call share it (same ``max_length`` and mode), so a document that comes back for another
query is not tokenised again."""


def plan_chunk(plans: Sequence[PairPlan]) -> ChunkPlan:
    """One ``ChunkPlan`` from per-pair plans whose units are lists (the causal-LM prompt encoder's), with the
    spans the plans worked out for every unit while planning."""
    units = [unit for plan in plans for unit in plan.units]
    counts = np.fromiter((len(plan.units) for plan in plans), dtype=np.int64, count=len(plans))
    known = all(plan.spans is not None for plan in plans)
    spans = np.array([span for plan in plans for span in plan.spans or ()], dtype=np.int64).reshape(-1, 2)
    return ChunkPlan(
        Units.from_units(units),
        np.repeat(np.arange(len(plans), dtype=np.int64), counts),
        np.fromiter((plan.truncated_tokens for plan in plans), dtype=np.int64, count=len(plans)),
        np.fromiter((plan.query_tokens for plan in plans), dtype=np.int64, count=len(plans)),
        KnownSpans(spans) if known else None,
    )


def query_room(max_length: int, special_count: int) -> int:
    """The longest query kept whole: three quarters of what the template leaves, and never all of it."""
    room = max_length - special_count
    return room - max(1, room // 4)


def fit_pair(
    query_ids: list[int],
    document_ids: list[int],
    special_count: int,
    assemble: Callable[[list[int], list[int]], Unit],
    max_length: int,
    window: bool,
    overlap: int | None,
    boundaries: Sequence[int] | None = None,
) -> PairPlan:
    """Fit one pair into ``max_length``: the document is cut (or windowed), never the query first.

    ``assemble`` builds a model input from query and document ids around ``special_count`` template
    tokens. Windows overlap by ``overlap`` tokens; ``None`` means half a window, so any passage up to
    half a window long is seen whole by at least one window. Given the document's sentence
    ``boundaries`` (token indices), windows snap to them (``windows.sentence_windows``).
    """
    room = max_length - special_count
    query_tokens = len(query_ids)
    query_ids = query_ids[: query_room(max_length, special_count)]
    budget = room - len(query_ids)
    length = len(document_ids)
    truncated = 0
    if length <= budget:
        pieces = [(0, length)]
    elif not window:
        pieces, truncated = [(0, budget)], length - budget
    elif boundaries is None:
        pieces = token_windows(length, budget, window_step(budget, overlap))
    else:
        pieces = sentence_windows(length, budget, window_step(budget, overlap), boundaries)
    units = [assemble(query_ids, document_ids[start : start + count]) for start, count in pieces]
    return PairPlan(units, truncated, query_tokens, pieces)


def clip_texts(tokenizer: Tokenizer, texts: Sequence[str], max_tokens: int) -> list[tuple[str, int]]:
    """Each text cut after its first ``max_tokens`` tokens (at the end of the last kept token), and the
    tokens it lost; a text that fits comes back as it is."""
    cleaned = [clean_text(text) for text in texts]
    clipped = []
    for text, encoding in zip(cleaned, tokenizer.encode_batch(cleaned, add_special_tokens=False), strict=True):
        lost = len(encoding.ids) - max_tokens
        clipped.append((text[: encoding.offsets[max_tokens - 1][1]], lost) if lost > 0 else (text, 0))
    return clipped


def token_offsets(tokenizer: Tokenizer, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
    """Each text's token character offsets, without special tokens (exact in the caller's string)."""
    encodings = tokenizer.encode_batch([clean_text(text) for text in texts], add_special_tokens=False)
    return [encoding.offsets for encoding in encodings]


def clean_text(text: str) -> str:
    """Lone surrogates cannot cross into the Rust tokenizer; replace them rather than crash."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


class PairEncoder:
    """Tokenises texts once and assembles pair inputs that fit ``max_length``.

    Thread-safe: the private Rust tokenizer is configured once (no truncation, no padding) and never
    mutated afterwards, so concurrent calls never hit the "Already borrowed" error of shared tokenizers.
    """

    def __init__(self, hf_tokenizer: Any) -> None:
        self._tokenizer = Tokenizer.from_str(hf_tokenizer.backend_tokenizer.to_str())
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self.pad_id: int = hf_tokenizer.pad_token_id if hf_tokenizer.pad_token_id is not None else 0
        self.uses_token_types = "token_type_ids" in getattr(hf_tokenizer, "model_input_names", ())
        self._template = self._read_template()

    def _read_template(self) -> _Template:
        query = self._tokenizer.encode("a b", add_special_tokens=False)
        document = self._tokenizer.encode("c d e", add_special_tokens=False)
        pair = self._tokenizer.post_process(query, document, add_special_tokens=True)
        segments: list[list[tuple[int, int]]] = [[], [], []]
        content_types: list[int] = []
        segment = 0
        seen = 0
        for token_id, type_id, special in zip(pair.ids, pair.type_ids, pair.special_tokens_mask, strict=True):
            if special:
                segments[segment].append((token_id, type_id))
                continue
            content_types.append(type_id)
            seen += 1
            if seen == len(query.ids) or seen == len(query.ids) + len(document.ids):
                segment += 1
        return _Template(
            prefix=tuple(segments[0]),
            middle=tuple(segments[1]),
            suffix=tuple(segments[2]),
            query_type=content_types[0],
            document_type=content_types[-1],
        )

    @property
    def special_count(self) -> int:
        """Number of special tokens the template adds to a pair."""
        return self._template.special_count

    def query_room(self, max_length: int) -> int:
        """The longest query ``plan`` keeps whole: three quarters of what the template leaves."""
        return query_room(max_length, self.special_count)

    def query_tokens(self, query: str) -> int:
        """Tokens of ``query`` alone, without special tokens."""
        return len(self.tokenize([query])[0])

    def clip(self, texts: Sequence[str], max_tokens: int) -> list[tuple[str, int]]:
        """Each text cut to its first ``max_tokens`` tokens, with the tokens it lost (see ``clip_texts``)."""
        return clip_texts(self._tokenizer, texts, max_tokens)

    def offsets(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """Each text's token character offsets (the same tokens ``tokenize`` gives), for spans and sentences."""
        return token_offsets(self._tokenizer, texts)

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text, without special tokens (no character offsets: they are not needed)."""
        encode = getattr(self._tokenizer, "encode_batch_fast", self._tokenizer.encode_batch)
        encodings = encode([clean_text(text) for text in texts], add_special_tokens=False)
        return [encoding.ids for encoding in encodings]

    def assemble(self, query_ids: list[int], document_ids: list[int]) -> Unit:
        """Input ids and token type ids of one pair, following the tokenizer's template."""
        template = self._template
        ids: list[int] = []
        types: list[int] = []
        for specials, content, content_type in (
            (template.prefix, query_ids, template.query_type),
            (template.middle, document_ids, template.document_type),
        ):
            ids.extend(token for token, _ in specials)
            types.extend(type_id for _, type_id in specials)
            ids.extend(content)
            types.extend([content_type] * len(content))
        ids.extend(token for token, _ in template.suffix)
        types.extend(type_id for _, type_id in template.suffix)
        return ids, types

    def plan(
        self,
        query_ids: list[int],
        document_ids: list[int],
        max_length: int,
        window: bool,
        overlap: int | None,
        boundaries: Sequence[int] | None = None,
    ) -> PairPlan:
        """Fit one pair of token ids into ``max_length`` (see ``fit_pair``)."""
        return fit_pair(
            query_ids, document_ids, self.special_count, self.assemble, max_length, window, overlap, boundaries
        )

    def plans(
        self,
        pairs: Sequence[tuple[str, str]],
        max_length: int,
        window: bool,
        overlap: int | None,
        *,
        sentences: bool = False,
    ) -> list[PairPlan]:
        """The plan of every pair, one at a time (the reference ``plan_chunk`` is tested against)."""
        texts = list(dict.fromkeys(text for pair in pairs for text in pair))
        ids = dict(zip(texts, self.tokenize(texts), strict=True))
        offsets = dict(zip(texts, self.offsets(texts), strict=True)) if sentences else {}
        return [
            self.plan(
                ids[query],
                ids[document],
                max_length,
                window,
                overlap,
                sentence_token_starts(offsets[document], document) if sentences else None,
            )
            for query, document in pairs
        ]

    def plan_chunk(
        self,
        pairs: Sequence[tuple[str, str]],
        max_length: int,
        window: bool,
        overlap: int | None,
        memo: TokenMemo | None = None,
        *,
        sentences: bool = False,
        spans: bool = False,
    ) -> ChunkPlan:
        """Every pair's units as flat arrays, built with numpy: the units ``plan`` builds one by one.

        Each distinct text is tokenised once (once per call, given the call's ``memo``); in truncate
        mode only the first ``max_length`` tokens of a text are kept, since no pair can use more. With
        ``sentences``, windows snap to sentence boundaries; with ``spans``, the plan carries each unit's
        characters in its document. Both read token offsets of the documents that do not fit only.
        """
        texts = list(dict.fromkeys(text for pair in pairs for text in pair))
        position = {text: index for index, text in enumerate(texts)}
        memo = {} if memo is None else memo
        self._tokenize_into(memo, [text for text in texts if text not in memo], None if window else max_length)
        known = [memo[text] for text in texts]
        flat = np.concatenate([tokens for tokens, _ in known]) if known else np.empty(0, dtype=np.int64)
        full = np.fromiter((count for _, count in known), dtype=np.int64, count=len(known))
        kept = np.fromiter((len(tokens) for tokens, _ in known), dtype=np.int64, count=len(known))
        text_starts = np.cumsum(kept) - kept
        queries = np.fromiter((position[query] for query, _ in pairs), dtype=np.int64, count=len(pairs))
        documents = np.fromiter((position[document] for _, document in pairs), dtype=np.int64, count=len(pairs))
        query_kept = np.minimum(full[queries], self.query_room(max_length))
        budget = max_length - self.special_count - query_kept
        document_tokens = full[documents]
        cut = np.flatnonzero(document_tokens > budget)
        cut_texts = list(dict.fromkeys(texts[index] for index in documents[cut]))
        offsets = dict(zip(cut_texts, self.offsets(cut_texts), strict=True)) if sentences or spans else {}
        if window and sentences and len(cut):
            owners, starts, lengths = _sentence_pieces(
                [texts[index] for index in documents], document_tokens, budget, overlap, offsets
            )
            truncated = np.zeros(len(pairs), dtype=np.int64)
        else:
            owners, starts, lengths, truncated = _document_spans(document_tokens, budget, window, overlap)
        char_spans = None
        if spans:
            whole = (starts == 0) & (lengths == document_tokens[owners])
            char_spans = _PieceSpans([texts[index] for index in documents], owners, starts, lengths, whole, offsets)
        units = self._assemble_all(
            flat,
            query_at=text_starts[queries][owners],
            query_lengths=query_kept[owners],
            document_at=text_starts[documents][owners] + starts,
            document_lengths=lengths,
        )
        return ChunkPlan(units, owners, truncated, full[queries], char_spans)

    def _tokenize_into(self, memo: TokenMemo, texts: list[str], cap: int | None) -> None:
        """Tokenise ``texts`` into ``memo``: ids (the first ``cap`` of them) as views of one array, and counts."""
        if not texts:
            return
        token_lists = self.tokenize(texts)
        full = [len(tokens) for tokens in token_lists]
        kept = full if cap is None else [min(count, cap) for count in full]
        flat = np.fromiter(
            chain.from_iterable(tokens if cap is None else tokens[:cap] for tokens in token_lists),
            dtype=np.int64,
            count=sum(kept),
        )
        for text, tokens, count in zip(texts, np.split(flat, np.cumsum(kept)[:-1]), full, strict=True):
            memo[text] = (tokens, count)

    def _assemble_all(
        self,
        flat: np.ndarray,
        query_at: np.ndarray,
        query_lengths: np.ndarray,
        document_at: np.ndarray,
        document_lengths: np.ndarray,
    ) -> Units:
        """Units laid out as the template says, each query and document piece copied from ``flat``."""
        template = self._template
        lengths = template.special_count + query_lengths + document_lengths
        total = int(lengths.sum())
        ids = np.empty(total, dtype=np.int64)
        types = np.empty(total, dtype=np.int64)
        cursor = np.cumsum(lengths) - lengths
        for specials, source, count, content_type in (
            (template.prefix, query_at, query_lengths, template.query_type),
            (template.middle, document_at, document_lengths, template.document_type),
        ):
            for offset, (token, type_id) in enumerate(specials):
                ids[cursor + offset] = token
                types[cursor + offset] = type_id
            cursor = cursor + len(specials)
            target = ragged_ranges(cursor, count)
            ids[target] = flat[ragged_ranges(source, count)]
            types[target] = content_type
            cursor = cursor + count
        for offset, (token, type_id) in enumerate(template.suffix):
            ids[cursor + offset] = token
            types[cursor + offset] = type_id
        return Units(ids, types, lengths)


def _sentence_pieces(
    documents: list[str], tokens: np.ndarray, budget: np.ndarray, overlap: int | None, offsets: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``_document_spans`` for sentence-aware windows: per unit, its pair and its document piece."""
    boundaries: dict[str, list[int]] = {}
    owners: list[int] = []
    pieces: list[tuple[int, int]] = []
    for pair, (text, length, room) in enumerate(zip(documents, tokens.tolist(), budget.tolist(), strict=True)):
        if length <= room:
            found = [(0, length)]
        else:
            if text not in boundaries:
                boundaries[text] = sentence_token_starts(offsets[text], text)
            found = sentence_windows(length, room, window_step(room, overlap), boundaries[text])
        owners.extend([pair] * len(found))
        pieces.extend(found)
    piece_array = np.array(pieces, dtype=np.int64).reshape(-1, 2)
    return np.array(owners, dtype=np.int64), piece_array[:, 0], piece_array[:, 1]


@dataclass(frozen=True)
class _PieceSpans:
    """Units' characters from their token pieces: the whole text when the piece is all of it, else offsets."""

    documents: list[str]
    owners: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    whole: np.ndarray
    offsets: dict[str, Any]

    def of(self, units: np.ndarray) -> list[tuple[int, int]]:
        spans = []
        for unit in units.tolist():
            text = self.documents[int(self.owners[unit])]
            if self.whole[unit]:
                spans.append((0, len(text)))
            else:
                spans.append(char_span(self.offsets[text], int(self.starts[unit]), int(self.lengths[unit]), text))
        return spans


def _document_spans(
    full: np.ndarray, budget: np.ndarray, window: bool, overlap: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per unit: its pair, and the start and length of its document piece; per pair: tokens cut.

    The vector form of ``fit_pair``'s document handling: one piece (cut to ``budget``) per pair, or
    windows of ``budget`` tokens stepping by ``budget - overlap`` over the whole document.
    """
    pairs = np.arange(len(full), dtype=np.int64)
    if not window:
        return pairs, np.zeros(len(full), dtype=np.int64), np.minimum(full, budget), np.maximum(full - budget, 0)
    step = budget - (budget // 2 if overlap is None else np.minimum(overlap, budget - 1))  # window_step, in numpy
    counts = np.where(full > budget, 1 + -(-(full - budget) // step), 1)
    owners = np.repeat(pairs, counts)
    starts = ragged_arange(counts) * step[owners]
    lengths = np.minimum(budget[owners], full[owners] - starts)
    return owners, starts, lengths, np.zeros(len(full), dtype=np.int64)
