"""What the exporting runtimes (OpenVINO, ONNX Runtime) share: the graph's inputs, a real example to trace
with, and a disk cache keyed by the weights' identity, so a model is exported once.

Exports are traced with real inputs of the model's own tokenizer, so every family's embeddings,
positions and attention branches see what they see in use.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from rerank_plugins._version import __version__
from rerank_plugins.runtime.forward import ScoreTokens

__all__ = [
    "EXAMPLE_TOKENS",
    "announced",
    "cache_root",
    "example_inputs",
    "export_key",
    "graph_inputs",
    "save_atomically",
]

EXAMPLE_TOKENS = 320
"""Length of the long row an export is traced with: past ModernBERT's 128-token local attention, so
the traced graph takes the branch every long input takes."""


def cache_root() -> Path:
    """Where exported models are kept: ``$RERANK_PLUGINS_CACHE`` or ``~/.cache/rerank-plugins``."""
    configured = os.environ.get("RERANK_PLUGINS_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "rerank-plugins"


def graph_inputs(network: Any, tokenizer: Any, score_tokens: ScoreTokens | None) -> list[str]:
    """The named inputs of the exported graph: token types only where the model reads them."""
    names = ["input_ids", "attention_mask"]
    token_types = "token_type_ids" in getattr(tokenizer, "model_input_names", ())
    if score_tokens is None and token_types and getattr(network.config, "type_vocab_size", 2) > 0:
        names.append("token_type_ids")  # DeBERTa-v3 has none (type_vocab_size 0), so its graph takes none
    return names


def example_inputs(tokenizer: Any, names: list[str]) -> dict[str, torch.Tensor]:
    """Two real pairs of the model's own tokens, right-padded: the example an export is traced with."""
    long_text = " ".join(["Dicer binds the protein TRBP in human cells."] * 40)  # past local-attention windows
    rows = [
        tokenizer("which protein binds dicer", long_text, truncation="only_second", max_length=EXAMPLE_TOKENS),
        tokenizer("cells", "T cells.", truncation=True),
    ]
    width = max(len(row["input_ids"]) for row in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    example = {name: torch.zeros((len(rows), width), dtype=torch.long) for name in names}
    for index, row in enumerate(rows):
        length = len(row["input_ids"])
        example["input_ids"][index] = pad
        example["input_ids"][index, :length] = torch.tensor(row["input_ids"])
        example["attention_mask"][index, :length] = 1
        if "token_type_ids" in example and "token_type_ids" in row:
            example["token_type_ids"][index, :length] = torch.tensor(row["token_type_ids"])
    return example


def export_key(source: dict[str, Any], network: Any, **versions: Any) -> str:
    """Identity of an export: the weights (name, revision, commit, size and mtime of local weight files),
    the config, this package's version and the exporter's ``versions``."""
    facts = dict(source, package=__version__, **versions)
    facts["config"] = network.config.to_json_string()
    model_dir = Path(str(source.get("name", "")))
    if model_dir.is_dir():
        facts["files"] = sorted(
            (path.name, path.stat().st_size, path.stat().st_mtime_ns)
            for path in model_dir.iterdir()
            if path.suffix in (".safetensors", ".bin")
        )
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def save_atomically(target: Path, filename: str, save: Callable[[Path], None]) -> None:
    """Write an export with ``save(folder / filename)`` into a fresh folder, then move it to ``target`` in one
    step, so a reader never sees half an export (and two processes exporting at once both end well)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    try:
        save(staging / filename)
        os.replace(staging, target)
    except OSError:
        if not (target / filename).is_file():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def announced(what: str) -> Iterator[None]:
    """One line on stderr while an export runs (tens of seconds, once per model): what it is, then how long it
    took. Shown only when stderr is a terminal (tqdm's ``disable=None``) and not under ``TQDM_DISABLE=1``."""
    from rerank_plugins.progress import tqdm

    with tqdm(total=None, desc=f"{what} (once: cached for later runs)", bar_format="{desc} {elapsed}", disable=None):
        yield
