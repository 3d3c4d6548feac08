"""Where the tests find ../shared's models and data, and the seeded random-weight cross-encoder they build.

Test modules import these names from here; ``conftest.py`` holds only fixtures and hooks.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RERANK_PLUGINS_SHARED", REPO.parent / "shared"))
TRAINED_MODEL = SHARED / "models" / "minilm-l6-scifact-ce"
CONFIG_ONLY_MODEL = SHARED / "models" / "ms-marco-MiniLM-L-6-v2_config-tokenizer-only"
SCIFACT = SHARED / "data" / "scifact"


def require(path: Path) -> Path:
    if not path.exists():
        raise RuntimeError(
            f"{path} is missing: the tests need ../shared beside the repository "
            "(or RERANK_PLUGINS_SHARED pointing at it)"
        )
    return path


def build_random_cross_encoder(target: Path, num_labels: int = 1, seed: int = 0) -> Path:
    """A random-weight model with the exact ms-marco-MiniLM-L6-v2 architecture and tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    source = require(CONFIG_ONLY_MODEL)
    config = AutoConfig.from_pretrained(source, num_labels=num_labels)
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(config)
    model.save_pretrained(target)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(source / name, target / name)
    return target


RERANK_QUERY_ID = "198"  # "CCL19 is absent within dLNs.": the bi-encoder ranks its abstract 6th, the reranker 1st
OFF_TOPIC_QUESTION = "Who won the 2014 FIFA World Cup final in football?"
"""A question no SciFact abstract answers: the trained model scores every abstract far below 0 for it."""
