"""The light floor's tests: exported artefacts scored with no torch, transformers or sentence-transformers.

They run in a venv without torch (``.ci/light``) and, in the main suite, in a subprocess that blocks those
imports (``tests/test_light_floor.py``). ``RERANK_PLUGINS_ARTEFACTS`` names a folder holding ``onnx-fp32``,
``onnx-int8``, ``openvino-fp32`` and ``openvino-int8`` artefacts of the SciFact model, exported where
torch is installed.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["RERANK_PLUGINS_CACHE"] = tempfile.mkdtemp(prefix="rerank-plugins-cache-")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("RERANK_PLUGINS_SHARED", REPO.parent / "shared"))
HEAVY = ("torch", "transformers", "sentence_transformers")
CLAIM = "36"
"""SciFact test claim 36, "A deficiency of vitamin B12 increases blood levels of homocysteine": the README's topic."""


@pytest.fixture(scope="session")
def artefacts() -> Path:
    """The folder of exported artefacts this run scores with."""
    configured = os.environ.get("RERANK_PLUGINS_ARTEFACTS")
    if not configured:
        raise RuntimeError(
            "RERANK_PLUGINS_ARTEFACTS is not set: export the artefacts first (.ci/light does, "
            "tests/test_light_floor.py does for the main suite)"
        )
    return Path(configured)


@pytest.fixture(scope="session")
def onnx_fp32(artefacts: Path) -> str:
    return str(artefacts / "onnx-fp32")


@pytest.fixture(scope="session")
def scifact_claim() -> tuple[str, list[str], int]:
    """``CLAIM``, its relevant abstract and 9 others: (claim, documents, index of the relevant one)."""
    data = SHARED / "data" / "scifact"
    corpus = {}
    with open(data / "corpus.jsonl", encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            corpus[row["_id"]] = f"{row['title']} {row['text']}"
    queries = {row["_id"]: row["text"] for row in map(json.loads, open(data / "queries.jsonl", encoding="utf-8"))}
    qrels = [line.split("\t") for line in open(data / "qrels" / "test.tsv", encoding="utf-8").read().splitlines()[1:]]
    query_id, doc_id = next((row[0], row[1]) for row in qrels if row[0] == CLAIM)
    others = [key for key in list(corpus)[:40] if key != doc_id][:9]
    documents = [corpus[key] for key in others[:4]] + [corpus[doc_id]] + [corpus[key] for key in others[4:]]
    return queries[query_id], documents, 4


@pytest.fixture(autouse=True, scope="session")
def _no_model_stack() -> object:
    """After every test of the light floor, none of torch, transformers and sentence-transformers was imported."""
    yield
    loaded = [name for name in HEAVY if name in sys.modules]
    assert not loaded, f"the light floor imported {loaded}"
