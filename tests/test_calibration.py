"""Calibrated relevance through the real core, the command line, both adapters and the service."""

from __future__ import annotations

import io
import json
import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from rerank_plugins import Reranker
from rerank_plugins.calibrating import calibrate, split_queries
from rerank_plugins.calibrating.job import fit_and_report
from rerank_plugins.calibration import Calibration
from rerank_plugins.cli import main

DOCUMENTS = [
    "Folate and vitamin B12 lowered plasma homocysteine in a randomised trial.",
    "The Eiffel Tower was completed in 1889.",
    "Homocysteine is an amino acid linked to vascular disease.",
]
QUERY = "Vitamin B12 deficiency raises homocysteine levels in the blood."


def _platt(core: Reranker, slope: float = 0.5, intercept: float = -1.0) -> Calibration:
    """A Platt calibration with a query-level map on the best margin and a rule answering from P(any) 0.5."""
    return Calibration("platt", {"slope": slope, "intercept": intercept}, core.score_configuration(), {},
                       {"slope": slope, "intercept": intercept}, {"answer_from": 0.5})  # fmt: skip


@pytest.fixture(scope="module")
def random_core(random_model: str) -> Reranker:
    return Reranker(random_model, precision="fp32", runtime="torch", calibration=None)


@pytest.fixture(scope="module")
def calibration_file(random_core: Reranker, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _platt(random_core).save(tmp_path_factory.mktemp("calibration") / "platt.json")


def test_relevance_becomes_the_calibrated_probability_and_the_raw_score_stays(
    random_core: Reranker, random_model: str, calibration_file: Path
) -> None:
    calibrated = Reranker(random_model, precision="fp32", runtime="torch", calibration=calibration_file)
    raw = {r.index: r for r in random_core.rank(QUERY, DOCUMENTS)}
    ranking = calibrated.rank(QUERY, DOCUMENTS)
    assert [r.index for r in ranking] == sorted(raw, key=lambda i: -raw[i].score)  # same order
    for result in ranking:
        assert result.score == pytest.approx(raw[result.index].score, abs=1e-6)
        expected = 1 / (1 + np.exp(-(0.5 * raw[result.index].score - 1.0)))
        assert result.relevance_score == pytest.approx(expected, abs=1e-6)
        assert result.relevance_score != pytest.approx(raw[result.index].relevance_score, abs=1e-3)
    best = max(r.score for r in ranking)  # the query-level map reads the best raw margin
    assert ranking.p_any_relevant == pytest.approx(1 / (1 + np.exp(-(0.5 * best - 1.0))), abs=1e-6)
    assert random_core.rank(QUERY, DOCUMENTS).p_any_relevant is None
    assert calibrated.calibration is not None and calibrated.options()["calibration"] == str(calibration_file)
    assert Reranker(**calibrated.options()).rank(QUERY, DOCUMENTS) == ranking


def test_score_threshold_applies_to_the_calibrated_relevance(random_model: str, calibration_file: Path) -> None:
    calibrated = Reranker(random_model, precision="fp32", runtime="torch", calibration=calibration_file)
    everything = calibrated.rank(QUERY, DOCUMENTS)
    middle = sorted(r.relevance_score for r in everything)[1]
    kept = calibrated.rank(QUERY, DOCUMENTS, score_threshold=middle)
    assert [r.index for r in kept] == [r.index for r in everything if r.relevance_score >= middle]
    nothing = calibrated.rank(QUERY, DOCUMENTS, score_threshold=1.0)
    assert nothing == [] and nothing.p_any_relevant == everything.p_any_relevant  # "nothing relevant", and how sure


def test_a_calibration_for_another_configuration_is_refused_by_name(
    random_model: str, random_core: Reranker, tmp_path: Path
) -> None:
    path = _platt(random_core).save(tmp_path / "c.json")
    other = Reranker(random_model, precision="fp32", runtime="torch", max_length=128, calibration=path)
    with pytest.raises(ValueError, match=r"max_length: calibrated with 512, this Reranker has 128"):
        other.rank(QUERY, DOCUMENTS)
    windowed = Reranker(random_model, precision="fp32", runtime="torch", long_documents="window", calibration=path)
    with pytest.raises(ValueError, match="long_documents"):
        windowed.load()
    foreign = json.loads(path.read_text())
    foreign["belongs_to"]["weights_digest"] = "0" * 64
    (tmp_path / "foreign.json").write_text(json.dumps(foreign))
    with pytest.raises(ValueError, match="weights_digest"):
        Reranker(random_model, precision="fp32", runtime="torch", calibration=tmp_path / "foreign.json").load()
    with pytest.raises(FileNotFoundError, match="No calibration file"):
        Reranker(random_model, calibration=tmp_path / "missing.json")  # at construction, before any load
    with pytest.raises(TypeError, match="calibration must be a file path"):
        Reranker(random_model, calibration=3)  # type: ignore[arg-type]


def test_the_model_directory_calibration_is_used_by_default_and_said_so(
    random_model: str, random_core: Reranker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    copy = Path(shutil.copytree(random_model, tmp_path / "model"))
    first = Reranker(str(copy), precision="fp32", runtime="torch", calibration=None)
    _platt(first, slope=2.0).save(copy)  # rerank-calibration.json beside the weights
    with caplog.at_level(logging.INFO, logger="rerank_plugins"):
        auto = Reranker(str(copy), precision="fp32", runtime="torch")
        assert auto.calibration is not None and auto.calibration.parameters["slope"] == 2.0
    assert "using the calibration found in the model directory" in caplog.text
    assert auto.rank(QUERY, DOCUMENTS).p_any_relevant is not None
    off = Reranker(str(copy), precision="fp32", runtime="torch", calibration=None)
    assert off.calibration is None and off.rank(QUERY, DOCUMENTS).p_any_relevant is None
    mismatched = Reranker(str(copy), precision="fp32", runtime="torch", max_length=64)
    with pytest.raises(ValueError, match="max_length: calibrated with"):  # refused, not a silent change of scale
        mismatched.load()
    plain = Reranker(str(copy), precision="fp32", runtime="torch", max_length=64, calibration=None)
    assert plain.rank(QUERY, DOCUMENTS)


@pytest.mark.slow
def test_calibrate_fits_on_some_queries_and_reports_on_the_others(random_core: Reranker, scifact_beir: Path) -> None:
    run = calibrate(random_core, scifact_beir, run=scifact_beir / "run.trec", top_k=8, heldout=0.5, seed=3,
                    max_queries=12)  # fmt: skip
    fitted, held = set(run.fit.queries), set(run.heldout.queries)
    assert len(fitted) == len(held) == 12 and not fitted & held
    assert len(run.fit) + len(run.heldout) == 24 * 8
    report = run.calibration.report
    assert report["heldout"]["queries"] == 12 and report["settings"]["candidates"] == "run file"
    assert [row["threshold"] for row in report["thresholds"]] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    # random weights: sigmoid(margin) says nothing, Platt at least learns the base rate (about 1 in 8)
    assert report["calibrated"]["ece"] < report["uncalibrated"]["ece"]
    assert report["calibrated"]["brier"] < report["uncalibrated"]["brier"]
    assert run.calibration.belongs_to == random_core.score_configuration()


@pytest.mark.slow
def test_p_any_gets_a_query_level_map_when_some_queries_have_no_relevant_candidate(
    random_core: Reranker, random_model: str, scifact_beir: Path, tmp_path: Path
) -> None:
    # top 2 of the run: the first stage missed the judged abstracts of some claims, which are then unanswerable
    run = calibrate(random_core, scifact_beir, run=scifact_beir / "run.trec", top_k=2, heldout=0.5, seed=1)
    fitted = run.calibration
    assert 0 < len(set(run.fit.queries[run.fit.labels == 1])) < 20  # some fitted queries lost their relevant ones
    assert fitted.any_parameters is not None and fitted.answer_from is not None
    assert {"fitted", "errors", "rule", "by_level"} <= set(fitted.report["p_any_relevant"])
    core = Reranker(random_model, precision="fp32", runtime="torch", calibration=fitted.save(tmp_path / "c.json"))
    ranking = core.rank(QUERY, DOCUMENTS)
    assert ranking.p_any_relevant == pytest.approx(fitted.p_any([r.score for r in ranking]))
    assert ranking.p_any_relevant != pytest.approx(1 - np.prod([1 - r.relevance_score for r in ranking]), abs=1e-4)
    strict = Reranker(random_model, precision="fp32", runtime="torch", calibration=tmp_path / "c.json", abstain=True)
    assert strict.answer_from() == fitted.answer_from
    for question in (QUERY, "Who won the 1966 football world cup?"):
        answer = strict.rank(question, DOCUMENTS)
        assert answer.abstained == (answer.p_any_relevant < fitted.answer_from)  # type: ignore[operator]
        assert answer.abstained == (answer == [])


@pytest.mark.slow
def test_the_real_model_calibrated_on_held_out_scifact_claims_for_any_split(
    trained_model: str, scifact_beir: Path
) -> None:
    """What holds for every seeded split of 40 claims (scored once, fitted ten times): the fitted map is
    increasing, separates, and its probabilities have skill. Whether it also beats the sigmoid's ECE on 20
    claims depends on the split (this model's sigmoid is close on easy candidates), so that is measured on
    300 held-out claims instead (benchmarks/calibration_scifact.py, in the README)."""
    core = Reranker(trained_model, precision="fp32", calibration=None)
    scored = calibrate(core, scifact_beir, run=scifact_beir / "run.trec", top_k=8, heldout=0.5, seed=0)
    rows = scored.fit.concat(scored.heldout)
    for seed in range(10):
        fit, held = split_queries(sorted(set(rows.queries.tolist())), 0.5, seed)
        calibration = fit_and_report(rows.subset(fit), rows.subset(held), "platt", scored.calibration.belongs_to,
                                     {"seed": seed}).calibration  # fmt: skip
        report, heldout = calibration.report, rows.subset(held)
        probabilities = calibration.apply(heldout.margins)
        assert calibration.parameters["slope"] > 0, seed  # higher raw score, higher probability
        assert report["calibrated"]["roc_auc"] > 0.9 and report["calibrated"]["brier_skill"] > 0.45, seed
        assert report["calibrated"]["ece"] < 0.08, seed
        assert probabilities[heldout.labels == 1].mean() > 5 * probabilities[heldout.labels == 0].mean(), seed


@pytest.mark.slow
def test_calibrate_command_writes_the_file_report_and_diagram_then_rank_uses_it(
    random_model: str, scifact_beir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    out = tmp_path / "cal" / "scifact.json"
    model = ["--model", random_model, "--precision", "fp32", "--runtime", "torch"]
    arguments = ["calibrate", "--data", str(scifact_beir), "--out", str(out), "--top-k", "8", "--heldout", "0.5",
                 "--max-queries", "12"]  # fmt: skip
    assert main([*arguments, "--index-dir", str(tmp_path / "index"), *model]) == 0  # FAISS first stage
    printed = capsys.readouterr().out
    assert "ECE" in printed and "queries with none" in printed and "0.9" in printed
    calibration = Calibration.load(out)
    assert calibration.report["settings"]["candidates"] == "faiss"
    assert (out.parent / "report.json").is_file() and (out.parent / "reliability.png").stat().st_size > 10_000
    assert (tmp_path / "index" / "config.json").is_file()

    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(DOCUMENTS) + "\n"))
    assert main(["rank", "--query", QUERY, "--calibration", str(out), *model]) == 0
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert len(rows) == 3 and len({row["p_any_relevant"] for row in rows}) == 1
    assert f"P(at least one document is relevant) = {rows[0]['p_any_relevant']:.3f}" in captured.err

    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(DOCUMENTS) + "\n"))
    mismatch = ["rank", "--query", QUERY, "--calibration", str(out), "--max-length", "64", *model]
    assert main(mismatch) == 2
    assert "max_length" in capsys.readouterr().err
    assert main([*arguments, "--calibration", str(out), *model]) == 2  # calibrate fits, it does not take one


