"""Exported scoring artefacts: what ``rerank-plugins export`` writes, and reading one (or a hub model's ONNX or
OpenVINO files) with no torch, transformers or sentence-transformers installed.

An artefact is a directory: the graph, the tokenizer's files, ``config.json`` and a manifest
(``rerank-export.json``) that records the score head's settings and the source weights' digest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from rerank_plugins.calibration.identity import EXPORT_MANIFEST

__all__ = [
    "ACTIVATIONS",
    "ArtefactTokenizer",
    "FORMAT_VERSION",
    "HUB_GRAPHS",
    "MANIFEST_FILE",
    "Manifest",
    "activation_from_config",
    "find_manifest",
    "read_json",
    "sigmoid",
]

MANIFEST_FILE = EXPORT_MANIFEST
"""The manifest's file name inside an artefact: its presence makes a directory an artefact."""
FORMAT_VERSION = 1
HUB_GRAPHS = {"onnx": "onnx/model.onnx", "openvino": "openvino/openvino_model.xml"}
"""Where sentence-transformers keeps a model's ONNX and OpenVINO graphs (fp32) on the hub."""


def sigmoid(values: np.ndarray) -> np.ndarray:
    """The logistic function in fp32, without overflow warnings at large margins."""
    with np.errstate(over="ignore"):
        out: np.ndarray = (1.0 / (1.0 + np.exp(-np.asarray(values, dtype=np.float32)))).astype(np.float32)
    return out


def _identity(values: np.ndarray) -> np.ndarray:
    return values


ACTIVATIONS = {"sigmoid": sigmoid, "identity": _identity}
"""The score activations an artefact may name, as numpy functions of the fp32 logits."""


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; ``{}`` when the file is absent."""
    if not path.is_file():
        return {}
    value = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(value, dict):
        raise ValueError(f"{str(path)!r} holds no JSON object")
    return value


def activation_from_config(config: dict[str, Any]) -> str:
    """The activation sentence-transformers applies to a one-logit model, as its ``config.json`` records it:
    ``sigmoid`` unless an identity is named (newer ``sentence_transformers.activation_fn``, older
    ``sbert_ce_default_activation_function``)."""
    saved = config.get("sentence_transformers", {})
    named = saved.get("activation_fn") if isinstance(saved, dict) else None
    named = named or config.get("sbert_ce_default_activation_function") or "Sigmoid"
    if str(named).endswith("Identity"):
        return "identity"
    if str(named).endswith("Sigmoid"):
        return "sigmoid"
    raise ValueError(f"the model's activation {named!r} is neither Sigmoid nor Identity: export it with torch")


@dataclass(frozen=True)
class Manifest:
    """What an artefact holds and how its scores are read: runtime, precision, graph file, score head, source."""

    runtime: str
    precision: str
    graph: str
    num_labels: int
    activation: str
    max_length: int
    max_positions: int
    source: dict[str, Any] = field(default_factory=dict)
    """The weights it was exported from: ``name``, ``revision``, ``commit`` and ``weights_digest``."""
    checks: dict[str, Any] = field(default_factory=dict)
    """Its scores against the source model's on a fixed sample, measured by ``export``."""

    def to_json(self) -> dict[str, Any]:
        from rerank_plugins._version import __version__

        return {"format": FORMAT_VERSION, "package": __version__, **self.__dict__}

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        """The manifest of the artefact in ``directory``, refused with the reason when it cannot be used."""
        data = read_json(directory / MANIFEST_FILE)
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(
                f"{str(directory)!r} is an artefact of format {data.get('format')!r}; this version of "
                f"rerank-plugins reads format {FORMAT_VERSION}: export the model again"
            )
        names = {name for name in cls.__dataclass_fields__}
        manifest = cls(**{key: value for key, value in data.items() if key in names})
        if manifest.activation not in ACTIVATIONS:
            raise ValueError(f"{str(directory)!r}: unknown activation {manifest.activation!r}")
        return manifest

    @classmethod
    def of_hub_layout(cls, directory: Path, runtime: str) -> Manifest:
        """The manifest a hub model with sentence-transformers' ``onnx/`` or ``openvino/`` graph implies (fp32)."""
        config = read_json(directory / "config.json")
        num_labels = len(config.get("id2label") or {}) or int(config.get("num_labels", 1))
        max_positions = int(config.get("max_position_embeddings", 512))
        configured = read_json(directory / "sentence_bert_config.json").get("max_seq_length")
        if configured is None:
            limit = read_json(directory / "tokenizer_config.json").get("model_max_length")
            configured = limit if isinstance(limit, int) and limit < 1_000_000 else max_positions
        return cls(
            runtime=runtime,
            precision="fp32",
            graph=HUB_GRAPHS[runtime],
            num_labels=num_labels,
            activation=activation_from_config(config),
            max_length=min(int(configured), max_positions),
            max_positions=max_positions,
            source={"name": str(directory), "revision": None, "commit": config.get("_commit_hash")},
        )


def find_manifest(directory: Path, runtime: str) -> Manifest | None:
    """The manifest of an artefact in ``directory``, or of its hub layout graph for ``runtime`` (``auto``: the
    first found); ``None`` when it holds neither."""
    if (directory / MANIFEST_FILE).is_file():
        return Manifest.read(directory)
    for name, graph in HUB_GRAPHS.items():
        if runtime in ("auto", name) and (directory / graph).is_file():
            return Manifest.of_hub_layout(directory, name)
    return None


def _token_content(value: Any) -> str | None:
    """A special token as ``tokenizer_config.json`` writes it: a string, or a dict with its ``content``."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


class ArtefactTokenizer:
    """The few facts of a fast tokenizer the pair encoder reads, from the saved files alone (no transformers):
    the Rust tokenizer, the pad token's id and the inputs the graph takes."""

    is_fast = True

    def __init__(self, directory: Path, input_names: list[str]) -> None:
        path = directory / "tokenizer.json"
        if not path.is_file():
            raise FileNotFoundError(f"{str(directory)!r} has no tokenizer.json: rerank-plugins needs a fast tokenizer")
        self.backend_tokenizer = Tokenizer.from_file(str(path))
        self.model_input_names = list(input_names)
        config = {**read_json(directory / "special_tokens_map.json"), **read_json(directory / "tokenizer_config.json")}
        pad = _token_content(config.get("pad_token"))
        pad_id = None if pad is None else self.backend_tokenizer.token_to_id(pad)
        padding = self.backend_tokenizer.padding
        if pad_id is None and padding is not None:
            pad_id = padding.get("pad_id")
        self.pad_token_id: int | None = pad_id
