"""Every reranker family sentence-transformers scores, through our core, with its scores.

Each family is a tiny random-weight model of the real architecture with a tokenizer of its kind
(``tests/model_families.py``), loaded by path. fp32 scores must equal ``CrossEncoder.predict``.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sentence_transformers import CrossEncoder

from rerank_plugins import Reranker
from rerank_plugins.cli import main
from rerank_plugins.prompting import PromptEncoder
from rerank_plugins.runtime.cls_only import ClsOnlyEncoder, supports_cls_only
from tests.model_families import FAMILIES
from tests.test_spans import TRICKY, reference_spans

MAX_LENGTH = 256
"""Short enough that the long documents below are cut, for every family."""

QUERY = "Vitamin B12 deficiency raises homocysteine levels in the blood."
INSTRUCTION = "Given a biomedical claim, retrieve abstracts that support or refute it"


@pytest.fixture(scope="session")
def families(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("families")
    return {name: str(build(root / name)) for name, build in FAMILIES.items()}


@pytest.fixture(scope="session")
def documents(scifact_corpus: dict[str, str]) -> list[str]:
    abstracts = list(scifact_corpus.values())[:14]
    # Empty, short, non-Latin, medium and over-long (cut at MAX_LENGTH) documents, in no length order.
    return ["", "Short.", *abstracts[:6], "cells " * 400, "Über Zellen: 日本語 text.", *abstracts[6:], "T cells."]


def _predict(path: str, pairs: list[tuple[str, str]], **options: object) -> np.ndarray:
    model = CrossEncoder(path, device="cpu", max_length=MAX_LENGTH)
    return np.asarray(model.predict(pairs, batch_size=5, show_progress_bar=False, **options))


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["torch", "openvino"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_fp32_scores_equal_cross_encoder_predict(
    families: dict[str, str], documents: list[str], family: str, runtime: str
) -> None:
    path = families[family]
    expected = _predict(path, [(QUERY, document) for document in documents])
    reranker = Reranker(path, device="cpu", precision="fp32", runtime=runtime, max_length=MAX_LENGTH, batch_size=4)  # type: ignore[arg-type]

    results = reranker.rank(QUERY, documents)
    scores = [result.score for result in sorted(results, key=lambda result: result.index)]

    np.testing.assert_allclose(scores, expected, atol=1e-4 if runtime == "torch" else 1e-3, rtol=0)
    assert np.std(expected) > 1e-3  # the random weights do tell these documents apart
    long_document = next(result for result in results if result.index == documents.index("cells " * 400))
    assert long_document.truncated_tokens > 0  # cut to MAX_LENGTH, and said so


@pytest.mark.slow
@pytest.mark.parametrize("family", list(FAMILIES))
def test_unpadded_scores_equal_cross_encoder_predict(
    families: dict[str, str], documents: list[str], family: str
) -> None:
    """Packed batches (XLM-R and ELECTRA: RoBERTa positions, token types, an embedding projection) give
    predict's scores; families without a packed pass run padded and do too."""
    path = families[family]
    expected = _predict(path, [(QUERY, document) for document in documents])
    reranker = Reranker(path, device="cpu", precision="fp32", runtime="torch", max_length=MAX_LENGTH, unpadded=True)

    scores = [r.score for r in sorted(reranker.rank(QUERY, documents), key=lambda result: result.index)]

    np.testing.assert_allclose(scores, expected, atol=1e-4, rtol=0)
    packed = reranker._model()[0].packed_forward is not None
    assert packed == (family in ("xlm-roberta", "electra"))
    assert (reranker.stats.padding_waste == 0.0) == packed


LOW_PRECISION = [
    *[(family, runtime, "bf16") for family in FAMILIES for runtime in ("torch", "openvino")],
    ("xlm-roberta", "openvino", "int8"),
]
"""int8 is checked on one family: its weight compression (the same NNCF call for all) is slow in CI."""