def test_both_adapters_carry_p_any_and_round_trip_the_option(random_model: str, calibration_file: Path) -> None:
    from langchain_core.documents import Document
    from llama_index.core.schema import NodeWithScore, TextNode

    from rerank_plugins.langchain import P_ANY_RELEVANT_KEY as LANGCHAIN_KEY
    from rerank_plugins.langchain import RerankCompressor
    from rerank_plugins.llama_index import P_ANY_RELEVANT_KEY as LLAMA_KEY
    from rerank_plugins.llama_index import RerankPostprocessor

    assert LANGCHAIN_KEY == LLAMA_KEY == "rerank_p_any_relevant"  # one key for one thing in both adapters

    options = {"model": random_model, "precision": "fp32", "runtime": "torch", "calibration": str(calibration_file)}
    expected = Reranker(**options).rank(QUERY, DOCUMENTS)  # type: ignore[arg-type]
    documents = [Document(page_content=text, id=str(i)) for i, text in enumerate(DOCUMENTS)]
    compressed = RerankCompressor(**options, top_n=2).compress_documents(documents, QUERY)
    assert [d.metadata["relevance_score"] for d in compressed] == [r.relevance_score for r in expected[:2]]
    assert {d.metadata[LANGCHAIN_KEY] for d in compressed} == {expected.p_any_relevant}
    assert all(not d.metadata for d in documents)  # the caller's documents are untouched
    assert RerankCompressor(**options, score_threshold=1.0).compress_documents(documents, QUERY) == []

    postprocessor = RerankPostprocessor(**options, top_n=2)
    nodes = [NodeWithScore(node=TextNode(text=text, id_=str(i)), score=0.5) for i, text in enumerate(DOCUMENTS)]
    reranked = postprocessor.postprocess_nodes(nodes, query_str=QUERY)
    assert [n.score for n in reranked] == [r.relevance_score for r in expected[:2]]
    assert {n.node.metadata[LLAMA_KEY] for n in reranked} == {expected.p_any_relevant}
    assert [n.node.metadata["rerank_score"] for n in reranked] == [r.score for r in expected[:2]]  # the raw score
    assert LLAMA_KEY in reranked[0].node.excluded_llm_metadata_keys and not nodes[0].node.metadata
    restored = RerankPostprocessor.from_dict(postprocessor.to_dict())
    assert restored.calibration == str(calibration_file) and restored.core.options()["calibration"] == str(
        calibration_file
    )
    shared = RerankCompressor(reranker=Reranker(**options))  # type: ignore[arg-type]
    assert shared.calibration == str(calibration_file)  # the settings mirror the core in use


