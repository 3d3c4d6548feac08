"""Loading a cross-encoder once per process, with clear errors for anything that is not one.

A PyTorch checkpoint loads through sentence-transformers; an exported artefact (``rerank-plugins export``), or
a hub model's own ONNX or OpenVINO graph where torch is not installed, loads with no torch at all.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rerank_plugins._optional import installed
from rerank_plugins.artefact import (
    ACTIVATIONS,
    HUB_GRAPHS,
    MANIFEST_FILE,
    ArtefactTokenizer,
    Manifest,
    find_manifest,
    read_json,
)
from rerank_plugins.calibration.identity import model_directory
from rerank_plugins.hub import cached_hub_file, hub_offline, local_files_only, read_model_json
from rerank_plugins.quiet import quiet_loading
from rerank_plugins.runtime.forward import Forward, PackedForward, ScoreTokens
from rerank_plugins.runtime.interface import ModelRuntime
from rerank_plugins.runtime.table import RUNTIME_TABLE

__all__ = [
    "Exported",
    "LoadedModel",
    "check_cross_encoder_reference",
    "exported_source",
    "load_cross_encoder",
    "max_lengths",
    "check_model_reference",
    "has_pooling_module",
    "load_model",
]

logger = logging.getLogger(__name__)

_REGISTRY: dict[tuple[str, str | None, str, str, str, bool], LoadedModel] = {}
_REGISTRY_LOCK = threading.Lock()


@dataclass(frozen=True)
class LoadedModel:
    """A loaded cross-encoder and the facts the scoring code needs about it."""

    name: str
    revision: str | None
    device: str
    precision: str
    network: Any
    """The transformers model (…ForSequenceClassification or …ForCausalLM); ``None`` for an exported graph."""
    tokenizer: Any  # transformers fast tokenizer, or an ArtefactTokenizer
    engine: ModelRuntime
    """The runtime it runs on (``runtime.table.RUNTIME_TABLE``): its padding width and limits."""
    forward: Forward
    activation: Callable[[np.ndarray], np.ndarray]
    """The score activation as a numpy function of fp32 logits (sigmoid unless the model names another)."""
    num_labels: int
    max_length: int
    max_positions: int
    config: Any
    """The model's config: a transformers config, or the ``config.json`` dict of an exported graph."""
    commit: str | None = None
    """The hub commit the weights came from, where known."""
    score_tokens: ScoreTokens | None = None
    """A causal-LM reranker's (true, false) token ids; ``None`` for sequence classifiers."""
    packed_forward: PackedForward | None = None
    """The unpadded forward pass over packed batches, for torch [CLS]-only encoders; ``None`` elsewhere."""

    @property
    def runtime(self) -> str:
        """The runtime's name: ``"torch"``, ``"openvino"`` or ``"onnx"``."""
        return self.engine.name

    @property
    def max_padding(self) -> int | None:
        """Most pad tokens a row of a batch may carry; ``None`` for no limit."""
        return self.engine.max_padding(self.config)

    @property
    def is_causal(self) -> bool:
        """True for causal-LM rerankers, which score a prompt's next token."""
        return self.score_tokens is not None


def _is_local_reference(model: str) -> bool:
    """A Hugging Face id is ``name`` or ``org/name``; anything else is meant as a local path."""
    if os.path.exists(model):
        return True
    return model.startswith(("/", ".", "~")) or model.count("/") > 1 or os.sep != "/" and os.sep in model


WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pt", "*.pth", "*.h5", "*.msgpack")
"""Files a model directory's weights may come in (sharded ones with their index)."""


def check_model_reference(model: str, revision: str | None = None) -> str:
    """Cheap checks done at construction, with no network: a local path must exist and hold a ``config.json``
    and weights; a hub id must be in the local cache when ``HF_HUB_OFFLINE`` is set.

    Returns the resolved local path, or the hub id as given."""
    if not isinstance(model, str) or not model.strip():
        raise TypeError(f"model must be a Hugging Face id or a local directory, got {model!r}")
    if not _is_local_reference(model):
        if hub_offline() and cached_hub_file(model, "config.json", revision) is None:
            raise FileNotFoundError(
                f"No model directory at {model!r} (relative to {os.getcwd()}), and no hub model {model!r} in the "
                "local Hugging Face cache (HF_HUB_OFFLINE is set): give an existing local directory "
                "(model='/path/to/model', --model PATH) or download the model where the hub is reachable"
            )
        return model
    path = Path(model).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"No model directory at {str(path)!r}: give an existing local directory "
            "or a Hugging Face id such as 'cross-encoder/ms-marco-MiniLM-L6-v2'"
        )
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"{str(path)!r} has no config.json: expected a Hugging Face cross-encoder "
            "directory (config.json, model weights, tokenizer files)"
        )
    exported = (path / MANIFEST_FILE).is_file() or any((path / graph).is_file() for graph in HUB_GRAPHS.values())
    if not exported and not any(next(path.glob(pattern), None) for pattern in WEIGHT_PATTERNS):
        raise FileNotFoundError(
            f"{str(path)!r} has a config.json but no weights (model.safetensors or pytorch_model.bin): "
            "copy the model's weight files into it, or save the model there with save_pretrained"
        )
    return str(path.resolve())


