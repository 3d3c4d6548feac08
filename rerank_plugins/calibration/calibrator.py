"""``Calibration``: a fitted map from the model's raw margin to P(relevant), saved as JSON with what it belongs to.

Applying one needs numpy only; fitting it (``rerank_plugins.calibrating``) needs scikit-learn. A calibration
belongs to one model's weights and one scoring configuration: the same margin means something else
under another precision, ``max_length`` or long-document mode, so a mismatch is refused by name.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = [
    "CALIBRATION_FILE",
    "Calibration",
    "Method",
    "check_belongs_to",
    "sigmoid",
    "threshold_for_precision",
]

CALIBRATION_FILE = "rerank-calibration.json"
"""The name under which a calibration saved in a model's directory is found and used by default."""
FORMAT_VERSION = 2
"""2: the query-level map reads the best candidate's raw margin and an abstention rule may be saved."""
Method = Literal["platt", "isotonic"]
METHODS: tuple[Method, ...] = ("platt", "isotonic")
logger = logging.getLogger(__name__)
MIN_KEPT = 10
"""Fewest held-out documents a threshold must keep before its precision counts (below, it is noise)."""


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function in float64, without overflow for large margins."""
    result: np.ndarray = 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))
    return result


def _is_platt(parameters: dict[str, Any] | None) -> bool:
    return parameters is not None and all(
        isinstance(parameters.get(k), (int, float)) and math.isfinite(parameters[k]) for k in ("slope", "intercept")
    )


@dataclass(frozen=True)
class Calibration:
    """A monotone map from raw margin (log-odds as the model gives them) to a calibrated probability.

    Attributes:
        method: ``"platt"``: ``sigmoid(slope * margin + intercept)``; ``"isotonic"``: a step-wise
            monotone fit, interpolated linearly between its knots and flat beyond them.
        parameters: ``{"slope", "intercept"}`` (Platt) or ``{"x": [...], "y": [...]}`` (isotonic knots).
        belongs_to: The model (name, weights digest, revision) and every option that changes scores.
        report: What fitting measured on held-out queries (ECE, Brier, log-loss, thresholds).
        any_parameters: Platt ``{"slope", "intercept"}`` on a query's best raw margin, fitted on answerable
            and unanswerable queries: P(at least one candidate is relevant), a feature that does not grow
            with the number of candidates. ``None`` when no unanswerable query was fitted: P(any) unknown.
        abstention: The recommended "nothing relevant" rule, ``{"answer_from": level, ...}``: answer when
            P(any relevant) reaches ``level`` (``abstain=True`` applies it); ``None`` without a query-level map.
    """

    method: Method
    parameters: dict[str, Any]
    belongs_to: dict[str, Any]
    report: dict[str, Any] = field(default_factory=dict)
    any_parameters: dict[str, float] | None = None
    abstention: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.method == "platt":
            if not _is_platt(self.parameters):
                raise ValueError(f"a Platt calibration needs finite 'slope' and 'intercept', got {self.parameters}")
        elif self.method == "isotonic":
            x, y = np.asarray(self.parameters.get("x", []), float), np.asarray(self.parameters.get("y", []), float)
            if x.ndim != 1 or x.shape != y.shape or len(x) < 1 or np.any(np.diff(x) < 0) or np.any(np.diff(y) < 0):
                raise ValueError("an isotonic calibration needs equal-length, non-decreasing 'x' and 'y' knots")
            if not (np.all(np.isfinite(x)) and np.all((y >= 0) & (y <= 1))):
                raise ValueError("isotonic knots must be finite, with 'y' in [0, 1]")
        else:
            raise ValueError(f"calibration method must be one of {METHODS}, got {self.method!r}")
        if self.any_parameters is not None and not _is_platt(self.any_parameters):
            raise ValueError(f"'any_parameters' needs finite 'slope' and 'intercept', got {self.any_parameters}")
        if self.abstention is not None:
            level = self.abstention.get("answer_from")
            if self.any_parameters is None or not isinstance(level, (int, float)) or not 0.0 <= level <= 1.0:
                raise ValueError(
                    "an abstention rule needs a query-level map ('any_parameters') and an 'answer_from' level "
                    f"in [0, 1], got {self.abstention}"
                )

    def apply(self, margins: np.ndarray) -> np.ndarray:
        """Calibrated P(relevant) for each raw margin, as float32 in [0, 1]."""
        values = np.asarray(margins, dtype=np.float64)
        if self.method == "platt":
            probabilities = sigmoid(self.parameters["slope"] * values + self.parameters["intercept"])
        else:
            probabilities = np.interp(values, self.parameters["x"], self.parameters["y"])
        result: np.ndarray = np.asarray(probabilities, dtype=np.float32)
        return result

    def p_any(self, margins: Sequence[float]) -> float | None:
        """P(at least one of a query's candidates is relevant), from their raw margins (their best one);
        ``None`` when no query-level map was fitted or there is no candidate: unknown, never a guess."""
        if self.any_parameters is None or not len(margins):
            return None
        return float(self.apply_any(np.array([max(margins)]))[0])

    def apply_any(self, best_margins: np.ndarray) -> np.ndarray:
        """The query-level map from each query's best raw margin to P(any relevant) (needs ``any_parameters``)."""
        if self.any_parameters is None:
            raise ValueError("this calibration has no query-level map: it was fitted without unanswerable queries")
        slope, intercept = self.any_parameters["slope"], self.any_parameters["intercept"]
        return sigmoid(slope * np.asarray(best_margins, dtype=np.float64) + intercept)

    @property
    def answer_from(self) -> float | None:
        """The recommended rule's level: answer when P(any relevant) reaches it (``None``: no rule fitted)."""
        return None if self.abstention is None else float(self.abstention["answer_from"])

    @property
    def digest(self) -> str:
        """A short content hash: two calibrations with the same digest give the same probabilities."""
        payload = json.dumps([self.method, self.parameters, self.any_parameters, self.abstention], sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def threshold_for_precision(self, precision: float) -> float | None:
        """The lowest threshold whose held-out precision reached ``precision`` (most recall for it), if any.

        Only thresholds that kept at least ``MIN_KEPT`` held-out documents count: a precision measured on
        two documents says nothing.
        """
        return threshold_for_precision(self.report.get("precision_curve") or [], precision)

    # -- files ---------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, **asdict(self)}

    def save(self, path: str | Path) -> Path:
        """Write the calibration as JSON (a directory gets ``rerank-calibration.json`` inside it)."""
        target = Path(path)
        if target.is_dir():
            target = target / CALIBRATION_FILE
        target.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return target

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        """Read a calibration file (or ``rerank-calibration.json`` in a directory), checking its shape."""
        source = Path(path).expanduser()
        if source.is_dir():
            source = source / CALIBRATION_FILE
        if not source.is_file():
            raise FileNotFoundError(f"No calibration file at {str(source)!r}: make one with 'rerank-plugins calibrate'")
        try:
            data = json.loads(source.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{source} is not a calibration file (not JSON: {error})") from error
        version = data.get("format_version") if isinstance(data, dict) else None
        if version not in (1, FORMAT_VERSION):
            raise ValueError(f"{source} is not a rerank-plugins calibration file (format_version {FORMAT_VERSION})")
        if version == 1 and data.get("any_parameters") is not None:
            logger.warning(
                "%s: its P(any relevant) map (format 1) was fitted without unanswerable queries and is not used: "
                "P(any relevant) is unknown until you calibrate again with --unanswerable", source
            )
        try:
            any_parameters = data.get("any_parameters") if version == FORMAT_VERSION else None
            abstention = data.get("abstention") if version == FORMAT_VERSION else None
            return cls(
                data["method"],
                dict(data["parameters"]),
                dict(data["belongs_to"]),
                dict(data.get("report", {})),
                None if any_parameters is None else dict(any_parameters),
                None if abstention is None else dict(abstention),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{source} is not a valid calibration file: {error}") from error


def threshold_for_precision(curve: Sequence[dict[str, Any]], precision: float) -> float | None:
    """The lowest threshold of a precision curve that kept ``MIN_KEPT`` documents at ``precision`` or better."""
    reached = [
        row["threshold"]
        for row in curve
        if row["precision"] is not None and row["precision"] >= precision and row.get("documents", 0) >= MIN_KEPT
    ]
    return min(reached) if reached else None


def check_belongs_to(calibration: Calibration, actual: dict[str, Any], source: str) -> None:
    """Refuse ``calibration`` unless it was made for the model and options in ``actual``, naming each difference.

    The weights digest identifies the model (the same weights under another path or name are the same
    model); the name is compared only where a digest is missing on either side. The runtime is not compared
    when both sides run fp32, whose scores agree across runtimes (tests/test_onnx_runtime.py, test_runtimes.py).
    """
    expected = calibration.belongs_to
    differences = []
    by_digest = bool(expected.get("weights_digest") and actual.get("weights_digest"))
    skipped = {"model", "revision"} if by_digest else {"weights_digest"}
    if expected.get("precision") == actual.get("precision") == "fp32":
        skipped.add("runtime")  # fp32 scores agree across runtimes: one calibration serves all
    for key, value in actual.items():
        if key in skipped:
            continue
        if key in expected and expected[key] != value:
            differences.append(f"{key}: calibrated with {expected[key]!r}, this Reranker has {value!r}")
    if differences:
        raise ValueError(
            f"the calibration in {source} was made for another model or configuration ({'; '.join(differences)}). "
            "Calibrate this configuration with 'rerank-plugins calibrate', or pass calibration=None to use "
            "uncalibrated scores."
        )
