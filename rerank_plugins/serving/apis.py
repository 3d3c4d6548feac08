"""The request and answer shapes of the common rerank APIs, all over one ranking.

Cohere v2 and v1 (the shape Jina and vLLM speak too), Hugging Face TEI, Voyage, and our own. Each
request is parsed into an :class:`Ask`; each answer is rendered from the same ranked results. The
compatible shapes ignore fields they do not know, as those APIs do; ours refuses them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rerank_plugins.results import RankedResult
from rerank_plugins.serving.schemas import RerankRequest, RerankResponse, ResultDocument, ResultRow, Usage

__all__ = ["API_NAMES", "Api", "Ask", "ask_for", "render"]

Api = Literal["rerank-plugins", "cohere-v2", "cohere-v1", "tei", "voyage"]
API_NAMES: dict[Api, str] = {
    "rerank-plugins": "rerank-plugins",
    "cohere-v2": "Cohere v2",
    "cohere-v1": "Cohere v1 / Jina",
    "tei": "Text Embeddings Inference",
    "voyage": "Voyage",
}


class _Compatible(BaseModel):
    """Another API's request: wrong types are refused, unknown fields ignored (as that API does)."""

    model_config = ConfigDict(extra="ignore", strict=True)


JSON_KINDS = {bool: "a boolean", int: "a number", float: "a number", type(None): "null", list: "an array"}
"""How a request's wrong document is named in a 422: by its JSON kind, never by a class of ours."""


class CohereRequest(_Compatible):
    """``POST /v2/rerank`` and ``/v1/rerank`` (Cohere; Jina and vLLM send the same)."""

    model: str | None = None
    query: str
    documents: list[Any]
    top_n: int | None = Field(None, ge=1)
    max_tokens_per_doc: int | None = Field(None, ge=1)
    return_documents: bool | None = None

    @field_validator("documents")
    @classmethod
    def _strings_or_text_objects(cls, documents: list[Any]) -> list[Any]:
        for position, document in enumerate(documents):
            text = document.get("text") if isinstance(document, dict) else document
            if not isinstance(text, str):
                kind = JSON_KINDS.get(type(document), "an object without a text string")
                raise ValueError(f'documents[{position}] is {kind}: each document is a string or {{"text": "..."}}')
        return documents


class TeiRequest(_Compatible):
    """``POST /rerank`` with ``texts`` (Text Embeddings Inference)."""

    query: str
    texts: list[str]
    truncate: bool | None = None
    truncation_direction: Literal["Right", "right"] | None = None
    raw_scores: bool | None = None
    return_text: bool | None = None


class VoyageRequest(_Compatible):
    """``POST /v1/rerank`` with ``top_k`` or ``truncation`` (Voyage)."""

    model: str | None = None
    query: str
    documents: list[str]
    top_k: int | None = Field(None, ge=1)
    truncation: bool | None = None
    return_documents: bool | None = None


@dataclass(frozen=True)
class Ask:
    """One rerank request, whatever its shape: what to rank and how to answer.

    ``truncate=False`` refuses a document the model would cut (TEI's ``truncate``, Voyage's
    ``truncation``); ``max_tokens_per_doc`` cuts each document first (Cohere's).
    """

    api: Api
    query: str
    documents: list[str]
    top_n: int | None = None
    return_documents: bool = False
    model: str | None = None
    max_tokens_per_doc: int | None = None
    truncate: bool = True
    raw_scores: bool = False


def _texts(documents: list[Any]) -> list[str]:
    return [document if isinstance(document, str) else document["text"] for document in documents]