def check_cross_encoder_reference(model: str, revision: str | None = None) -> str:
    """``check_model_reference``, and a bi-encoder refused at once: a local directory's ``modules.json`` is
    read, and a hub id's when it is in the local cache (no network, no weights)."""
    reference = check_model_reference(model, revision)
    _refuse_bi_encoder(model, read_model_json(reference, "modules.json", revision))
    return reference


def has_pooling_module(modules: Any) -> bool:
    """Whether a parsed ``modules.json`` lists a Pooling module: the mark of a sentence-transformers bi-encoder."""
    return isinstance(modules, list) and any(
        "Pooling" in str(entry.get("type", "")) for entry in modules if isinstance(entry, dict)
    )


def _refuse_bi_encoder(model: str, modules: Any) -> None:
    """A sentence-transformers bi-encoder (a Pooling module in ``modules.json``) cannot score pairs."""
    if has_pooling_module(modules):
        raise ValueError(
            f"{model!r} is a sentence-transformers bi-encoder (it has a Pooling module), not a cross-encoder. "
            "Expected a model that scores (query, document) pairs, such as "
            "'cross-encoder/ms-marco-MiniLM-L6-v2'. Use bi-encoders for retrieval (FaissRetriever)."
        )


def _read_config(model: str, revision: str | None, trust_remote_code: bool, local_only: bool) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(
            model, revision=revision, trust_remote_code=trust_remote_code, local_files_only=local_only
        )
    except OSError as error:
        if os.path.isdir(model):
            raise
        why = " (HF_HUB_OFFLINE is set)" if hub_offline() else " (the hub did not answer)"
        raise OSError(
            f"Could not load {model!r}: there is no such local directory (relative to {os.getcwd()}), "
            "and it is not in the local Hugging Face cache"
            + (why if local_only else " and the hub did not provide it")
            + ". Download it where the hub is reachable, or give a local directory holding config.json, the "
            "weights and the tokenizer (model='/path/to/model' in Python, --model PATH on the command line)."
        ) from error


def _check_is_cross_encoder(model: str, config: Any) -> tuple[int, bool]:
    """Refuse bi-encoders and models that cannot score pairs before any weights are read.

    Returns the number of labels and whether the model is a causal-LM reranker (``*ForCausalLM``).
    """
    architectures = list(getattr(config, "architectures", None) or [])
    _refuse_bi_encoder(model, read_model_json(model, "modules.json") if os.path.isdir(model) else None)
    if getattr(config, "is_encoder_decoder", False):
        raise ValueError(
            f"{model!r} is an encoder-decoder model ({', '.join(architectures) or config.model_type}); "
            "rerank-plugins scores sequence classifiers (BERT, XLM-R, ELECTRA, DeBERTa, ModernBERT) and "
            "causal-LM rerankers (Qwen3-Reranker, mxbai-rerank-v2, bge-reranker-v2-gemma)."
        )
    if architectures and architectures[0].endswith("ForCausalLM"):
        return 1, True
    if architectures and not any(name.endswith("ForSequenceClassification") for name in architectures):
        raise ValueError(
            f"{model!r} is a {', '.join(architectures)} model, not a cross-encoder. Expected a "
            "*ForSequenceClassification model with one relevance logit (or two labels), such as "
            "'cross-encoder/ms-marco-MiniLM-L6-v2', or a causal-LM reranker (*ForCausalLM) such as "
            "'Qwen/Qwen3-Reranker-0.6B'."
        )
    num_labels = int(getattr(config, "num_labels", 1))
    if num_labels not in (1, 2):
        labels = getattr(config, "id2label", {})
        raise ValueError(
            f"{model!r} is a classifier with {num_labels} labels ({labels}); a reranker needs one relevance "
            "logit or two labels (not relevant, relevant)."
        )
    return num_labels, False


