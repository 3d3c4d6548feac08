"""Calibration mechanics without a model: the map, its file, the measures, the split and P(any relevant)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import brier_score_loss, log_loss

from rerank_plugins.backend import PairScore, RerankBackend, rank_scored
from rerank_plugins.calibrating import split_queries
from rerank_plugins.calibrating.fitting import fit_parameters
from rerank_plugins.calibrating.measures import (
    calibration_errors,
    expected_calibration_error,
    threshold_table,
)
from rerank_plugins.calibration import Calibration
from rerank_plugins.calibration.calibrator import check_belongs_to
from rerank_plugins.results import Ranking

BELONGS = {"model": "m", "weights_digest": "abc", "revision": None, "max_length": 256, "precision": "fp32"}


def _synthetic(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Margins whose true P(relevant) is sigmoid(0.7 * margin - 2): a known Platt map to recover."""
    rng = np.random.default_rng(seed)
    margins = rng.normal(0, 3, n)
    labels = (rng.random(n) < 1 / (1 + np.exp(-(0.7 * margins - 2)))).astype(int)
    return margins, labels


def test_platt_recovers_the_map_that_made_the_labels() -> None:
    margins, labels = _synthetic()
    parameters = fit_parameters(margins, labels, "platt")
    assert parameters["slope"] == pytest.approx(0.7, abs=0.08)
    assert parameters["intercept"] == pytest.approx(-2.0, abs=0.2)
    calibration = Calibration("platt", parameters, BELONGS)
    expected = 1 / (1 + np.exp(-(parameters["slope"] * margins + parameters["intercept"])))
    np.testing.assert_allclose(calibration.apply(margins), expected, rtol=1e-5)
    assert calibration.apply(np.array([-1e6, 1e6])).tolist() == [0.0, 1.0]  # no overflow at the extremes


def test_isotonic_applies_exactly_as_scikit_learn_predicts() -> None:
    margins, labels = _synthetic(seed=1)
    calibration = Calibration("isotonic", fit_parameters(margins, labels, "isotonic"), BELONGS)
    reference = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(margins, labels)
    probe = np.linspace(-15, 15, 301)
    np.testing.assert_allclose(calibration.apply(probe), reference.predict(probe), atol=1e-6)
    assert np.all(np.diff(calibration.apply(probe)) >= 0)


def test_fitting_refuses_labels_of_one_class() -> None:
    with pytest.raises(ValueError, match="0 relevant of 3"):
        fit_parameters(np.array([1.0, 2.0, 3.0]), np.array([0, 0, 0]))
    with pytest.raises(ValueError, match="method must be one of"):
        fit_parameters(np.array([1.0, 2.0]), np.array([0, 1]), "beta")  # type: ignore[arg-type]


def test_file_round_trip_and_clear_errors_for_broken_files(tmp_path: Path) -> None:
    calibration = Calibration("platt", {"slope": 1.5, "intercept": -3.0}, BELONGS, {"calibrated": {"ece": 0.01}})
    path = calibration.save(tmp_path / "c.json")
    assert Calibration.load(path) == calibration
    assert calibration.save(tmp_path) == tmp_path / "rerank-calibration.json"  # a directory gets the default name
    assert Calibration.load(tmp_path) == calibration

    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="not JSON"):
        Calibration.load(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"hello": 1}), encoding="utf-8")
    with pytest.raises(ValueError, match="not a rerank-plugins calibration file"):
        Calibration.load(tmp_path / "other.json")
    broken = {**calibration.to_dict(), "method": "isotonic", "parameters": {"x": [0, 1, 2], "y": [0.5, 0.2, 0.9]}}
    (tmp_path / "broken.json").write_text(json.dumps(broken), encoding="utf-8")
    with pytest.raises(ValueError, match="non-decreasing"):
        Calibration.load(tmp_path / "broken.json")
    with pytest.raises(FileNotFoundError, match="rerank-plugins calibrate"):
        Calibration.load(tmp_path / "missing.json")