def test_the_service_reports_p_any_in_its_shape_in_cohere_meta_and_to_the_remote_client(
    random_model: str, calibration_file: Path
) -> None:
    import cohere
    import httpx
    from langchain_core.documents import Document

    from rerank_plugins.langchain import RerankCompressor
    from rerank_plugins.remote import RemoteReranker
    from rerank_plugins.serving import create_app
    from rerank_plugins.serving.background import serve_in_background

    core = Reranker(random_model, precision="fp32", runtime="torch", calibration=calibration_file)
    expected = core.rank(QUERY, DOCUMENTS)
    with serve_in_background(create_app(core)) as url:
        ours = httpx.post(f"{url}/rerank", json={"query": QUERY, "documents": DOCUMENTS, "top_n": 1}).json()
        answer = cohere.ClientV2(base_url=url, api_key="unused").rerank(
            model=ours["model"], query=QUERY, documents=DOCUMENTS, top_n=1
        )
        info = httpx.get(f"{url}/info").json()
        remote = RemoteReranker(url).rank(QUERY, DOCUMENTS, score_threshold=1.0)
        split = RemoteReranker(url, max_documents_per_request=2).rank(QUERY, DOCUMENTS)
        compressed = RerankCompressor(url=url, top_n=1).compress_documents([Document(page_content=DOCUMENTS[0])], QUERY)
    assert remote == [] and remote.p_any_relevant == pytest.approx(expected.p_any_relevant)  # nothing, and how sure
    assert split.p_any_relevant is None  # two requests, two answers: no one figure for the query
    one = core.rank(QUERY, DOCUMENTS[:1]).p_any_relevant
    assert compressed[0].metadata["rerank_p_any_relevant"] == pytest.approx(one)
    assert info["calibration"] == {"method": "platt", "digest": core.calibration.digest, "heldout_ece": None}
    assert ours["p_any_relevant"] == pytest.approx(expected.p_any_relevant)
    assert ours["results"][0]["relevance_score"] == pytest.approx(expected[0].relevance_score)
    assert answer.meta is not None and answer.meta.p_any_relevant == pytest.approx(expected.p_any_relevant)  # type: ignore[attr-defined]


