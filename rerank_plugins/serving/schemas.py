"""The wire format of ``POST /rerank``: the shape of the common rerank APIs, plus the raw score."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RerankRequest", "RerankResponse", "ResultDocument", "ResultRow", "Usage"]


class RerankRequest(BaseModel):
    """One query and the documents to rank for it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    model: str | None = Field(None, description="The served model's name (checked when given), as other APIs send.")
    query: str = Field(description="The query the documents are ranked for.")
    documents: list[str] = Field(description="Candidate texts; results refer to them by position.")
    top_n: int | None = Field(None, ge=1, description="Return only the best N; None returns all.")
    return_documents: bool = Field(False, description="Echo each document's text in its result.")


class ResultDocument(BaseModel):
    text: str


class ResultRow(BaseModel):
    """One document's place: its input position, 0-1 relevance, and the model's raw score."""

    index: int
    relevance_score: float
    score: float
    truncated_tokens: int = 0
    windows: int = 1
    span: list[int] | None = Field(
        None, description="[start, end]: the characters of the document that earned the score (its evidence)."
    )
    document: ResultDocument | None = None


class Usage(BaseModel):
    pairs: int


class RerankResponse(BaseModel):
    """Results best first; with a calibrated model, P(at least one document is relevant) too."""

    model: str
    results: list[ResultRow]
    usage: Usage
    p_any_relevant: float | None = None
    abstained: bool | None = None
