"""Checking a request before it costs anything: parse, size limits, token budgets, clear 4xx answers.

Every refusal is a :class:`Refused` with a status and a short message; no message echoes more than a
few dozen characters of what the caller sent, and none names a server path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from rerank_plugins.reranker import TokenCost
from rerank_plugins.serving.limits import ServiceLimits
from rerank_plugins.serving.schemas import RerankRequest

__all__ = ["Refused", "check_cost", "check_sizes", "parse_request", "validation_detail"]

ECHO_CHARS = 60
"""At most this many characters of an offending input are echoed back in a 422 (never a whole body)."""


class Refused(Exception):
    """A request the service will not run: ``status`` (4xx/503), a message, and extra headers."""

    def __init__(self, status: int, detail: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


def _echo(value: Any) -> str:
    """``repr(value)``, cut to ``ECHO_CHARS`` characters."""
    text = repr(value)
    return text if len(text) <= ECHO_CHARS else f"{text[:ECHO_CHARS]}... ({len(text)} characters)"


def validation_detail(errors: Sequence[Mapping[str, Any]], loc: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Pydantic's or FastAPI's errors as FastAPI shapes them (type, loc, msg), ``loc`` put in front, any
    echoed input cut short and no ``ctx`` (it may hold what JSON cannot carry)."""
    detail = []
    for item in errors:
        row: dict[str, Any] = {"type": item["type"], "loc": [*loc, *item["loc"]], "msg": item["msg"]}
        if "input" in item and item["type"] != "json_invalid":
            row["input"] = _echo(item["input"])
        detail.append(row)
    return detail


def parse_request(body: bytes) -> RerankRequest:
    """The request in ``body``; anything malformed (bad JSON, NaN, lone surrogates, wrong types) is a 422."""
    if not body:
        raise Refused(422, [{"type": "missing", "loc": ["body"], "msg": "the request has no JSON body"}])
    try:
        return RerankRequest.model_validate_json(body)
    except ValidationError as error:
        errors = error.errors(include_url=False, include_context=False)
        raise Refused(422, validation_detail(errors, ("body",))) from None


def _utf8_size(text: str, name: str) -> int:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError as error:
        raise Refused(422, f"{name} is not valid Unicode ({error.reason} at character {error.start})") from None


def check_sizes(request: RerankRequest, limits: ServiceLimits) -> None:
    """413 for a request over the count and byte limits; checked before anything is tokenised."""
    if len(request.documents) > limits.max_documents:
        raise Refused(413, f"{len(request.documents)} documents exceed the limit of {limits.max_documents} per request")
    size = _utf8_size(request.query, "query")
    if size > limits.max_query_bytes:
        raise Refused(413, f"the query is {size} bytes; the limit is {limits.max_query_bytes} bytes")
    for position, document in enumerate(request.documents):
        size = _utf8_size(document, f"documents[{position}]")
        if size > limits.max_document_bytes:
            raise Refused(413, f"documents[{position}] is {size} bytes; the limit is {limits.max_document_bytes} bytes")


def check_cost(cost: TokenCost, limits: ServiceLimits, query_token_limit: int) -> None:
    """413 for a query over its token limit or a request over its model-token budget."""
    if cost.query_tokens > query_token_limit:
        raise Refused(413, f"the query is {cost.query_tokens} tokens; the limit is {query_token_limit} tokens")
    total = sum(cost.pair_tokens)
    if total > limits.max_request_tokens:
        raise Refused(
            413,
            f"the request would run {total} model tokens; the limit is {limits.max_request_tokens} per request "
            "(send fewer or shorter documents)",
        )