def test_a_calibration_for_another_configuration_is_refused_naming_each_difference() -> None:
    calibration = Calibration("platt", {"slope": 1.0, "intercept": 0.0}, BELONGS)
    check_belongs_to(calibration, dict(BELONGS), "f.json")
    check_belongs_to(calibration, {**BELONGS, "model": "/elsewhere/m"}, "f.json")  # same weights, moved: fine
    with pytest.raises(ValueError, match=r"max_length: calibrated with 256, this Reranker has 128.*precision"):
        check_belongs_to(calibration, {**BELONGS, "max_length": 128, "precision": "bf16"}, "f.json")
    with pytest.raises(ValueError, match="weights_digest"):
        check_belongs_to(calibration, {**BELONGS, "weights_digest": "def"}, "f.json")
    without_digest = {**BELONGS, "weights_digest": None}
    with pytest.raises(ValueError, match="model: calibrated with 'm'"):
        check_belongs_to(calibration, {**without_digest, "model": "other"}, "f.json")


def test_measures_match_scikit_learn_and_a_hand_computed_ece() -> None:
    p = np.array([0.05, 0.05, 0.15, 0.95, 0.95, 0.95, 0.95])
    y = np.array([0, 1, 0, 1, 1, 1, 0])
    # [0, .1): p .05 vs freq .5 (2 pairs); [.1, .2): .15 vs 0 (1); [.9, 1]: .95 vs .75 (4)
    assert expected_calibration_error(p, y) == pytest.approx((2 * 0.45 + 0.15 + 4 * 0.2) / 7)
    errors = calibration_errors(p, y)
    assert errors["brier"] == pytest.approx(brier_score_loss(y, p))
    assert errors["log_loss"] == pytest.approx(log_loss(y, p))
    margins, labels = _synthetic(20000, seed=2)
    truth = 1 / (1 + np.exp(-(0.7 * margins - 2)))
    assert expected_calibration_error(truth, labels) < 0.02  # the true probabilities are calibrated


def test_threshold_table_counts_precision_recall_and_queries_left_empty() -> None:
    p = np.array([0.9, 0.6, 0.2, 0.7, 0.1, 0.05])
    y = np.array([1, 0, 0, 1, 0, 0])
    q = np.array(["a", "a", "a", "b", "b", "c"])
    rows = {row["threshold"]: row for row in threshold_table(p, y, q, [0.5, 0.8, 0.95])}
    assert rows[0.5] == {"threshold": 0.5, "precision": 2 / 3, "recall": 1.0,
                         "no_document_share": 1 / 3, "documents_per_query": 1.0, "documents": 3}  # fmt: skip
    assert rows[0.8]["precision"] == 1.0 and rows[0.8]["recall"] == 0.5 and rows[0.8]["no_document_share"] == 2 / 3
    assert rows[0.95]["precision"] is None and rows[0.95]["no_document_share"] == 1.0


def test_threshold_for_a_precision_is_the_lowest_that_reaches_it_on_enough_documents() -> None:
    rows = [(0.1, 0.5, 90), (0.2, 0.81, 60), (0.3, 0.79, 40), (0.4, 0.9, 20), (0.5, 1.0, 3)]
    curve = [{"threshold": t, "precision": pr, "documents": n} for t, pr, n in rows]
    calibration = Calibration("platt", {"slope": 1.0, "intercept": 0.0}, BELONGS, {"precision_curve": curve})
    assert calibration.threshold_for_precision(0.8) == 0.2
    assert calibration.threshold_for_precision(0.95) is None  # 1.0 on three documents is not evidence


def test_held_out_queries_never_share_a_query_with_the_fitted_ones() -> None:
    ids = [str(i) for i in range(100)]
    fit, held = split_queries(ids, 0.3, seed=7)
    assert len(held) == 30 and not set(fit) & set(held) and sorted(fit + held) == sorted(ids)
    assert split_queries(list(reversed(ids)), 0.3, seed=7) == (fit, held)  # the order given does not matter
    assert split_queries(ids, 0.3, seed=8) != (fit, held)
    with pytest.raises(ValueError, match="between 0 and 1"):
        split_queries(ids, 1.0, seed=0)


