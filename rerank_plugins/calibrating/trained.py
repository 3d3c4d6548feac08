"""Which queries a fine-tuned model was trained on, from the ``training.json`` that ``rerank-plugins train``
writes beside it: a calibration fitted on them would be too confident (the model scores the questions it
learned higher than new ones), so ``calibrate`` leaves them out."""

from __future__ import annotations

import json
import logging

from rerank_plugins.calibration.identity import model_directory

__all__ = ["TRAINING_FILE", "trained_queries"]

logger = logging.getLogger(__name__)

TRAINING_FILE = "training.json"


def trained_queries(model: str) -> frozenset[str]:
    """The query ids ``model`` was fine-tuned on (empty when it has no ``training.json`` that lists them)."""
    directory = model_directory(model)
    found = directory / TRAINING_FILE if directory is not None else None
    if found is None or not found.is_file():
        return frozenset()
    try:
        ids = json.loads(found.read_text(encoding="utf-8")).get("trained_query_ids") or []
    except (OSError, ValueError, AttributeError) as error:
        logger.warning("could not read the trained queries from %s: %s", found, error)
        return frozenset()
    return frozenset(str(query) for query in ids)
