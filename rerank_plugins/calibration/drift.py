"""Has the data moved away from what a calibration was fitted on? A calibration is per domain: say so once.

The calibration file keeps the quantiles of the raw margins it was fitted on; a core compares the margins it
scores with them (the Kolmogorov-Smirnov distance between the two distributions) and warns once when they
differ far more than two samples of one domain do.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["DRIFT_DISTANCE", "DriftWatch", "margin_quantiles", "distance_from_fit"]

logger = logging.getLogger("rerank_plugins.reranker")

QUANTILES = 101
"""Quantiles of the fitted margins a calibration file keeps (every percent)."""
WATCHED = 2000
"""Recent margins a core compares with the fit (checked at every full window until it has warned once)."""
DRIFT_DISTANCE = 0.3
"""The KS distance that counts as drift: 30 points of probability mass moved (two samples of a few thousand
margins from one domain differ by a few points)."""


def margin_quantiles(margins: np.ndarray) -> list[float]:
    """The every-percent quantiles of fitted margins: what ``DriftWatch`` compares against."""
    return [float(v) for v in np.quantile(np.asarray(margins, float), np.linspace(0.0, 1.0, QUANTILES))]


def distance_from_fit(quantiles: Sequence[float], margins: np.ndarray) -> float:
    """The KS distance between the fitted margins (by their quantiles) and ``margins``."""
    fitted = np.asarray(quantiles, float)
    seen = np.sort(np.asarray(margins, float))
    points = np.union1d(fitted, seen)
    fitted_cdf = np.interp(points, fitted, np.linspace(0.0, 1.0, len(fitted)), left=0.0, right=1.0)
    seen_cdf = np.searchsorted(seen, points, side="right") / len(seen)
    return float(np.max(np.abs(fitted_cdf - seen_cdf)))


class DriftWatch:
    """Keeps the last ``WATCHED`` margins a core scored and warns once if they drift from the fit's."""

    def __init__(self, report: dict[str, Any], source: str) -> None:
        self._quantiles = (report.get("fit") or {}).get("margin_quantiles")
        self._source = source
        self._recent: deque[float] = deque(maxlen=WATCHED)
        self._added = 0
        self._warned = False
        self._lock = threading.Lock()

    @property
    def warned(self) -> bool:
        """Whether the drift warning has been given."""
        return self._warned

    def observe(self, margins: Sequence[float]) -> None:
        """Add scored margins; each full window of new ones is compared with the fit until one drifts."""
        if self._quantiles is None or self._warned:
            return
        with self._lock:
            self._recent.extend(margins)
            self._added += len(margins)
            if self._added < WATCHED or self._warned:
                return
            self._added = 0
            distance = distance_from_fit(self._quantiles, np.fromiter(self._recent, float))
            if distance < DRIFT_DISTANCE:
                return
            self._warned = True
        logger.warning(
            "the scores have drifted far from those the calibration %s was fitted on (KS distance %.2f over the "
            "last %d pairs): calibrations are per domain, so its probabilities and abstention rule may not hold "
            "here; calibrate on this data ('rerank-plugins calibrate')", self._source, distance, WATCHED
        )
