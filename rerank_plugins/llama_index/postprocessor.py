"""``RerankPostprocessor``: a LlamaIndex ``BaseNodePostprocessor`` over the shared scoring core."""

from __future__ import annotations

import difflib
from typing import Any

from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.callbacks import CBEventType, EventPayload
from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import BaseNode, MetadataMode, NodeWithScore, QueryBundle, TextNode

from rerank_plugins.backend import RerankBackend
from rerank_plugins.llama_index.events import RerankVerdictEvent
from rerank_plugins.metadata_keys import (
    FUSED_SCORE_KEY,
    P_ANY_RELEVANT_KEY,
    RELEVANCE_SCORE_KEY,
    RERANK_SCORE_KEY,
    RETRIEVAL_SCORE_KEY,
    SPAN_KEY,
    TEXT_LENGTH_KEY,
    TRUNCATED_TOKENS_KEY,
    WINDOWS_KEY,
)
from rerank_plugins.metadata_text import DEFAULT_TEXT_TEMPLATE, ScoredText, format_metadata, scored_text, text_span
from rerank_plugins.options import MetadataMode as MetadataModeName
from rerank_plugins.results import RankedResult, Ranking
from rerank_plugins.settings import RerankSettings

__all__ = [
    "FUSED_SCORE_KEY",
    "P_ANY_RELEVANT_KEY",
    "RELEVANCE_SCORE_KEY",
    "RERANK_SCORE_KEY",
    "RETRIEVAL_SCORE_KEY",
    "SPAN_KEY",
    "TEXT_LENGTH_KEY",
    "TRUNCATED_TOKENS_KEY",
    "WINDOWS_KEY",
    "RerankPostprocessor",
]

dispatcher = get_dispatcher(__name__)


_EXCLUDED = {"embed": "excluded_embed_metadata_keys", "llm": "excluded_llm_metadata_keys"}
"""The node field naming the keys each ``metadata_mode`` leaves out (``"all"`` leaves none out)."""


def _check_nodes(nodes: Any) -> None:
    """A clear error for anything that is not a list of ``NodeWithScore``."""
    if not isinstance(nodes, (list, tuple)):
        raise TypeError(f"nodes must be a list of NodeWithScore, got {type(nodes).__name__}")
    for position, node in enumerate(nodes):
        if not isinstance(node, NodeWithScore):
            raise TypeError(f"nodes[{position}] must be a NodeWithScore, got {type(node).__name__}")


def _scored_text(node: BaseNode, mode: MetadataModeName) -> ScoredText:
    """What the model reads for ``node`` under ``mode``: its text alone (``"none"``), or LlamaIndex's own
    formatting for that ``MetadataMode`` with the node's templates, less the reranker's keys."""
    content = node.text if isinstance(node, TextNode) else node.get_content(metadata_mode=MetadataMode.NONE)
    if mode == "none":
        return ScoredText(content, 0)
    excluded = getattr(node, _EXCLUDED[mode]) if mode in _EXCLUDED else ()
    metadata = format_metadata(node.metadata, excluded, node.metadata_template, node.metadata_separator)
    return scored_text(content, metadata, getattr(node, "text_template", DEFAULT_TEXT_TEMPLATE))


def _node_score(result: RankedResult) -> float:
    """The score the order follows: the fused score with fusion on, else the 0-1 relevance."""
    return result.relevance_score if result.fused_score is None else result.fused_score


def _with_metadata(node: Any, added: dict[str, Any]) -> Any:
    """A copy of ``node`` with ``added`` metadata hidden from the LLM and embedder text (``node`` if none)."""
    if not added:
        return node
    hidden = [key for key in added if key not in node.excluded_llm_metadata_keys]
    hidden_embed = [key for key in added if key not in node.excluded_embed_metadata_keys]
    return node.model_copy(
        update={
            "metadata": {**node.metadata, **added},
            "excluded_llm_metadata_keys": [*node.excluded_llm_metadata_keys, *hidden],
            "excluded_embed_metadata_keys": [*node.excluded_embed_metadata_keys, *hidden_embed],
        }
    )


def _passage_node(node: Any, offset: int | None, span: tuple[int, int]) -> tuple[Any, dict[str, Any]]:
    """A copy of ``node`` whose text is the passage ``span`` of the text it was ranked by (which holds the node
    text at ``offset``), with the metadata that places it in the whole text; ``node`` itself when it has no text."""
    if not isinstance(node, TextNode):
        return node, {}
    text = node.text
    start, end = text_span(span, offset, len(text))
    update: dict[str, Any] = {"text": text[start:end]}
    if node.start_char_idx is not None:  # the passage's place in the source document
        update["start_char_idx"] = node.start_char_idx + start
        update["end_char_idx"] = node.start_char_idx + end
    return node.model_copy(update=update), {SPAN_KEY: [start, end], TEXT_LENGTH_KEY: len(text)}


def _refuse_unknown(cls: type[BaseNodePostprocessor], data: dict[str, Any]) -> None:
    """A mistyped option (``model_name=``) must not leave the default model in its place, silently."""
    known = set(cls.model_fields) | {"class_name"}  # from_dict passes the class name back
    for name in sorted(set(data) - known):
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else f"; options: {', '.join(sorted(cls.model_fields))}"
        raise TypeError(f"{cls.__name__} got an unknown option {name!r}{hint}")


