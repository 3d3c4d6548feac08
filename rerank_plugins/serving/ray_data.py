"""Ray Data: rerank a Dataset of (query, candidates) rows with one ``Reranker`` per worker."""

from __future__ import annotations

from typing import Any

from rerank_plugins._optional import require
from rerank_plugins.options import check_options
from rerank_plugins.reranker import Reranker

__all__ = ["rerank_dataset"]


class _RerankBatches:
    """A Ray Data callable class: built once per worker (loading the model once), then called per batch."""

    def __init__(self, reranker_options: dict[str, Any], query_column: str, documents_column: str, top_n: int | None):
        self.reranker = Reranker(**reranker_options)
        self.query_column = query_column
        self.documents_column = documents_column
        self.top_n = top_n

    def __call__(self, batch: Any) -> Any:
        queries = [str(query) for query in batch[self.query_column]]
        documents = [[str(text) for text in row] for row in batch[self.documents_column]]
        rankings = self.reranker.rank_many(queries, documents, top_n=self.top_n)
        batch = batch.copy()
        batch["ranked_indices"] = [[result.index for result in ranking] for ranking in rankings]
        batch["scores"] = [[result.score for result in ranking] for ranking in rankings]
        batch["relevance_scores"] = [[result.relevance_score for result in ranking] for ranking in rankings]
        return batch


def rerank_dataset(
    dataset: Any,
    reranker_options: dict[str, Any],
    *,
    query_column: str = "query",
    documents_column: str = "documents",
    top_n: int | None = None,
    batch_size: int = 64,
    concurrency: int = 1,
    cpus_per_worker: float = 1.0,
) -> Any:
    """A lazy ``ray.data.Dataset``: each row gains ``ranked_indices``, ``scores`` and ``relevance_scores``
    (best first, at most ``top_n``), computed by ``concurrency`` workers with ``Reranker(**reranker_options)``.
    """
    reranker_options = check_options(reranker_options)  # a misspelt option fails here, not in a worker
    require("ray.data", "ray")
    missing = {query_column, documents_column} - set(dataset.columns())
    if missing:
        raise ValueError(f"the dataset has no column(s) {sorted(missing)}; it has {dataset.columns()}")
    return dataset.map_batches(
        _RerankBatches,
        fn_constructor_kwargs={
            "reranker_options": reranker_options,
            "query_column": query_column,
            "documents_column": documents_column,
            "top_n": top_n,
        },
        batch_size=batch_size,
        batch_format="pandas",
        concurrency=concurrency,
        num_cpus=cpus_per_worker,
    )
