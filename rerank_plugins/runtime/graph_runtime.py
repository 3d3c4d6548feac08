"""``GraphRuntime``: what the runtimes that run an exported graph on numpy arrays (ONNX Runtime, OpenVINO) share.

A torch checkpoint is exported once per weights and cached; the graph is then loaded like an artefact's.
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any

from rerank_plugins.runtime.forward import Forward, ScoreTokens
from rerank_plugins.runtime.interface import ModelRuntime

__all__ = ["GraphRuntime"]


class GraphRuntime(ModelRuntime):
    """A CPU runtime of exported graphs: ``load_graph`` runs one, ``graph_path`` exports a torch module to one."""

    device_types = ("cpu",)
    host_arrays = True

    @abstractmethod
    def graph_path(self, module: Any, example: dict[str, Any], precision: str, source: dict[str, Any]) -> Path:
        """The cached graph of the scoring ``module`` in ``precision``, exported on first use (needs torch)."""

    def export_graph(
        self, network: Any, tokenizer: Any, score_tokens: ScoreTokens | None, precision: str, source: dict[str, Any]
    ) -> Path:
        from rerank_plugins.runtime.exporting import example_inputs, graph_inputs
        from rerank_plugins.runtime.scoring import scoring_module

        module = scoring_module(network, score_tokens)
        example = example_inputs(tokenizer, graph_inputs(network, tokenizer, score_tokens))
        return self.graph_path(module, example, precision, source)

    def prepare(
        self, network: Any, tokenizer: Any, score_tokens: ScoreTokens | None, precision: str, source: dict[str, Any]
    ) -> Forward:
        path = self.export_graph(network, tokenizer, score_tokens, precision, source)
        forward, _ = self.load_graph(path, precision)
        network.to("meta")  # the runtime holds its own weights; keep the module tree (config, shapes), free the memory
        return forward
