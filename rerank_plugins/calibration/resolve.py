"""Which calibration a core uses: the file it was given, checked, or the one in its model's directory."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from rerank_plugins.calibration.calibrator import CALIBRATION_FILE, Calibration, check_belongs_to
from rerank_plugins.calibration.identity import model_directory

__all__ = ["resolve_calibration"]

logger = logging.getLogger("rerank_plugins.reranker")


def resolve_calibration(
    option: str | None, given: Calibration | None, model: str, configuration: Callable[[], dict[str, Any]]
) -> Calibration | None:
    """``given`` (read from the path ``option``) when it belongs to ``configuration()``, else refused by name;
    for ``option="auto"``, the model directory's ``rerank-calibration.json``, refused the same way when it does
    not belong (a silent switch of ``score_threshold``'s scale is worse than an error); ``None`` for
    ``option=None``. ``configuration`` is called only when there is a file to check."""
    if given is not None:
        check_belongs_to(given, configuration(), str(option))
        return given
    directory = model_directory(model) if option == "auto" else None
    if directory is None or not (directory / CALIBRATION_FILE).is_file():
        return None
    found = directory / CALIBRATION_FILE
    calibration = Calibration.load(found)
    check_belongs_to(calibration, configuration(), str(found))
    logger.info("using the calibration found in the model directory: %s (%s)", found, calibration.method)
    return calibration
