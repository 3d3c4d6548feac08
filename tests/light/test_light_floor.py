"""Everything the light install promises, on exported artefacts, with no torch in the process."""

from __future__ import annotations

import io
import json
import math
import os
import sys
from pathlib import Path

import pytest

from rerank_plugins import Reranker
from rerank_plugins.calibration import CALIBRATION_FILE, Calibration


@pytest.mark.parametrize("name", ["onnx-fp32", "onnx-int8", "openvino-fp32", "openvino-int8"])
def test_an_artefact_ranks_the_relevant_abstract_first(
    artefacts: Path, name: str, scifact_claim: tuple[str, list[str], int]
) -> None:
    claim, documents, relevant = scifact_claim
    reranker = Reranker(str(artefacts / name), calibration=None)
    ranking = reranker.rank(claim, documents)
    assert ranking[0].index == relevant
    assert reranker.device == "cpu" and reranker.runtime == name.split("-")[0] and reranker.precision == name[-4:]
    assert all(math.isfinite(result.score) and 0 <= result.relevance_score <= 1 for result in ranking)


def test_windows_find_the_passage_and_spans_point_at_it(
    onnx_fp32: str, scifact_claim: tuple[str, list[str], int]
) -> None:
    claim, documents, relevant = scifact_claim
    filler = " ".join(documents[index] for index in range(len(documents)) if index != relevant)
    long_document = filler[:3000] + " " + documents[relevant] + " " + filler[3000:6000]
    truncated = Reranker(onnx_fp32, calibration=None).rank(claim, [long_document])[0]
    windowed = Reranker(onnx_fp32, long_documents="window", calibration=None).rank(claim, [long_document])[0]
    assert truncated.truncated_tokens > 0 and windowed.windows > 1
    assert windowed.score > truncated.score
    assert windowed.span is not None
    start, end = windowed.span
    assert documents[relevant][:200] in long_document[start - 200 : end + 200] or start >= 2900


def test_sentence_windows_score_without_torch(onnx_fp32: str, scifact_claim: tuple[str, list[str], int]) -> None:
    claim, documents, relevant = scifact_claim
    reranker = Reranker(onnx_fp32, long_documents="window", window_boundaries="sentence", calibration=None)
    assert reranker.rank(claim, documents)[0].index == relevant


def test_calibration_threshold_and_cache(
    onnx_fp32: str, scifact_claim: tuple[str, list[str], int], tmp_path: Path
) -> None:
    claim, documents, relevant = scifact_claim
    plain = Reranker(onnx_fp32, calibration=None, cache_size=64)
    calibration = Calibration("platt", {"slope": 1.0, "intercept": -2.0}, plain.score_configuration())
    path = calibration.save(tmp_path / CALIBRATION_FILE)
    calibrated = Reranker(onnx_fp32, calibration=str(path))
    best = calibrated.rank(claim, documents)[0]
    assert best.index == relevant
    assert best.relevance_score == pytest.approx(1 / (1 + math.exp(-(best.score - 2.0))), abs=1e-5)
    kept = calibrated.rank(claim, documents, score_threshold=best.relevance_score - 1e-6)
    assert [result.index for result in kept] == [relevant]
    plain.rank(claim, documents)
    plain.rank(claim, documents)
    assert plain.stats.pairs == len(documents)  # the second call was served from the score cache


def test_langchain_compressor_on_an_artefact(onnx_fp32: str, scifact_claim: tuple[str, list[str], int]) -> None:
    from langchain_core.documents import Document

    from rerank_plugins.langchain import RerankCompressor

    claim, documents, relevant = scifact_claim
    given = [Document(page_content=text, metadata={"position": index}) for index, text in enumerate(documents)]
    kept = RerankCompressor(model=onnx_fp32, top_n=2, calibration=None).compress_documents(given, claim)
    assert kept[0].metadata["position"] == relevant and len(kept) == 2
    assert [document.metadata for document in given] == [{"position": index} for index in range(len(documents))]


def test_llama_index_postprocessor_on_an_artefact(onnx_fp32: str, scifact_claim: tuple[str, list[str], int]) -> None:
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from rerank_plugins.llama_index import RerankPostprocessor

    claim, documents, relevant = scifact_claim
    nodes = [NodeWithScore(node=TextNode(text=text, id_=str(index)), score=0.0) for index, text in enumerate(documents)]
    kept = RerankPostprocessor(model=onnx_fp32, top_n=2, calibration=None).postprocess_nodes(
        nodes, query_bundle=QueryBundle(claim)
    )
    assert kept[0].node.node_id == str(relevant) and len(kept) == 2


def test_rank_command_on_an_artefact(
    onnx_fp32: str,
    scifact_claim: tuple[str, list[str], int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from rerank_plugins.cli import main

    claim, documents, relevant = scifact_claim
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(json.dumps(text) for text in documents) + "\n"))
    assert main(["rank", "--query", claim, "--model", onnx_fp32, "--calibration", "none"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[0]["index"] == relevant and len(rows) == len(documents)


def test_serve_answers_a_rerank_request_from_an_artefact(
    onnx_fp32: str, scifact_claim: tuple[str, list[str], int]
) -> None:
    import httpx

    from rerank_plugins.serving.app import create_app
    from rerank_plugins.serving.background import serve_in_background

    claim, documents, relevant = scifact_claim
    with serve_in_background(create_app(Reranker(onnx_fp32, calibration=None))) as url:
        answer = httpx.post(f"{url}/rerank", json={"query": claim, "documents": documents, "top_n": 3}, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.json()["results"][0]["index"] == relevant


def test_a_pytorch_checkpoint_is_refused_in_one_line_naming_the_extra() -> None:
    shared = Path(os.environ.get("RERANK_PLUGINS_SHARED", Path(__file__).resolve().parents[3] / "shared"))
    with pytest.raises(ImportError) as refused:
        Reranker(str(shared / "models" / "minilm-l6-scifact-ce"))
    message = str(refused.value)
    assert (
        "\n" not in message and 'pip install "rerank-plugins[torch]"' in message and "rerank-plugins export" in message
    )


def test_a_hub_layout_onnx_graph_loads(
    onnx_fp32: str, tmp_path: Path, scifact_claim: tuple[str, list[str], int]
) -> None:
    """sentence-transformers keeps a model's ONNX graph at onnx/model.onnx beside config.json and the tokenizer."""
    import shutil

    model = tmp_path / "hub-model"
    (model / "onnx").mkdir(parents=True)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(Path(onnx_fp32) / name, model / name)
    shutil.copy(Path(onnx_fp32) / "model.onnx", model / "onnx" / "model.onnx")
    config = json.loads((model / "config.json").read_text())
    config["sentence_transformers"] = {"activation_fn": "torch.nn.modules.linear.Identity"}
    (model / "config.json").write_text(json.dumps(config))
    claim, documents, relevant = scifact_claim
    reranker = Reranker(str(model), calibration=None)
    ranking = reranker.rank(claim, documents)
    expected = Reranker(onnx_fp32, calibration=None).rank(claim, documents)
    assert reranker.runtime == "onnx" and ranking[0].index == relevant
    assert [r.score for r in ranking] == pytest.approx([r.score for r in expected], abs=1e-5)