def test_a_causal_lm_reranker_is_measured_and_calibrated_the_same_way(
    tmp_path_factory: pytest.TempPathFactory, scifact_beir: Path
) -> None:
    """p(yes) of a causal-LM reranker is a probability by construction; the report measures how calibrated
    it is (here random weights, so only the mechanics mean anything) and the fit maps its yes-no margin."""
    from tests.model_families import qwen3_reranker

    path = str(qwen3_reranker(tmp_path_factory.mktemp("qwen3"), layers=2))
    core = Reranker(path, precision="fp32", runtime="torch", max_length=256, calibration=None)
    run = calibrate(core, scifact_beir, run=scifact_beir / "run.trec", top_k=8, heldout=0.5, max_queries=10)
    report = run.calibration.report
    assert report["uncalibrated"]["ece"] > 0 and report["calibrated"]["brier"] < report["uncalibrated"]["brier"]
    saved = run.calibration.save(tmp_path_factory.mktemp("qwen3-calibration") / "c.json")
    calibrated = Reranker(path, precision="fp32", runtime="torch", max_length=256, calibration=saved)
    raw = core.pair_scores([(QUERY, document) for document in DOCUMENTS])  # margin: logit(yes) - logit(no)
    for result in calibrated.rank(QUERY, DOCUMENTS):
        margin = np.array([raw[result.index].margin])
        assert result.relevance_score == pytest.approx(float(run.calibration.apply(margin)[0]), abs=1e-6)
        assert raw[result.index].relevance_score == pytest.approx(float(1 / (1 + np.exp(-margin[0]))), abs=1e-6)