@pytest.mark.slow
@pytest.mark.parametrize(("family", "runtime", "precision"), LOW_PRECISION)
def test_low_precision_stays_close_to_fp32(
    families: dict[str, str], documents: list[str], family: str, runtime: str, precision: str
) -> None:
    """Random weights put several documents within bf16's resolution of each other, so the ranking
    check allows two changes in the top 10; fidelity on trained weights is measured by ``bench``."""
    path = families[family]
    reference = Reranker(path, device="cpu", precision="fp32", runtime="torch", max_length=MAX_LENGTH)
    fast = Reranker(path, device="cpu", precision=precision, runtime=runtime, max_length=MAX_LENGTH)  # type: ignore[arg-type]
    expected, actual = np.asarray(reference.score(QUERY, documents)), np.asarray(fast.score(QUERY, documents))

    assert np.isfinite(actual).all()
    assert np.corrcoef(expected, actual)[0, 1] >= 0.9  # low precision may shift all scores a little
    assert len(set(np.argsort(-expected)[:10]) & set(np.argsort(-actual)[:10])) >= 8


def _encoder_inputs(path: str) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    network = AutoModelForSequenceClassification.from_pretrained(path).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    inputs = tokenizer(
        [QUERY, "which protein binds dicer"], ["B12 lowers homocysteine.", "Dicer binds TRBP " * 20], padding=True,
        return_tensors="pt",
    )  # fmt: skip
    return network, dict(inputs)


@pytest.mark.parametrize("family", ["bert", "xlm-roberta", "electra"])
def test_cls_only_last_layer_equals_the_full_forward_pass(
    families: dict[str, str], random_model: str, family: str
) -> None:
    network, inputs = _encoder_inputs(random_model if family == "bert" else families[family])
    assert supports_cls_only(network)
    with torch.inference_mode():
        expected = network(**inputs).logits
        actual = ClsOnlyEncoder(network)(inputs["input_ids"], inputs["attention_mask"], inputs.get("token_type_ids"))
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", ["deberta-v2", "modernbert"])
def test_cls_only_is_not_used_where_it_would_not_be_exact(families: dict[str, str], family: str) -> None:
    network, _ = _encoder_inputs(families[family])
    assert not supports_cls_only(network)  # relative positions, or a mean-pooled / non-BERT head


@pytest.fixture(scope="session")
def qwen3(families: dict[str, str]) -> str:
    return families["qwen3"]


@pytest.mark.slow
def test_instruction_is_the_system_prompt_sentence_transformers_sends(qwen3: str, documents: list[str]) -> None:
    pairs = [(QUERY, document) for document in documents]
    expected = _predict(qwen3, pairs, prompt=INSTRUCTION)
    instructed = Reranker(qwen3, precision="fp32", runtime="torch", max_length=MAX_LENGTH, instruction=INSTRUCTION)
    default = Reranker(qwen3, precision="fp32", runtime="torch", max_length=MAX_LENGTH)

    np.testing.assert_allclose(instructed.score(QUERY, documents), expected, atol=1e-4, rtol=0)
    assert np.abs(np.asarray(default.score(QUERY, documents)) - expected).max() > 1e-3  # it does change the prompt


@pytest.fixture(scope="session")
def prompts(qwen3: str) -> PromptEncoder:
    from transformers import AutoTokenizer

    return PromptEncoder(AutoTokenizer.from_pretrained(qwen3), INSTRUCTION, qwen3)


