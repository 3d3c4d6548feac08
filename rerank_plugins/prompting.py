"""Causal-LM rerankers' inputs: each pair rendered through the model's chat template, then fitted.

Qwen3-Reranker, mxbai-rerank-v2 and bge-reranker-v2-gemma read a prompt (instruction, query, document,
then the start of an answer) and score the next token. The prompt comes from the model's own chat
template, given the roles sentence-transformers uses: ``system`` (the instruction), ``query`` and
``document``. Each pair is tokenised whole, as sentence-transformers does, and split by character
offsets into template, query and document tokens, so a long document is cut (or windowed) while the
instruction, the query and the template's closing tokens stay whole.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from typing import Any

from tokenizers import Tokenizer

from rerank_plugins.encoding import (
    PairPlan,
    TokenMemo,
    Unit,
    clean_text,
    clip_texts,
    fit_pair,
    plan_chunk,
    query_room,
    token_offsets,
)
from rerank_plugins.units import ChunkPlan
from rerank_plugins.windows import char_span, sentence_token_starts

__all__ = ["PromptEncoder"]

_PROBES = (("\ue000q\ue000", "\ue001d\ue001"), ("a b", "c d e"))
"""Two renders whose contents differ: the template must place both verbatim, once each."""


def _messages(instruction: str | None, query: str, document: str, structured: bool) -> list[dict[str, Any]]:
    def content(text: str) -> Any:
        return [{"type": "text", "text": text}] if structured else text

    system = [] if instruction is None else [{"role": "system", "content": content(instruction)}]
    return [*system, {"role": "query", "content": content(query)}, {"role": "document", "content": content(document)}]


def _template_pieces(hf_tokenizer: Any, instruction: str | None, model: str) -> tuple[str, str, str]:
    """The text before the query, between query and document, and after the document."""
    if not getattr(hf_tokenizer, "chat_template", None):
        raise ValueError(
            f"{model!r} is a causal LM without a chat template: a causal-LM reranker needs one that places the "
            "'query' and 'document' messages (and the 'system' instruction) in its prompt, "
            "as sentence-transformers does"
        )
    failure = ""
    for structured in (False, True):
        try:
            renders = [
                str(hf_tokenizer.apply_chat_template(_messages(instruction, q, d, structured), tokenize=False))
                for q, d in _PROBES
            ]
        except Exception as error:  # a template raises whatever Jinja or its own checks raise
            failure = f"its chat template raised {type(error).__name__}: {error}"
            continue
        (query, document), first = _PROBES[0], renders[0]
        if first.count(query) != 1 or first.count(document) != 1 or first.index(query) > first.index(document):
            failure = "its chat template does not place the query and then the document in the prompt once each"
            continue
        head, rest = first.split(query)
        middle, tail = rest.split(document)
        if renders[1] != head + _PROBES[1][0] + middle + _PROBES[1][1] + tail:
            failure = "its chat template changes the query or document text"
            continue
        if instruction is not None and instruction not in head + middle + tail:
            failure = "its chat template ignores the 'system' message, so instruction= would have no effect"
            continue
        return head, middle, tail
    raise ValueError(f"{model!r} cannot be scored as a causal-LM reranker: {failure}")


class PromptEncoder:
    """Pairs of a causal-LM reranker as prompts, fitted to ``max_length`` without cutting the template.

    Thread-safe in the same way as ``PairEncoder``: a private Rust tokenizer, configured once.
    """

    uses_token_types = False

    def __init__(self, hf_tokenizer: Any, instruction: str | None, model: str) -> None:
        self._tokenizer = Tokenizer.from_str(hf_tokenizer.backend_tokenizer.to_str())
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        pad = hf_tokenizer.pad_token_id if hf_tokenizer.pad_token_id is not None else hf_tokenizer.eos_token_id
        self.pad_id: int = pad if pad is not None else 0
        self.instruction = instruction
        self._head, self._middle, self._tail = _template_pieces(hf_tokenizer, instruction, model)
        empty = self._tokenizer.encode(self._head + self._middle + self._tail, add_special_tokens=False)
        self._special_count = len(empty.ids)

    @property
    def special_count(self) -> int:
        """Tokens of the prompt around an empty query and document (instruction included)."""
        return self._special_count

    def query_room(self, max_length: int) -> int:
        """The longest query kept whole: three quarters of what the prompt leaves."""
        return query_room(max_length, self.special_count)

    def query_tokens(self, query: str) -> int:
        """Tokens of ``query`` alone."""
        return len(self._tokenizer.encode(clean_text(query), add_special_tokens=False).ids)

    def clip(self, texts: Sequence[str], max_tokens: int) -> list[tuple[str, int]]:
        """Each text cut to its first ``max_tokens`` tokens, with the tokens it lost (see ``clip_texts``)."""
        return clip_texts(self._tokenizer, texts, max_tokens)

    def offsets(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """Each text's token character offsets, tokenised alone (to widen passages, not to score)."""
        return token_offsets(self._tokenizer, texts)

    def _plan(
        self,
        query: str,
        document: str,
        encoding: Any,
        max_length: int,
        window: bool,
        overlap: int | None,
        sentences: bool,
    ) -> PairPlan:
        ids: list[int] = encoding.ids
        starts = [start for start, _ in encoding.offsets]
        ends = [end for _, end in encoding.offsets]
        query_start = len(self._head)
        document_start = query_start + len(query) + len(self._middle)
        # Token spans from character spans: a token that straddles a boundary belongs to the content.
        q0 = bisect_right(ends, query_start)
        q1 = max(q0, bisect_left(starts, query_start + len(query))) if query else q0
        d0 = max(q1, bisect_right(ends, document_start))
        d1 = max(d0, bisect_left(starts, document_start + len(document))) if document else d0
        head, middle, tail = ids[:q0], ids[q1:d0], ids[d1:]

        def assemble(query_ids: list[int], document_ids: list[int]) -> Unit:
            unit = [*head, *query_ids, *middle, *document_ids, *tail]
            return unit, [0] * len(unit)

        special = len(head) + len(middle) + len(tail)
        offsets = encoding.offsets
        boundaries = None
        if sentences and window and max_length < len(ids):
            boundaries = sentence_token_starts(offsets[d0:d1], document, document_start)
        plan = fit_pair(ids[q0:q1], ids[d0:d1], special, assemble, max_length, window, overlap, boundaries)
        spans = [
            (0, len(document))
            if (start, count) == (0, d1 - d0)
            else char_span(offsets, d0 + start, count, document, document_start)
            for start, count in plan.pieces
        ]
        return PairPlan(plan.units, plan.truncated_tokens, plan.query_tokens, plan.pieces, spans)

    def plans(
        self,
        pairs: Sequence[tuple[str, str]],
        max_length: int,
        window: bool,
        overlap: int | None,
        *,
        sentences: bool = False,
    ) -> list[PairPlan]:
        """The plan of every pair: its whole prompt tokenised once, the document cut or windowed to fit."""
        cleaned = [(clean_text(query), clean_text(document)) for query, document in pairs]
        prompts = [self._head + query + self._middle + document + self._tail for query, document in cleaned]
        encodings = self._tokenizer.encode_batch(prompts, add_special_tokens=False)
        return [
            self._plan(query, document, encoding, max_length, window, overlap, sentences)
            for (query, document), encoding in zip(cleaned, encodings, strict=True)
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
        """Every pair's units as flat arrays (see ``plans``); whole prompts are tokenised, so ``memo`` is unused.

        Spans come with every plan here (the prompt's offsets are at hand), so ``spans`` asks nothing more.
        """
        return plan_chunk(self.plans(pairs, max_length, window, overlap, sentences=sentences))