def ask_for(path: str, payload: Any) -> Ask:
    """The :class:`Ask` in a parsed JSON body sent to ``path``, by the shape its fields name.

    ``/rerank`` is TEI when the body has ``texts``, else ours; ``/v1/rerank`` is Voyage when it has
    ``top_k`` or ``truncation``, else Cohere v1 (and Jina). Raises pydantic's ``ValidationError``.
    """
    fields: Mapping[str, Any] = payload if isinstance(payload, dict) else {}
    if path == "/rerank" and "texts" in fields:
        tei = TeiRequest.model_validate(payload)
        return Ask("tei", tei.query, tei.texts, None, bool(tei.return_text), None, None,
                   tei.truncate is not False, bool(tei.raw_scores))  # fmt: skip
    if path == "/rerank":
        ours = RerankRequest.model_validate(payload)
        return Ask("rerank-plugins", ours.query, ours.documents, ours.top_n, ours.return_documents, ours.model)
    if path == "/v1/rerank" and ("top_k" in fields or "truncation" in fields):
        voyage = VoyageRequest.model_validate(payload)
        return Ask("voyage", voyage.query, voyage.documents, voyage.top_k, bool(voyage.return_documents),
                   voyage.model, None, voyage.truncation is not False)  # fmt: skip
    cohere = CohereRequest.model_validate(payload)
    return Ask("cohere-v2" if path == "/v2/rerank" else "cohere-v1", cohere.query, _texts(cohere.documents),
               cohere.top_n, bool(cohere.return_documents), cohere.model, cohere.max_tokens_per_doc)  # fmt: skip


def render(
    ask: Ask,
    ranking: list[RankedResult],
    *,
    model: str,
    request_id: str,
    tokens: int,
    warnings: list[str],
    answer_from: float | None = None,
) -> Any:
    """The answer to ``ask`` in its API's shape, from ``ranking`` (best first, every document).

    With ``answer_from`` (``serve --abstain``: the calibration's rule) a request whose P(any relevant) is below
    it abstains: other APIs get no results (Cohere's ``meta.abstained`` says why); ours keeps every row, so
    ``RemoteReranker`` has each score, and says ``"abstained": true``, which the client applies.

    ``tokens`` is the model tokens the request ran (reported as usage); ``warnings`` go where the API
    has room for them (Cohere's ``meta.warnings``; ours reports ``truncated_tokens`` per result). With a
    calibrated model, P(at least one document is relevant) goes in ours and in Cohere's ``meta``.
    """
    kept = ranking[: ask.top_n] if ask.top_n is not None else ranking
    echo = ask.return_documents
    p_any = getattr(ranking, "p_any_relevant", None)  # from every document, before top_n
    abstained = answer_from is not None and p_any is not None and p_any < answer_from
    if abstained and ask.api != "rerank-plugins":
        kept = []

    def text(result: RankedResult) -> str:
        return ask.documents[result.index]  # the caller's text, not the cut one that was scored

    if ask.api == "tei":
        rows: list[dict[str, Any]] = []
        for result in kept:
            row: dict[str, Any] = {
                "index": result.index,
                "score": result.score if ask.raw_scores else result.relevance_score,
            }
            if echo:
                row["text"] = text(result)
            rows.append(row)
        return rows
    if ask.api == "rerank-plugins":
        return RerankResponse(
            model=model,
            results=[
                ResultRow(
                    index=result.index,
                    relevance_score=result.relevance_score,
                    score=result.score,
                    truncated_tokens=result.truncated_tokens,
                    windows=result.windows,
                    span=None if result.span is None else list(result.span),
                    document=ResultDocument(text=text(result)) if echo else None,
                )
                for result in kept
            ],
            usage=Usage(pairs=len(ask.documents)),
            p_any_relevant=p_any,
            abstained=True if abstained else None,
        ).model_dump(exclude_none=True)
    results = []
    for result in kept:
        row = {"index": result.index, "relevance_score": result.relevance_score}
        if result.span is not None and ask.api != "voyage":  # an extra field: the evidence's characters
            row["span"] = list(result.span)
        if echo:
            row["document"] = {"text": text(result)} if ask.api != "voyage" else text(result)
        results.append(row)
    usage = {"total_tokens": tokens}
    if ask.api == "voyage":
        return {"object": "list", "data": results, "model": model, "usage": usage}
    meta: dict[str, Any] = {"api_version": {"version": ask.api[-1]}, "billed_units": {"search_units": 1}}
    if warnings:
        meta["warnings"] = warnings
    if p_any is not None:
        meta["p_any_relevant"] = p_any
    if abstained:
        meta["abstained"] = True
    return {"id": request_id, "results": results, "meta": meta, "model": model, "usage": usage}