def test_a_cut_or_windowed_prompt_keeps_the_instruction_query_and_closing_tokens(
    prompts: PromptEncoder, qwen3: str
) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(qwen3)
    whole = tokenizer.apply_chat_template(
        [
            {"role": "system", "content": INSTRUCTION},
            {"role": "query", "content": QUERY},
            {"role": "document", "content": "cells " * 300},
        ],
        tokenize=False,
    )
    ids = tokenizer(whole, add_special_tokens=False)["input_ids"]
    closing = tokenizer(whole.split("cells " * 300)[1], add_special_tokens=False)  # <|im_end|> ... </think>

    (cut,) = prompts.plans([(QUERY, "cells " * 300)], MAX_LENGTH, window=False, overlap=None)
    windows = prompts.plans([(QUERY, "cells " * 300)], MAX_LENGTH, window=True, overlap=None)[0]

    assert len(cut.units) == 1 and len(cut.units[0][0]) == MAX_LENGTH
    assert cut.truncated_tokens == len(ids) - MAX_LENGTH
    for unit, _ in [*cut.units, *windows.units]:
        assert len(unit) <= MAX_LENGTH
        text = tokenizer.decode(unit)
        assert INSTRUCTION in text and QUERY in text and "<Document>: cells cells" in text
        assert unit[-len(closing["input_ids"]) :] == closing["input_ids"]
    assert len(windows.units) > 1 and windows.truncated_tokens == 0


def test_causal_windows_score_the_whole_document(qwen3: str) -> None:
    reranker = Reranker(qwen3, precision="fp32", runtime="torch", max_length=MAX_LENGTH, long_documents="window")
    (result,) = reranker.rank(QUERY, ["cells " * 300])
    assert result.windows > 1 and result.truncated_tokens == 0


@pytest.mark.slow
@pytest.mark.parametrize("long_documents", ["truncate", "window"])
def test_spans_are_exact_for_every_family(
    families: dict[str, str], documents: list[str], prompts: PromptEncoder, long_documents: str
) -> None:
    """Encoder families: each span equals one from transformers' own offsets. The causal-LM prompt: each
    window's passage is verbatim in the prompt the model reads (byte-level BPE decodes losslessly)."""
    from transformers import AutoTokenizer

    texts = [*documents[:9], *TRICKY]  # empty, short, six abstracts, an over-long one; multi-byte, emoji, repeats
    window = long_documents == "window"
    for family, path in families.items():
        tokenizer = AutoTokenizer.from_pretrained(path)
        core = Reranker(path, precision="fp32", runtime="torch", max_length=MAX_LENGTH, long_documents=long_documents)
        ranking = core.rank(QUERY, texts)
        assert any(r.span != (0, len(r.document)) for r in ranking), family  # some documents were cut
        if family == "qwen3":
            plans = PromptEncoder(AutoTokenizer.from_pretrained(path), None, path).plans(
                [(QUERY, text) for text in texts], MAX_LENGTH, window, None
            )
            for result in ranking:
                plan = plans[result.index]
                assert plan.spans is not None and result.span in plan.spans
                for (unit, _), (start, end) in zip(plan.units, plan.spans, strict=True):
                    assert result.document[start + 1 : end - 1] in tokenizer.decode(unit)
            continue
        for result in ranking:
            expected = reference_spans(tokenizer, QUERY, result.document, window, MAX_LENGTH)
            assert result.span in expected, (family, result.index)


def test_refusals_name_the_problem(tmp_path: Path, families: dict[str, str], trained_model: str) -> None:
    from transformers import T5Config, T5ForConditionalGeneration

    t5 = T5Config(d_model=16, num_layers=1, num_heads=2, d_kv=8, d_ff=32, architectures=["T5ForConditionalGeneration"])
    T5ForConditionalGeneration(t5).save_pretrained(tmp_path / "t5")  # config and weights: refused for what it is
    with pytest.raises(ValueError, match="encoder-decoder model"):
        Reranker(str(tmp_path / "t5")).load()

    with pytest.raises(ValueError, match="instruction= is for causal-LM rerankers"):
        Reranker(trained_model, instruction="Judge claims").load()
    with pytest.raises(ValueError, match="instruction must be None or a non-empty string"):
        Reranker(trained_model, instruction="  ")

    bare = tmp_path / "no-template"
    bare.mkdir()
    for source in Path(families["qwen3"]).iterdir():
        if source.name in ("tokenizer_config.json",):
            config = json.loads(source.read_text(encoding="utf-8"))
            config.pop("chat_template", None)
            (bare / source.name).write_text(json.dumps(config), encoding="utf-8")
        elif source.name != "chat_template.jinja":
            (bare / source.name).write_bytes(source.read_bytes())
    with pytest.raises(ValueError, match="causal LM without a chat template"):
        Reranker(str(bare), runtime="torch").load()


