"""The notebooks' stored outputs (regenerated with ``pytest --nbmake --overwrite notebooks``) are clean: what a
newcomer sees when opening them holds no load chatter from our code paths."""

from __future__ import annotations

import json
import re

import pytest

from tests.paths import REPO

NOISE = ("Loading weights", "LOAD REPORT", "IProgress not found", "loss_type=")
OURS_ONLY = [
    "01_langchain_rerank.ipynb",
    "03_evaluation.ipynb",
    "04_calibration.ipynb",
    "05_wikiqa_nothing_relevant.ipynb",
]
"""Notebooks whose models are all loaded by rerank-plugins (02 also loads LlamaIndex's HuggingFaceEmbedding,
whose own load output is LlamaIndex's and the reader's to quiet)."""


@pytest.mark.parametrize("name", OURS_ONLY)
def test_stored_outputs_hold_no_load_noise(name: str) -> None:
    notebook = json.loads((REPO / "notebooks" / name).read_text(encoding="utf-8"))
    outputs = [output for cell in notebook["cells"] for output in cell.get("outputs", [])]
    assert outputs, "the notebook is stored with its outputs"
    text = "".join("".join(output.get("text", "")) for output in outputs)
    assert not [noise for noise in NOISE if noise in text]


MACHINE_PATH = re.compile(r"(?<![\w.])/(?:work|home|root|tmp|Users|private|var)/|site-packages|[A-Z]:\\")


@pytest.mark.parametrize("name", sorted(path.name for path in (REPO / "notebooks").glob("*.ipynb")))
def test_stored_outputs_hold_no_path_of_the_machine_that_ran_them(name: str) -> None:
    notebook = json.loads((REPO / "notebooks" / name).read_text(encoding="utf-8"))
    texts = [
        "".join(output.get("text", "")) + "".join(output.get("data", {}).get("text/plain", ""))
        for cell in notebook["cells"]
        for output in cell.get("outputs", [])
    ]
    found = [match.group(0) for text in texts for match in [MACHINE_PATH.search(text)] if match]
    assert not found, f"{name} shows paths of the machine that ran it: {found[:3]}"