class _Scores(RerankBackend):
    """Fixed pair scores: the ranking logic of the backend without a model."""

    model_name = "fixed"

    def __init__(self, scores: list[PairScore]) -> None:
        self.scores = scores

    def _score_pairs(self, pairs: list[tuple[str, str]]) -> list[PairScore]:
        return self.scores[: len(pairs)]

    def options(self) -> dict[str, object]:
        return {}


def test_a_ranking_reports_p_any_only_from_a_query_level_map() -> None:
    documents = ["a", "b", "c"]
    calibrated = [PairScore(s, p, margin=s, calibrated=True) for s, p in [(2.0, 0.6), (1.0, 0.3), (-1.0, 0.05)]]
    ranking = _Scores(calibrated).rank("q", documents, score_threshold=0.9)
    assert isinstance(ranking, Ranking) and ranking == [] and ranking.candidates == 3
    assert ranking.p_any_relevant is None  # calibrated documents alone do not make 1 - prod(1 - p) a probability
    assert rank_scored(documents, calibrated, p_any=0.25).p_any_relevant == 0.25
    raw = _Scores([PairScore(s.score, s.relevance_score) for s in calibrated]).rank("q", documents)
    assert raw.p_any_relevant is None and len(raw) == 3
    assert math.isclose(sum(r.relevance_score for r in raw), 0.95)


def test_the_query_level_map_reads_the_best_margin_and_survives_the_file(tmp_path: Path) -> None:
    rule = {"answer_from": 0.5}
    calibration = Calibration("platt", {"slope": 1.0, "intercept": 0.0}, BELONGS, {}, {"slope": 2.0, "intercept": -1.0},
                              rule)  # fmt: skip
    expected = 1 / (1 + math.exp(-(2.0 * 2.0 - 1.0)))
    assert calibration.p_any([2.0, 1.0, -1.0]) == pytest.approx(expected)
    loaded = Calibration.load(calibration.save(tmp_path / "c.json"))
    assert loaded.p_any([2.0, 1.0, -1.0]) == pytest.approx(expected) and loaded.answer_from == 0.5
    plain = Calibration("platt", {"slope": 1.0, "intercept": 0.0}, BELONGS)
    assert plain.p_any([2.0, 1.0, -1.0]) is None and plain.digest != calibration.digest
    assert calibration.p_any([]) is None
    with pytest.raises(ValueError, match="any_parameters"):
        Calibration("platt", {"slope": 1.0, "intercept": 0.0}, BELONGS, {}, {"slope": float("nan"), "intercept": 0})


def test_applying_a_calibration_needs_none_of_the_fitting_libraries(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = Calibration("isotonic", {"x": [-2.0, 2.0], "y": [0.1, 0.9]}, BELONGS).save(tmp_path / "c.json")
    probe = (
        "import sys\n"
        "for name in ('sklearn', 'scipy', 'matplotlib', 'faiss', 'ir_measures'):\n"
        "    sys.modules[name] = None\n"
        "import numpy as np\n"
        "from rerank_plugins.calibration import Calibration\n"
        f"print(Calibration.load({str(path)!r}).apply(np.array([-4.0, 0.0, 4.0])).tolist())\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    assert json.loads(done.stdout) == pytest.approx([0.1, 0.5, 0.9])


def test_the_remote_client_reads_p_any_and_refuses_an_impossible_one() -> None:
    from rerank_plugins.remote.wire import MalformedAnswer, parse_response

    rows = [{"index": 0, "score": 1.0, "relevance_score": 0.4}, {"index": 1, "score": -1.0, "relevance_score": 0.1}]
    scores = parse_response("rerank-plugins", {"results": rows, "p_any_relevant": 0.45}, [10, 10])
    assert [s.query_p_any for s in scores] == [0.45, 0.45] and all(s.calibrated for s in scores)
    plain = parse_response("rerank-plugins", {"results": rows}, [10, 10])
    assert [s.query_p_any for s in plain] == [None, None] and not any(s.calibrated for s in plain)
    for bad in (1.5, -0.1, "high", float("nan")):
        with pytest.raises(MalformedAnswer, match="p_any_relevant"):
            parse_response("rerank-plugins", {"results": rows, "p_any_relevant": bad}, [10, 10])