@pytest.fixture(scope="module")
def causal_core(qwen3: str) -> Reranker:
    return Reranker(qwen3, precision="fp32", runtime="torch", max_length=MAX_LENGTH, instruction=INSTRUCTION)


@pytest.mark.slow
def test_both_adapters_and_the_service_rank_a_causal_reranker_as_the_core(
    causal_core: Reranker, qwen3: str, documents: list[str]
) -> None:
    from langchain_core.documents import Document
    from llama_index.core.schema import NodeWithScore, TextNode

    from rerank_plugins.langchain import RerankCompressor
    from rerank_plugins.llama_index import RerankPostprocessor
    from rerank_plugins.remote import RemoteReranker
    from rerank_plugins.serving import create_app
    from rerank_plugins.serving.background import serve_in_background

    expected = causal_core.rank(QUERY, documents)
    options = {"model": qwen3, "precision": "fp32", "runtime": "torch", "max_length": MAX_LENGTH}
    chain = RerankCompressor(**options, instruction=INSTRUCTION, top_n=None).compress_documents(
        [Document(page_content=text, id=str(i)) for i, text in enumerate(documents)], QUERY
    )
    llama = RerankPostprocessor(**options, instruction=INSTRUCTION, top_n=None).postprocess_nodes(
        [NodeWithScore(node=TextNode(text=text, id_=str(i))) for i, text in enumerate(documents)], query_str=QUERY
    )
    with serve_in_background(create_app(causal_core)) as url:
        remote = RemoteReranker(url).rank(QUERY, documents)

    order = [str(result.index) for result in expected]
    assert [document.id for document in chain] == order
    assert [node.node.node_id for node in llama] == order
    assert [str(result.index) for result in remote] == order
    np.testing.assert_allclose([r.score for r in remote], [r.score for r in expected], atol=1e-5, rtol=0)


def test_rank_command_takes_an_instruction(
    causal_core: Reranker, qwen3: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    documents = ["B12 lowers homocysteine.", "Statins lower LDL cholesterol.", "T cells."]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(documents) + "\n"))
    arguments = ["rank", "--model", qwen3, "--query", QUERY, "--precision", "fp32", "--runtime", "torch"]
    assert main([*arguments, "--max-length", str(MAX_LENGTH), "--instruction", INSTRUCTION]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["index"] for row in rows] == [result.index for result in causal_core.rank(QUERY, documents)]


README_FAMILIES = {
    "BERT": "bert",
    "XLM-RoBERTa": "xlm-roberta",
    "ELECTRA": "electra",
    "DeBERTa-v2/v3": "deberta-v2",
    "ModernBERT": "modernbert",
    "causal LM (Qwen3, Qwen2, Gemma)": "qwen3",
}


def test_readme_family_table_states_what_the_code_does(families: dict[str, str], random_model: str) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Choosing a model", 1)[1].split("**How this is verified.**", 1)[0]
    rows = {
        cells[0]: cells[3]
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("| family")
        for cells in [[cell.strip() for cell in line.strip("|").split("|")]]
    }
    assert {README_FAMILIES[name] for name in rows} == {"bert", *FAMILIES}
    for name, fast_paths in rows.items():
        family = README_FAMILIES[name]
        if family == "qwen3":
            assert "[CLS]-only" not in fast_paths and "output projection" in fast_paths
            continue
        network, _ = _encoder_inputs(random_model if family == "bert" else families[family])
        assert ("[CLS]-only" in fast_paths) == supports_cls_only(network), name
        assert "OpenVINO" in fast_paths