@pytest.mark.slow
def test_calibrate_command_names_what_is_wrong_in_one_line(
    random_model: str, scifact_beir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["calibrate", "--model", random_model, "--precision", "fp32", "--runtime", "torch", "--top-k", "8"]
    out = ["--out", str(tmp_path / "c.json")]
    (tmp_path / "bad.trec").write_text("1 Q0 only-four-fields\n", encoding="utf-8")
    (tmp_path / "foreign.trec").write_text("1 Q0 not-a-doc 1 9.5 x\n", encoding="utf-8")
    cases = {
        "is not BEIR-format data": ["--data", str(tmp_path / "nowhere"), *out],
        "held-out share must be between 0 and 1": ["--data", str(scifact_beir), "--heldout", "1.5", *out],
        "is not a TREC run file": ["--data", str(scifact_beir), "--run", str(tmp_path / "bad.trec"), *out],
        "not in the corpus": ["--data", str(scifact_beir), "--run", str(tmp_path / "foreign.trec"), *out],
        "both relevant and non-relevant": [
            "--data",
            str(scifact_beir),
            "--min-grade",
            "5",
            "--max-queries",
            "2",
            "--run",
            str(scifact_beir / "run.trec"),
            *out,
        ],  # fmt: skip
    }
    for message, arguments in cases.items():
        assert main([*base, *arguments]) == 2, message
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "c.json").exists()