def max_lengths(encoder: Any) -> tuple[int, int]:
    """The tokens a pair may take and the positions the network has: the cross-encoder's own limit
    (``max_seq_length`` in newer sentence-transformers, ``max_length`` in 5.0, read by the name this version has,
    never through the newer versions' deprecated alias), capped at the positions."""
    max_positions = int(getattr(encoder.model.config, "max_position_embeddings", 512))
    name = "max_seq_length" if hasattr(encoder, "max_seq_length") else "max_length"
    configured: Any = getattr(encoder, name, None)
    return min(int(configured or max_positions), max_positions), max_positions


def _score_tokens(model: str, encoder: Any) -> ScoreTokens:
    """The (true, false) token ids of the LogitScore module sentence-transformers built for a causal LM."""
    from sentence_transformers.cross_encoder.modules import LogitScore

    for module in encoder:
        if isinstance(module, LogitScore):
            return int(module.true_token_id), None if module.false_token_id is None else int(module.false_token_id)
    raise ValueError(f"{model!r} is a causal LM without a LogitScore module: nothing says which tokens score")


def load_cross_encoder(
    model: str, revision: str | None, device: str, trust_remote_code: bool
) -> tuple[Any, int, ScoreTokens | None]:
    """The sentence-transformers ``CrossEncoder`` of a PyTorch checkpoint, its label count and (for a causal LM)
    its scoring tokens, after the checks that refuse anything that is not a cross-encoder."""
    if not installed("torch") or not installed("sentence_transformers"):
        raise ImportError(
            f"{model!r} is a PyTorch checkpoint and PyTorch is not installed: pip install \"rerank-plugins[torch]\", "
            f"or export it once where torch is installed (rerank-plugins export {model} --runtime onnx --out DIR) "
            "and load DIR"
        )
    from sentence_transformers import CrossEncoder

    local_only = local_files_only(model)
    config = _read_config(model, revision, trust_remote_code, local_only)
    num_labels, causal = _check_is_cross_encoder(model, config)
    try:
        with quiet_loading(model):
            encoder = CrossEncoder(
                model,
                device=device,
                revision=revision,
                trust_remote_code=trust_remote_code,
                local_files_only=local_only,
            )
    except Exception as error:  # safetensors, torch and transformers each raise their own types
        raise RuntimeError(f"Could not load the cross-encoder weights or tokenizer of {model!r}: {error}") from error
    tokenizer = encoder.tokenizer
    if tokenizer is None or not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"{model!r} has no fast (Rust) tokenizer (tokenizer.json); rerank-plugins needs one")
    return encoder, num_labels, _score_tokens(model, encoder) if causal else None


def activation_name(activation: Any) -> str | None:
    """``sigmoid`` or ``identity`` for sentence-transformers' activation module; ``None`` for any other."""
    kind = type(activation).__name__
    return {"Sigmoid": "sigmoid", "Identity": "identity"}.get(kind)


