"""``FaissRetriever``: index texts with a bi-encoder, search them by inner product, save and load."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rerank_plugins._optional import require
from rerank_plugins.retrieval.embedder import Embedder
from rerank_plugins.validation import check_count, check_documents, check_query

__all__ = ["FaissRetriever", "SearchHit"]

logger = logging.getLogger(__name__)

IndexKind = Literal["flat", "hnsw"]
FORMAT_VERSION = 1


@dataclass(frozen=True)
class SearchHit:
    """One retrieved document: its id, text, metadata, cosine similarity and 1-based rank."""

    id: str
    text: str
    score: float
    rank: int
    metadata: dict[str, Any] = field(default_factory=dict)


def _faiss() -> Any:
    return require("faiss", "faiss")


class FaissRetriever:
    """Dense retrieval with a sentence-transformers bi-encoder and a FAISS inner-product index.

    Embeddings are normalised, so scores are cosine similarities. ``index="flat"`` searches exactly;
    ``index="hnsw"`` is an approximate graph index for large corpora (``hnsw_m`` links per node,
    ``ef_search`` candidates per query: higher is slower and closer to exact). ``precision`` and
    ``runtime`` choose how the bi-encoder runs, as the cross-encoder's do (``Embedder``).

    Example:
        >>> retriever = FaissRetriever.from_texts(["Statins lower LDL.", "Malaria is spread by mosquitoes."])
        >>> retriever.search("cholesterol drugs", k=1)[0].text  # doctest: +SKIP
        'Statins lower LDL.'
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        index: IndexKind = "flat",
        device: str | None = None,
        batch_size: int = 64,
        hnsw_m: int = 32,
        ef_search: int = 128,
        show_progress_bar: bool | None = None,
        precision: str = "auto",
        runtime: str = "auto",
    ) -> None:
        if index not in ("flat", "hnsw"):
            raise ValueError(f"index must be 'flat' (exact) or 'hnsw' (approximate), got {index!r}")
        _faiss()  # a missing faiss-cpu is named now, not after the texts are embedded
        self.embedder = Embedder(model, device=device, batch_size=batch_size, precision=precision, runtime=runtime)
        self.index_kind: IndexKind = index
        self.hnsw_m = hnsw_m
        self.ef_search = ef_search
        self.show_progress_bar = show_progress_bar
        self._index: Any = None
        self._ids: list[str] = []
        self._texts: list[str] = []
        self._metadata: list[dict[str, Any]] = []
        self._positions: dict[str, int] = {}

    @classmethod
    def from_texts(
        cls,
        texts: Sequence[str],
        ids: Sequence[str] | None = None,
        metadatas: Sequence[dict[str, Any]] | None = None,
        **options: Any,
    ) -> FaissRetriever:
        """Build a retriever and index ``texts`` (``options`` go to the constructor)."""
        retriever = cls(**options)
        retriever.add(texts, ids=ids, metadatas=metadatas)
        return retriever

    @property
    def model_name(self) -> str:
        return self.embedder.model_name

    def __len__(self) -> int:
        return len(self._ids)

    def _new_index(self, dimension: int) -> Any:
        faiss = _faiss()
        if self.index_kind == "hnsw":
            index = faiss.IndexHNSWFlat(dimension, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efSearch = self.ef_search
            return index
        return faiss.IndexFlatIP(dimension)

    def add(
        self,
        texts: Sequence[str],
        ids: Sequence[str] | None = None,
        metadatas: Sequence[dict[str, Any]] | None = None,
        embeddings: np.ndarray | None = None,
    ) -> list[str]:
        """Embed and index more documents; returns their ids (generated as ``doc-N`` when not given).

        ``embeddings`` (one unit-length row per text, from this retriever's ``embedder``) skips embedding.
        """
        new_texts = check_documents(texts, "texts")
        new_ids = [f"doc-{len(self._ids) + i}" for i in range(len(new_texts))] if ids is None else list(ids)
        new_metadata = [{} for _ in new_texts] if metadatas is None else [dict(m) for m in metadatas]
        if len(new_ids) != len(new_texts) or len(new_metadata) != len(new_texts):
            raise ValueError(f"got {len(new_texts)} texts, {len(new_ids)} ids and {len(new_metadata)} metadatas")
        for position, doc_id in enumerate(new_ids):
            if not isinstance(doc_id, str):
                raise TypeError(f"ids[{position}] must be a str, got {type(doc_id).__name__}")
        repeated = {doc_id for doc_id, count in Counter(new_ids).items() if count > 1}  # linear: 1M ids in a second
        duplicates = sorted({doc_id for doc_id in new_ids if doc_id in self._positions} | repeated)
        if duplicates:
            raise ValueError(f"document ids must be unique; already present or repeated: {duplicates[:5]}")
        if not new_texts:
            return []
        if embeddings is None:
            vectors = self.embedder.embed(new_texts, self.show_progress_bar)
        else:
            vectors = np.ascontiguousarray(embeddings, dtype=np.float32)
            if vectors.ndim != 2 or vectors.shape[0] != len(new_texts):
                raise ValueError(f"embeddings must have one row per text: got shape {vectors.shape}")
            if self._index is not None and vectors.shape[1] != self._index.d:
                raise ValueError(f"embeddings have {vectors.shape[1]} dimensions, the index {self._index.d}")
        if self._index is None:
            self._index = self._new_index(vectors.shape[1])
        self._index.add(vectors)
        for doc_id, text, metadata in zip(new_ids, new_texts, new_metadata, strict=True):
            self._positions[doc_id] = len(self._ids)
            self._ids.append(doc_id)
            self._texts.append(text)
            self._metadata.append(metadata)
        return new_ids

    def search(self, query: str, k: int = 10) -> list[SearchHit]:
        """The ``k`` documents most similar to ``query``, best first."""
        return self.search_many([check_query(query)], k)[0]

    def search_many(self, queries: Sequence[str], k: int = 10) -> list[list[SearchHit]]:
        """``search`` for many queries in one batched embedding and index pass."""
        query_list = check_documents(queries, "queries")
        check_count(k, "k", 1, error=ValueError)
        if not query_list:
            return []
        if self._index is None or not self._ids:
            return [[] for _ in query_list]
        vectors = self.embedder.embed(query_list, show_progress_bar=False)
        scores, positions = self._index.search(vectors, min(k, len(self._ids)))
        return [
            [
                SearchHit(self._ids[p], self._texts[p], float(s), rank, dict(self._metadata[p]))
                for rank, (s, p) in enumerate(((s, p) for s, p in zip(row_s, row_p, strict=True) if p >= 0), 1)
            ]
            for row_s, row_p in zip(scores, positions, strict=True)
        ]

    # -- persistence -------------------------------------------------------------------------------

    def save(self, directory: str | Path) -> Path:
        """Write the index, the documents and the model's fingerprint to ``directory``."""
        if self._index is None:
            raise ValueError("nothing to save: add documents first")
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        _faiss().write_index(self._index, str(path / "index.faiss"))
        with open(path / "documents.jsonl", "w", encoding="utf-8") as out:
            for doc_id, text, metadata in zip(self._ids, self._texts, self._metadata, strict=True):
                out.write(json.dumps({"id": doc_id, "text": text, "metadata": metadata}, ensure_ascii=False) + "\n")
        config = {
            "format_version": FORMAT_VERSION,
            "model": self.model_name,
            "index": self.index_kind,
            "dimension": int(self._index.d),
            "hnsw_m": self.hnsw_m,
            "ef_search": self.ef_search,
            "fingerprint": self.embedder.fingerprint(),
        }
        (path / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        return path

    @classmethod
    def load(cls, directory: str | Path, model: str | None = None, **options: Any) -> FaissRetriever:
        """Load a saved retriever; refuses when ``model`` (default: the saved one) embeds differently."""
        path = Path(directory)
        config_file = path / "config.json"
        if not config_file.is_file():
            raise FileNotFoundError(f"{str(path)!r} holds no saved FaissRetriever (config.json is missing)")
        config = json.loads(config_file.read_text(encoding="utf-8"))
        retriever = cls(
            model or config["model"],
            index=config["index"],
            hnsw_m=config["hnsw_m"],
            ef_search=config["ef_search"],
            **options,
        )
        fingerprint = np.asarray(retriever.embedder.fingerprint())
        saved = np.asarray(config["fingerprint"])
        if fingerprint.shape != saved.shape or float(fingerprint @ saved) < 0.999:
            raise ValueError(
                f"the index in {str(path)!r} was built with the embedding model {config['model']!r} "
                f"({config['dimension']} dimensions); {retriever.model_name!r} embeds differently "
                f"({fingerprint.shape[0]} dimensions). Load it with the model that built it, or rebuild the index."
            )
        retriever._index = _faiss().read_index(str(path / "index.faiss"))
        if retriever.index_kind == "hnsw":
            retriever._index.hnsw.efSearch = retriever.ef_search
        with open(path / "documents.jsonl", encoding="utf-8") as lines:
            for row in map(json.loads, lines):
                retriever._positions[row["id"]] = len(retriever._ids)
                retriever._ids.append(row["id"])
                retriever._texts.append(row["text"])
                retriever._metadata.append(row["metadata"])
        if len(retriever._ids) != retriever._index.ntotal:
            raise ValueError(
                f"{str(path)!r} is inconsistent: {retriever._index.ntotal} vectors, {len(retriever._ids)} documents"
            )
        return retriever
