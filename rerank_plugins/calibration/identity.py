"""Which weights a loaded model runs, as a digest of its weight files, so a calibration can name its model."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

from rerank_plugins.hub import cached_hub_file

__all__ = ["model_directory", "weights_digest"]

EXPORT_MANIFEST = "rerank-export.json"
"""An exported artefact's manifest (``artefact.MANIFEST_FILE``; named here so this floor imports nothing above)."""
WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "model*.bin")
_DIGESTS: dict[tuple[str, int, int], str] = {}
_LOCK = threading.Lock()


def model_directory(model: str) -> Path | None:
    """The directory holding ``model``'s files: the local path, or the hub id's snapshot in the local cache."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    config = cached_hub_file(model, "config.json")
    return config.parent if config is not None else None


def _file_digest(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _LOCK:
        if key in _DIGESTS:
            return _DIGESTS[key]
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    with _LOCK:
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def _exported_digest(directory: Path) -> str | None:
    """The source weights' digest an exported artefact's manifest records (its graph runs those weights)."""
    manifest = directory / EXPORT_MANIFEST
    if not manifest.is_file():
        return None
    source = json.loads(manifest.read_text(encoding="utf-8")).get("source", {})
    digest = source.get("weights_digest") if isinstance(source, dict) else None
    return digest if isinstance(digest, str) else None


def weights_digest(model: str) -> str | None:
    """SHA-256 over the model's weight files (read once per process per file); ``None`` when none is found."""
    directory = model_directory(model)
    if directory is None:
        return None
    exported = _exported_digest(directory)
    if exported is not None:
        return exported
    files = sorted({found for pattern in WEIGHT_PATTERNS for found in directory.glob(pattern) if found.is_file()})
    if not files:
        return None
    combined = hashlib.sha256()
    for path in files:
        combined.update(f"{path.name}:{_file_digest(path)}\n".encode())
    return combined.hexdigest()
