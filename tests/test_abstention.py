""" "Nothing relevant" without a model: unanswerable queries in ``calibrate``, the query-level map on the best margin,
the recommended rule, honest reports, drift, and ``abstain`` in rankings and answers."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rerank_plugins.backend import PairScore, RerankBackend
from rerank_plugins.calibrating import LabelledScores, calibrate
from rerank_plugins.calibrating.abstention import outcomes, recommend_rule, removed_twins, wilson_lower
from rerank_plugins.calibrating.job import fit_and_report
from rerank_plugins.calibration import Calibration
from rerank_plugins.calibration.calibrator import check_belongs_to
from rerank_plugins.calibration.drift import DriftWatch, distance_from_fit, margin_quantiles
from rerank_plugins.serving.apis import Ask, render

BELONGS = {"model": "m", "weights_digest": "abc", "revision": None, "max_length": 256, "precision": "fp32",
           "runtime": "torch"}  # fmt: skip


def _rows(answerable: int, unanswerable: int, seed: int = 0, per_query: int = 10) -> LabelledScores:
    """Queries whose relevant candidate scores high (margin ~ N(3, 1.5)) among non-relevant ones (~ N(-3, 2)):
    the answerable ones have one relevant candidate, the unanswerable ones none."""
    rng = np.random.default_rng(seed)
    queries, documents, margins, labels = [], [], [], []
    for q in range(answerable + unanswerable):
        for d in range(per_query):
            relevant = q < answerable and d == 0
            queries.append(f"q{q}")
            documents.append(f"q{q}-d{d}")
            margins.append(rng.normal(3, 1.5) if relevant else rng.normal(-3, 2))
            labels.append(int(relevant))
    return LabelledScores(np.array(queries, dtype=object), np.array(documents, dtype=object),
                          np.array(margins), np.array(labels))  # fmt: skip


def test_without_unanswerable_queries_no_rule_is_fitted_and_p_any_is_unknown(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        run = fit_and_report(_rows(200, 0), _rows(100, 0, seed=1), "platt", BELONGS, {"seed": 0})
    calibration = run.calibration
    assert calibration.any_parameters is None and calibration.abstention is None
    assert calibration.p_any([3.0, -1.0]) is None  # unknown, not 1 - prod(1 - p)
    assert "no abstention rule was fitted" in caplog.text
    assert (
        calibration.report["p_any_relevant"]
        == {"fitted": False, "why": pytest.approx(calibration.report["p_any_relevant"]["why"])}
        and "unknown" in calibration.report["p_any_relevant"]["why"]
    )


def test_real_unanswerable_queries_fit_a_rule_that_holds_on_held_out_queries() -> None:
    run = fit_and_report(_rows(300, 300), _rows(300, 300, seed=1), "platt", BELONGS, {"seed": 0, "answer_rate": 0.9})
    calibration = run.calibration
    assert calibration.any_parameters is not None and calibration.answer_from is not None
    p_high, p_low = calibration.p_any([4.0, -3.0]), calibration.p_any([-2.5, -3.0, -4.0])
    assert p_high is not None and p_low is not None and p_high > 0.9 > 0.1 > p_low
    # the feature does not grow with the number of candidates: fifty more poor ones change nothing
    assert calibration.p_any([-2.5] + [-6.0] * 50) == pytest.approx(calibration.p_any([-2.5]))
    rule = calibration.report["p_any_relevant"]["rule"]["all"]
    assert rule["answered_answerable"] >= 0.88 and rule["abstained_on_unanswerable"] > 0.6
    assert 0 < rule["answer_f1"] <= 1 and calibration.report["p_any_relevant"]["errors"]["roc_auc"] > 0.9


def test_the_rule_answers_the_asked_share_by_a_lower_bound() -> None:
    assert wilson_lower(90, 100) < 0.9 < wilson_lower(97, 100)
    p_any = np.linspace(0.01, 0.99, 500)
    rule = recommend_rule(p_any, np.ones(500, int), answer_rate=0.9)
    answered = float(np.mean(p_any >= rule["answer_from"]))
    assert 0.9 < answered < 0.95 and rule["fitted_answered_share"] == pytest.approx(answered)
    with pytest.raises(ValueError, match="between 0 and 1"):
        recommend_rule(p_any, np.ones(500, int), answer_rate=1.0)


def test_removed_twins_never_make_an_empty_list_and_outcomes_count_real_abstentions() -> None:
    rows = LabelledScores(np.array(["a", "a", "b"], dtype=object), np.array(["a1", "a2", "b1"], dtype=object),
                          np.array([2.0, -1.0, 3.0]), np.array([1, 0, 1]))  # fmt: skip
    twins = removed_twins(rows)
    assert twins.queries.tolist() == ["a\x1fremoved"] and twins.documents.tolist() == ["a2"]  # b had only its answer
    queries = rows.concat(twins).per_query()
    result = outcomes(queries, queries.best_margins >= 0.0)
    assert result["unanswerable_queries"] == 1 and result["abstained_on_unanswerable"] == 1.0
    assert result["answered_answerable"] == 1.0 and result["answer_precision"] == 1.0 and result["answer_f1"] == 1.0
    keep_all = outcomes(queries, np.ones(len(queries), bool))  # a rule that keeps every document abstains on none
    assert keep_all["abstained_on_unanswerable"] == 0.0 and keep_all["answer_precision"] == pytest.approx(2 / 3)


def test_reports_carry_skill_separation_and_say_when_the_model_cannot_separate() -> None:
    rng = np.random.default_rng(3)
    n = 3000
    noise = LabelledScores(np.array([f"q{i // 10}" for i in range(n)], dtype=object),
                           np.array([f"d{i}" for i in range(n)], dtype=object), rng.normal(0, 1, n),
                           (rng.random(n) < 0.1).astype(int))  # fmt: skip
    report = fit_and_report(noise, noise, "platt", BELONGS, {"seed": 0}).calibration.report
    assert report["calibrated"]["roc_auc"] == pytest.approx(0.5, abs=0.06)
    assert abs(report["calibrated"]["brier_skill"]) < 0.02  # calibrated, and no better than the base rate
    assert any("barely separates" in warning and "fine-tune" in warning for warning in report["warnings"])
    good = fit_and_report(_rows(200, 200), _rows(200, 200, seed=1), "platt", BELONGS, {}).calibration.report
    assert good["warnings"] == [] and good["calibrated"]["brier_skill"] > 0.5
    assert len(good["fit"]["margin_quantiles"]) == 101


class _Fake:
    """A core stand-in for ``calibrate``: margin 3 for a judged pair, -3 otherwise, from a fixed table."""

    def __init__(self, relevant: set[tuple[str, str]], model_name: str = "fake") -> None:
        self.relevant = relevant
        self.model_name = model_name
        self.seen: list[tuple[str, str]] = []

    def pair_scores(self, pairs: list[tuple[str, str]]) -> list[PairScore]:
        self.seen += pairs
        rng = np.random.default_rng(len(self.seen))
        return [PairScore(0.0, 0.5, margin=(3.0 if pair in self.relevant else -3.0) + rng.normal(0, 1))
                for pair in pairs]  # fmt: skip

    def score_configuration(self) -> dict[str, Any]:
        return dict(BELONGS)


def _beir(root: Path, answerable: int = 30, unanswerable: int = 30) -> tuple[Path, set[tuple[str, str]]]:
    corpus, queries, qrels, run = [], [], [], []
    relevant = set()
    for q in range(answerable + unanswerable):
        queries.append({"_id": f"q{q}", "text": f"question {q}"})
        for d in range(5):
            corpus.append({"_id": f"q{q}d{d}", "title": "", "text": f"sentence {d} of {q}"})
            run.append(f"q{q} Q0 q{q}d{d} {d + 1} {-d} page")
        if q < answerable:
            qrels.append(f"q{q}\tq{q}d2\t1")
            relevant.add((f"question {q}", f"sentence 2 of {q}"))
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps(row) + "\n" for row in corpus), encoding="utf-8")
    (root / "queries.jsonl").write_text("".join(json.dumps(row) + "\n" for row in queries), encoding="utf-8")
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(qrels) + "\n")
    (root / "run.trec").write_text("\n".join(run) + "\n", encoding="utf-8")
    return root, relevant


def test_calibrate_counts_a_run_s_unjudged_queries_as_unanswerable_when_told(tmp_path: Path) -> None:
    root, relevant = _beir(tmp_path)
    fake = _Fake(relevant)
    run = calibrate(fake, root, split="train", run=root / "run.trec", unanswerable=["unjudged"])  # type: ignore[arg-type]
    report = run.calibration.report
    assert run.calibration.answer_from is not None
    assert report["fit"]["queries"] + report["heldout"]["queries"] == 60
    assert report["heldout"]["queries"] > report["heldout"]["answerable_queries"] > 0
    assert report["p_any_relevant"]["rule"]["all"]["abstained_on_unanswerable"] > 0.8
    plain = calibrate(_Fake(relevant), root, split="train", run=root / "run.trec")  # type: ignore[arg-type]
    assert plain.calibration.answer_from is None and plain.calibration.report["fit"]["queries"] < 30
    with pytest.raises(ValueError, match="needs a run file"):
        calibrate(fake, root, split="train", unanswerable=["unjudged"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unanswerable sources"):
        calibrate(fake, root, split="train", run=root / "run.trec", unanswerable=["made-up"])  # type: ignore[arg-type,list-item]


def test_calibrate_synthesises_unanswerable_queries_when_the_data_has_none(tmp_path: Path) -> None:
    root, relevant = _beir(tmp_path, answerable=40, unanswerable=0)
    fake = _Fake(relevant)
    run = calibrate(fake, root, split="train", run=root / "run.trec", unanswerable=["removed", "swapped"])  # type: ignore[arg-type]
    rule = run.calibration.report["p_any_relevant"]["rule"]
    assert set(rule) >= {"all", "removed", "swapped"} and run.calibration.answer_from is not None
    swapped = [pair for pair in fake.seen if pair[1].split()[-1] != pair[0].split()[-1]]
    assert swapped and not any(pair in relevant for pair in swapped)  # another query's candidates, none judged


def test_a_version_1_file_loads_with_p_any_unknown(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    old = {"format_version": 1, "method": "platt", "parameters": {"slope": 1.0, "intercept": 0.0},
           "belongs_to": BELONGS, "report": {}, "any_parameters": {"slope": 1.0, "intercept": 1.0}}  # fmt: skip
    (tmp_path / "old.json").write_text(json.dumps(old), encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        loaded = Calibration.load(tmp_path / "old.json")
    assert loaded.any_parameters is None and loaded.p_any([5.0]) is None and "--unanswerable" in caplog.text
    with pytest.raises(ValueError, match="abstention rule needs a query-level map"):
        Calibration("platt", {"slope": 1.0, "intercept": 0.0}, BELONGS, abstention={"answer_from": 0.5})


def test_runtimes_that_agree_in_fp32_share_a_calibration_and_others_do_not() -> None:
    calibration = Calibration("platt", {"slope": 1.0, "intercept": 0.0}, BELONGS)
    check_belongs_to(calibration, {**BELONGS, "runtime": "onnx"}, "f.json")
    bf16 = Calibration("platt", {"slope": 1.0, "intercept": 0.0}, {**BELONGS, "precision": "bf16"})
    with pytest.raises(ValueError, match="runtime: calibrated with 'torch'"):
        check_belongs_to(bf16, {**BELONGS, "precision": "bf16", "runtime": "openvino"}, "f.json")


def test_drift_is_said_once_when_the_margins_move_and_not_for_the_same_domain(caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(0)
    fitted = rng.normal(-3, 2, 5000)
    report = {"fit": {"margin_quantiles": margin_quantiles(fitted)}}
    assert distance_from_fit(report["fit"]["margin_quantiles"], rng.normal(-3, 2, 2000)) < 0.06
    same, moved = DriftWatch(report, "same.json"), DriftWatch(report, "moved.json")
    with caplog.at_level(logging.WARNING):
        for _ in range(5):
            same.observe(rng.normal(-3, 2, 1000).tolist())
            moved.observe(rng.normal(2, 2, 1000).tolist())
    assert not same.warned and moved.warned
    assert caplog.text.count("drifted far") == 1 and "moved.json" in caplog.text and "per domain" in caplog.text


class _Calibrated(RerankBackend):
    """A backend whose scores come with P(any relevant) and a rule: the ranking logic of abstention."""

    model_name = "fixed"

    def __init__(self, p_any: float, level: float | None) -> None:
        self.p_any, self.level = p_any, level

    def _score_pairs(self, pairs: list[tuple[str, str]]) -> list[PairScore]:
        return [PairScore(1.0 - i, 0.5, margin=1.0 - i, calibrated=True) for i in range(len(pairs))]

    def any_relevant(self, scored: Any) -> float | None:
        return self.p_any

    def answer_from(self) -> float | None:
        return self.level

    def options(self) -> dict[str, object]:
        return {}


def test_abstaining_empties_the_ranking_and_keeps_p_any() -> None:
    ranking = _Calibrated(0.2, 0.4).rank("q", ["a", "b", "c"])
    assert ranking == [] and ranking.abstained and ranking.p_any_relevant == 0.2 and ranking.candidates == 3
    answered = _Calibrated(0.6, 0.4).rank("q", ["a", "b", "c"], top_n=2)
    assert len(answered) == 2 and not answered.abstained
    assert len(_Calibrated(0.2, None).rank("q", ["a", "b"])) == 2  # no rule: never abstains
    many = _Calibrated(0.2, 0.4).rank_many(["q", "r"], [["a"], []])
    assert many[0].abstained and not many[1].abstained  # no candidates: nothing to abstain from


def test_a_service_abstains_in_every_api_and_ours_keeps_the_scores_for_the_client() -> None:
    from rerank_plugins.remote.wire import parse_response

    ranking = _Calibrated(0.2, None).rank("q", ["a", "b"])
    ours = render(Ask("rerank-plugins", "q", ["a", "b"], None, False, None), ranking, model="m", request_id="r",
                  tokens=4, warnings=[], answer_from=0.4)  # fmt: skip
    cohere = render(Ask("cohere-v2", "q", ["a", "b"], None, False, None), ranking, model="m", request_id="r",
                    tokens=4, warnings=[], answer_from=0.4)  # fmt: skip
    assert ours["abstained"] is True and len(ours["results"]) == 2
    assert cohere["results"] == [] and cohere["meta"]["abstained"] is True
    scores = parse_response("rerank-plugins", {**ours, "p_any_relevant": 0.2}, [1, 1])
    assert all(s.abstained for s in scores)
    answered = render(Ask("cohere-v2", "q", ["a", "b"], None, False, None), ranking, model="m", request_id="r",
                      tokens=4, warnings=[], answer_from=0.1)  # fmt: skip
    assert len(answered["results"]) == 2 and "abstained" not in answered["meta"]


def test_calibrate_leaves_out_the_queries_the_model_was_fine_tuned_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root, relevant = _beir(tmp_path / "data")
    model = tmp_path / "model"
    model.mkdir()
    (model / "training.json").write_text(json.dumps({"trained_query_ids": [f"q{i}" for i in range(20)]}))
    with caplog.at_level(logging.WARNING):
        run = calibrate(_Fake(relevant, str(model)), root, split="train", run=root / "run.trec",  # type: ignore[arg-type]
                        unanswerable=["unjudged"])  # fmt: skip
    used = set(run.fit.queries.tolist()) | set(run.heldout.queries.tolist())
    assert not used & {f"q{i}" for i in range(20)} and len(used) == 40
    assert "left out 20 queries" in caplog.text and "fine-tuned on" in caplog.text
