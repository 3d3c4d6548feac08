"""The commands by name: the module that builds and runs each, and its one-line help.

Kept apart from the command modules so ``rerank-plugins --help`` lists them without importing any of them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

__all__ = ["COMMANDS", "Command"]


@dataclass(frozen=True)
class Command:
    """A subcommand: its module under ``rerank_plugins.cli`` (``add_parser`` and ``run``) and its help line."""

    module: str
    help: str

    def load(self) -> ModuleType:
        """The command's module, imported now (with the libraries it needs)."""
        return importlib.import_module(f"rerank_plugins.cli.{self.module}")


COMMANDS = {
    "demo": Command("demo", "retrieve and rerank sample claims over a bundled corpus"),
    "rank": Command("rank", "rank documents for a query; JSONL out"),
    "eval": Command("evaluate", "evaluate retrieval, reranking and fusion on BEIR-format data"),
    "calibrate": Command(
        "calibrate", "calibrate relevance_score on judged data (P(relevant)); thresholds by the precision they buy"
    ),
    "bench": Command("bench", "benchmark reranking speed and fidelity against sentence-transformers"),
    "train": Command("train", "fine-tune a cross-encoder on your own relevance judgments"),
    "export": Command("export", "export a model to a self-contained ONNX or OpenVINO artefact that runs without torch"),
    "serve": Command(
        "serve", "serve the Cohere, Jina, TEI, Voyage and our own rerank APIs over HTTP, optionally on Ray Serve"
    ),
}
"""Every command in the order ``--help`` lists them."""
