"""Pydantic options shared by the framework adapters, from which each builds its ``Reranker``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from rerank_plugins.reranker import DEFAULT_MODEL, Reranker

__all__ = ["RerankSettings"]

CORE_OPTIONS = ("model", "device", "precision", "batch_size", "max_length", "long_documents")


class RerankSettings(BaseModel):
    """What to rerank with and how many documents to keep; plain data, so adapters serialise."""

    model: str = Field(DEFAULT_MODEL, description="Hugging Face id or local directory of the cross-encoder.")
    top_n: int | None = Field(3, ge=1, description="Documents to keep after reranking; None keeps all.")
    score_threshold: float | None = Field(
        None, ge=0.0, le=1.0, description="Drop documents whose 0-1 relevance_score is lower, before the top_n cut."
    )
    device: str | None = Field(None, description="'cpu', 'cuda', 'cuda:1' or 'mps'; None picks the best available.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="Numeric precision of the model; scores are always returned in fp32."
    )
    batch_size: int = Field(32, ge=1, description="Pairs per forward pass.")
    max_length: int | None = Field(None, ge=1, description="Token limit per pair; None uses the model's own.")
    long_documents: Literal["truncate", "window"] = Field(
        "truncate", description="'truncate' cuts long documents; 'window' scores all of them in windows."
    )

    def explicit_core_options(self) -> list[str]:
        """Core options the caller set explicitly (they conflict with a ready ``Reranker``)."""
        return [name for name in CORE_OPTIONS if name in self.model_fields_set]

    def build_reranker(self) -> Reranker:
        """A ``Reranker`` from these options (the model itself loads lazily and is shared per process)."""
        options: dict[str, Any] = {name: getattr(self, name) for name in CORE_OPTIONS if name != "model"}
        return Reranker(self.model, **options)
