"""Checking a request before it costs anything: parse, size limits, token budgets, clear 4xx answers.

Every refusal is a :class:`Refused` with a status and a short message; no message echoes more than a
few dozen characters of what the caller sent, and none names a server path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, NoReturn

from pydantic import ValidationError

from rerank_plugins.encoding import clean_text
from rerank_plugins.reranker import TokenCost
from rerank_plugins.serving.apis import Ask, ask_for
from rerank_plugins.serving.limits import ServiceLimits

__all__ = ["Refused", "check_cost", "check_query", "check_sizes", "check_whole", "parse_request", "validation_detail"]

ECHO_CHARS = 60
"""At most this many characters of an offending input are echoed back in a 422 (never a whole body)."""
ERROR_ROWS = 5
"""At most this many error rows in a 422; one more row says how many were left out."""
MAX_FIELDS = 64
"""A request object with more fields than this is refused before its fields are validated."""


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


def validation_detail(
    errors: Sequence[Mapping[str, Any]], loc: tuple[str, ...] = (), count: int | None = None
) -> list[dict[str, Any]]:
    """Pydantic's or FastAPI's errors as FastAPI shapes them (type, loc, msg), ``loc`` put in front, any
    echoed input cut short and no ``ctx`` (it may hold what JSON cannot carry): the first ``ERROR_ROWS``,
    then one row counting the rest of ``count`` errors (default: ``len(errors)``)."""
    detail = []
    for item in errors[:ERROR_ROWS]:
        row: dict[str, Any] = {"type": item["type"], "loc": [*loc, *item["loc"]], "msg": item["msg"]}
        if "input" in item and item["type"] != "json_invalid":
            row["input"] = _echo(item["input"])
        detail.append(row)
    left = (len(errors) if count is None else count) - len(detail)
    if left > 0:
        detail.append({"type": "too_many_errors", "loc": list(loc), "msg": f"and {left} more errors like these"})
    return detail


def _not_json(message: str) -> Refused:
    return Refused(422, [{"type": "json_invalid", "loc": ["body"], "msg": f"Invalid JSON: {message}"}])


def _no_constants(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _check_shape(payload: Any, max_documents: int) -> None:
    """413 for a document list over ``max_documents`` and 422 for an object with absurdly many fields,
    before validation, so no request can make the service build (and send) an error row per item."""
    if not isinstance(payload, dict):
        return
    if len(payload) > MAX_FIELDS:
        raise Refused(422, f"the request has {len(payload)} fields; a rerank request has at most {MAX_FIELDS}")
    for name in ("documents", "texts"):
        items = payload.get(name)
        if isinstance(items, list) and len(items) > max_documents:
            raise Refused(413, f"{len(items)} documents exceed the limit of {max_documents} per request")


def parse_request(path: str, body: bytes, max_documents: int) -> Ask:
    """The request in ``body`` sent to ``path``, in whichever API's shape it is (see ``apis.ask_for``).

    A lone surrogate in the query or a document is replaced by ``?`` (as the library does). Anything
    malformed (bad JSON or UTF-8, NaN, deep nesting, wrong types, missing fields) is a 422
    naming the field (the first few, and how many more); more than ``max_documents`` is a 413.
    """
    if not body:
        raise Refused(422, [{"type": "missing", "loc": ["body"], "msg": "the request has no JSON body"}])
    try:
        payload = json.loads(body, parse_constant=_no_constants)
    except json.JSONDecodeError as error:
        raise _not_json(f"{error.msg} at line {error.lineno} column {error.colno}") from None
    except UnicodeDecodeError:
        raise _not_json("the body is not UTF-8") from None
    except ValueError as error:
        raise _not_json(str(error)) from None
    except RecursionError:
        raise _not_json("nested too deeply") from None
    _check_shape(payload, max_documents)
    try:
        ask = ask_for(path, payload)
    except ValidationError as error:
        errors = error.errors(include_url=False, include_context=False)
        raise Refused(422, validation_detail(errors, ("body",), error.error_count())) from None
    # a lone surrogate (valid JSON, not Unicode) becomes "?", as the library and the client treat it
    return replace(ask, query=clean_text(ask.query), documents=[clean_text(text) for text in ask.documents])


def check_sizes(request: Ask, limits: ServiceLimits) -> None:
    """413 for a request over the byte limits, 422 for an empty query; checked before anything is tokenised
    (the document count was checked while parsing, before validation)."""
    if not request.query.strip():
        raise Refused(422, "the query is empty: there is nothing to rank against")
    size = len(request.query.encode("utf-8"))
    if size > limits.max_query_bytes:
        raise Refused(413, f"the query is {size} bytes; the limit is {limits.max_query_bytes} bytes")
    for position, document in enumerate(request.documents):
        size = len(document.encode("utf-8"))
        if size > limits.max_document_bytes:
            raise Refused(413, f"documents[{position}] is {size} bytes; the limit is {limits.max_document_bytes} bytes")


def check_query(tokens: int, limit: int) -> None:
    """413 for a query over its token limit (checked before any document is tokenised)."""
    if tokens > limit:
        raise Refused(413, f"the query is {tokens} tokens; the limit is {limit} tokens")


def check_cost(cost: TokenCost, limits: ServiceLimits) -> None:
    """413 for a request over its model-token budget."""
    total = sum(cost.pair_tokens)
    if total > limits.max_request_tokens:
        raise Refused(
            413,
            f"the request would run {total} model tokens; the limit is {limits.max_request_tokens} per request "
            "(send fewer or shorter documents)",
        )


def check_whole(cost: TokenCost, max_length: int) -> None:
    """413 for a document the model would cut, when the caller asked not to truncate (TEI, Voyage)."""
    for position, lost in enumerate(cost.truncated_tokens):
        if lost:
            raise Refused(
                413,
                f"documents[{position}] is {lost} tokens over what fits a {max_length}-token pair; "
                "send a shorter document, or allow truncation",
            )