class RerankPostprocessor(RerankSettings, BaseNodePostprocessor):
    """Reranks retrieved nodes with a cross-encoder; node scores become 0-1 relevance scores.

    Returns new ``NodeWithScore`` objects, best first; the caller's nodes are never changed. The model reads
    what ``metadata_mode`` says (the node text alone by default). Every call sends a ``RerankVerdictEvent``
    (P(any relevant), whether the core abstained) to the dispatcher, also when no node is kept.

    Example:
        >>> engine = index.as_query_engine(similarity_top_k=20, node_postprocessors=[
        ...     RerankPostprocessor(model="cross-encoder/ms-marco-MiniLM-L6-v2", top_n=3)])  # doctest: +SKIP
    """

    keep_retrieval_score: bool = Field(
        default=False, description="Keep each node's retrieval score in metadata (hidden from the LLM and embedder)."
    )
    _reranker: RerankBackend = PrivateAttr()

    def __init__(self, reranker: RerankBackend | None = None, **data: Any) -> None:
        _refuse_unknown(type(self), data)
        super().__init__(**data)
        self._reranker = self.resolve_reranker(reranker)

    @classmethod
    def class_name(cls) -> str:
        return "RerankPostprocessor"

    @property
    def core(self) -> RerankBackend:
        """The scoring core in use."""
        return self._reranker

    def _start(self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None) -> tuple[str, list[ScoredText]]:
        """The query and what the model reads of each node (``metadata_mode``), after the start event."""
        _check_nodes(nodes)
        scored = [_scored_text(node.node, self.metadata_mode) for node in nodes]
        dispatcher.event(
            ReRankStartEvent(query=query_bundle, nodes=nodes, top_n=self.top_n or len(nodes), model_name=self.model)
        )
        if query_bundle is None:
            raise ValueError("RerankPostprocessor needs a query: pass query_bundle or query_str")
        return query_bundle.query_str, scored

    def _rank_arguments(self, nodes: list[NodeWithScore]) -> dict[str, Any]:
        return self.rank_arguments(self.top_n, (node.score for node in nodes), "each node's retrieval score", "nodes")

    def _payload(self, nodes: list[NodeWithScore], query: str) -> dict[str, Any]:
        return {
            EventPayload.NODES: nodes,
            EventPayload.MODEL_NAME: self.model,
            EventPayload.QUERY_STR: query,
            EventPayload.TOP_K: self.top_n,
        }

    def _reranked(
        self, nodes: list[NodeWithScore], scored: list[ScoredText], ranking: list[RankedResult]
    ) -> list[NodeWithScore]:
        """New nodes, best first. With fusion the node score is the fused score the order follows, and the
        relevance is kept in metadata; the added keys are hidden from the LLM and embedder. With
        ``compress="passage"`` each node's text is its evidence passage (same id, the rest a copy)."""
        p_any = ranking.p_any_relevant if isinstance(ranking, Ranking) else None
        passages = self.passages(ranking)
        reranked = []
        for position, result in enumerate(ranking):
            original = nodes[result.index]
            node = original.node
            added: dict[str, Any] = {
                RERANK_SCORE_KEY: result.score,
                TRUNCATED_TOKENS_KEY: result.truncated_tokens,
                WINDOWS_KEY: result.windows,
            }
            if passages is not None:
                node, placed = _passage_node(node, scored[result.index].offset, passages[position])
                added.update(placed)
            if self.keep_retrieval_score:
                added[RETRIEVAL_SCORE_KEY] = original.score
            if result.fused_score is not None:
                added[RELEVANCE_SCORE_KEY] = result.relevance_score
                added[FUSED_SCORE_KEY] = result.fused_score
            if p_any is not None:
                added[P_ANY_RELEVANT_KEY] = p_any
            reranked.append(NodeWithScore(node=_with_metadata(node, added), score=_node_score(result)))
        return reranked

    def _end(self, candidates: int, ranking: list[RankedResult], reranked: list[NodeWithScore]) -> None:
        """The verdict event (sent even when no node is kept, so "nothing relevant" reaches handlers), then
        LlamaIndex's own end event."""
        dispatcher.event(RerankVerdictEvent.of(ranking, candidates, self.model))
        dispatcher.event(ReRankEndEvent(nodes=reranked))

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        query, scored = self._start(nodes, query_bundle)
        with self.callback_manager.event(CBEventType.RERANKING, payload=self._payload(nodes, query)) as event:
            ranking = self._reranker.rank(query, [s.text for s in scored], **self._rank_arguments(nodes))
            reranked = self._reranked(nodes, scored, ranking)
            event.on_end(payload={EventPayload.NODES: reranked})
        self._end(len(nodes), ranking, reranked)
        return reranked

    async def _apostprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        query, scored = self._start(nodes, query_bundle)
        with self.callback_manager.event(CBEventType.RERANKING, payload=self._payload(nodes, query)) as event:
            ranking = await self._reranker.arank(query, [s.text for s in scored], **self._rank_arguments(nodes))
            reranked = self._reranked(nodes, scored, ranking)
            event.on_end(payload={EventPayload.NODES: reranked})
        self._end(len(nodes), ranking, reranked)
        return reranked
