"""Training groups: each judged positive with hard negatives from the bi-encoder and a few random ones."""

from __future__ import annotations

import random
from dataclasses import dataclass

from rerank_plugins.evaluation.beir import BeirData
from rerank_plugins.retrieval import FaissRetriever

__all__ = ["Group", "mine_hard_negatives", "sample_groups"]


@dataclass(frozen=True)
class Group:
    """One query with its documents, the positive first: the listwise loss asks for it to win."""

    query: str
    documents: tuple[str, ...]


def mine_hard_negatives(retriever: FaissRetriever, data: BeirData, depth: int) -> dict[str, list[str]]:
    """Per query, the ids of the bi-encoder's top ``depth`` documents that are not judged positive."""
    query_ids = list(data.queries)
    hits = retriever.search_many([data.queries[q] for q in query_ids], k=depth)
    unknown = {hit.id for row in hits for hit in row if hit.id not in data.corpus}
    if unknown:
        raise ValueError(
            f"the retriever returned {len(unknown)} document ids that are not in the training corpus "
            f"(e.g. {sorted(unknown)[:3]}): its index was built over other documents"
        )
    return {
        q: [hit.id for hit in row if data.qrels[q].get(hit.id, 0) <= 0] for q, row in zip(query_ids, hits, strict=True)
    }


def sample_groups(
    data: BeirData,
    hard: dict[str, list[str]],
    hard_negatives: int,
    random_negatives: int,
    rng: random.Random,
) -> list[Group]:
    """One group per (query, positive), freshly sampled and shuffled: call once per epoch.

    Where a query has fewer hard negatives than asked, random ones fill the group, so every group has
    ``1 + hard_negatives + random_negatives`` documents.
    """
    corpus_ids = list(data.corpus)
    size = 1 + hard_negatives + random_negatives
    groups = []
    for query_id, judged in data.qrels.items():
        positives = [doc_id for doc_id, score in judged.items() if score > 0]
        if len(corpus_ids) - len(positives) < size - 1:
            raise ValueError(
                f"the corpus has {len(corpus_ids)} documents; query {query_id!r} has {len(positives)} positives "
                f"and needs {size - 1} other documents per group: lower hard_negatives/random_negatives"
            )
        pool = hard.get(query_id, [])
        for positive in positives:
            negatives = rng.sample(pool, min(hard_negatives, len(pool)))
            taken = set(positives) | set(negatives)
            while len(negatives) < size - 1:
                candidate = rng.choice(corpus_ids)
                if candidate not in taken:
                    taken.add(candidate)
                    negatives.append(candidate)
            texts = (data.corpus[positive], *(data.corpus[doc_id] for doc_id in negatives))
            groups.append(Group(data.queries[query_id], texts))
    rng.shuffle(groups)
    return groups