def _numpy_activation(activation: Any) -> Callable[[np.ndarray], np.ndarray]:
    """The model's activation as a numpy function: sigmoid and identity directly, any other through torch."""
    name = activation_name(activation)
    if name is not None:
        return ACTIVATIONS[name]

    def through_torch(values: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            result: np.ndarray = activation(torch.from_numpy(values)).float().numpy()
        return result

    return through_torch


def _load(
    model: str, revision: str | None, device: str, precision: str, runtime: str, trust_remote_code: bool
) -> LoadedModel:
    encoder, num_labels, score_tokens = load_cross_encoder(model, revision, device, trust_remote_code)
    tokenizer = encoder.tokenizer
    network = encoder.model
    network.eval()
    engine = RUNTIME_TABLE[runtime]
    source = {"name": model, "revision": revision, "commit": getattr(network.config, "_commit_hash", None)}
    with quiet_loading(model):  # an export reads attributes that log notices
        forward = engine.prepare(network, tokenizer, score_tokens, precision, source)
    max_length, max_positions = max_lengths(encoder)
    logger.info(
        "loaded %s on %s with %s in %s (max_length %d)",
        model,
        device,
        runtime,
        precision,
        max_length,
    )
    return LoadedModel(
        name=model,
        revision=revision,
        device=device,
        precision=precision,
        network=network,
        tokenizer=tokenizer,
        engine=engine,
        forward=forward,
        activation=_numpy_activation(encoder.activation_fn),
        num_labels=num_labels,
        max_length=max_length,
        max_positions=max_positions,
        config=network.config,
        commit=source["commit"],
        score_tokens=score_tokens,
        packed_forward=engine.packed(network, score_tokens),
    )


@dataclass(frozen=True)
class Exported:
    """An exported graph a model runs from without torch: its directory and manifest."""

    directory: Path
    manifest: Manifest

    def settings(self, device: str | None, runtime: str, precision: str) -> tuple[str, str, str]:
        """The (device, runtime, precision) it runs in: the manifest's, which explicit choices must match."""
        manifest = self.manifest
        if device not in (None, "auto", "cpu"):
            where = f"{str(self.directory)!r} is an exported {manifest.runtime} graph"
            raise ValueError(f"{where}: it runs on the CPU only, not on device {device!r}")
        if runtime not in ("auto", manifest.runtime):
            raise ValueError(
                f"{str(self.directory)!r} is an exported graph for runtime={manifest.runtime!r}, not {runtime!r}: "
                f"export it again with --runtime {runtime}, or leave runtime at 'auto'"
            )
        if precision not in ("auto", manifest.precision):
            raise ValueError(
                f"{str(self.directory)!r} holds {manifest.precision} weights, not {precision}: export it again with "
                f"--precision {precision}, or leave precision at 'auto'"
            )
        RUNTIME_TABLE[manifest.runtime].check("cpu", manifest.precision)
        return "cpu", manifest.runtime, manifest.precision


def _download_hub_graph(model: str, revision: str | None, runtime: str) -> Path | None:
    """A hub model's config, tokenizer and sentence-transformers graph for ``runtime`` (no weights), fetched
    where the hub is reachable; ``None`` when it has no such graph."""
    from huggingface_hub import snapshot_download

    graphs = [graph for name, graph in HUB_GRAPHS.items() if runtime in ("auto", name)]
    patterns = ["*.json", "*.txt", "*.model", *graphs, *(graph.replace(".xml", ".bin") for graph in graphs)]
    try:
        folder = Path(snapshot_download(model, revision=revision, allow_patterns=patterns))
    except Exception as error:  # the hub client raises a type per failure (offline, not found, gated)
        raise OSError(f"Could not fetch the exported graph of {model!r} from the hub: {error}") from error
    return folder if any((folder / graph).is_file() for graph in graphs) else None


def exported_source(model: str, revision: str | None, runtime: str) -> Exported | None:
    """Where ``model`` runs from an exported graph: an artefact of ``rerank-plugins export`` always, a hub
    model's own ``onnx/`` or ``openvino/`` graph when torch is not installed; ``None`` for the torch checkpoint.

    Without torch, a checkpoint with no graph is refused in one line that names the extra and ``export``."""
    directory = model_directory(model)
    if directory is not None and (directory / MANIFEST_FILE).is_file():
        return Exported(directory, Manifest.read(directory))
    if installed("torch"):
        return None
    if directory is None and not hub_offline():
        directory = _download_hub_graph(model, revision, runtime)
    manifest = None if directory is None else find_manifest(directory, runtime)
    if directory is None or manifest is None:
        raise ImportError(
            f"{model!r} is a PyTorch checkpoint with no exported graph for runtime={runtime!r}, and PyTorch is not "
            f'installed: pip install "rerank-plugins[torch]", or export it once where torch is installed '
            f"(rerank-plugins export {model} --runtime onnx --out DIR) and load DIR"
        )
    return Exported(directory, manifest)


def _load_exported(exported: Exported) -> LoadedModel:
    """An exported graph loaded with its runtime and the tokenizer's files alone: no torch, no transformers."""
    directory, manifest = exported.directory, exported.manifest
    engine = RUNTIME_TABLE[manifest.runtime]
    forward, input_names = engine.load_graph(directory / manifest.graph, manifest.precision)
    tokenizer = ArtefactTokenizer(directory, input_names)
    logger.info(
        "loaded the exported %s graph %s in %s (max_length %d)",
        manifest.runtime,
        directory,
        manifest.precision,
        manifest.max_length,
    )
    return LoadedModel(
        name=str(directory),
        revision=None,
        device="cpu",
        precision=manifest.precision,
        network=None,
        tokenizer=tokenizer,
        engine=engine,
        forward=forward,
        activation=ACTIVATIONS[manifest.activation],
        num_labels=manifest.num_labels,
        max_length=manifest.max_length,
        max_positions=manifest.max_positions,
        config=read_json(directory / "config.json"),
        commit=manifest.source.get("commit"),
    )


def load_model(
    model: str, *, revision: str | None, device: str, precision: str, runtime: str, trust_remote_code: bool
) -> LoadedModel:
    """Load ``model`` or return the instance already loaded with the same settings in this process."""
    key = (model, revision, device, precision, runtime, trust_remote_code)
    with _REGISTRY_LOCK:
        loaded = _REGISTRY.get(key)
        if loaded is None:
            exported = exported_source(model, revision, runtime)
            if exported is not None:
                loaded = _load_exported(exported)
            else:
                loaded = _load(model, revision, device, precision, runtime, trust_remote_code)
            _REGISTRY[key] = loaded
        return loaded
