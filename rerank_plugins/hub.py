"""Reaching the Hugging Face hub: files from the local cache without the network, and one quick probe
instead of the hub client's retries when the hub does not answer."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

__all__ = [
    "HUB_PROBE_TIMEOUT_S",
    "cached_hub_file",
    "hub_offline",
    "hub_unreachable",
    "local_files_only",
    "read_model_json",
]

logger = logging.getLogger("rerank_plugins.loading")

HUB_PROBE_TIMEOUT_S = 5.0
"""How long the one reachability check of the hub may take before a hub id loads from the cache only."""


def cached_hub_file(model: str, filename: str, revision: str | None = None) -> Path | None:
    """``filename`` of hub model ``model`` from the local cache, without any network access; ``None`` if absent."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(model, filename, revision=revision)
    except ValueError:  # not a valid repository id: the load will say so
        return None
    return Path(found) if isinstance(found, str) else None


def read_model_json(model: str, filename: str, revision: str | None = None) -> Any:
    """A JSON file of a local model directory, or of a hub id in the local cache, without any network access;
    ``None`` when it is absent or unreadable (loading reports those with the model's own error)."""
    path = Path(model, filename) if os.path.isdir(model) else cached_hub_file(model, filename, revision)
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path is not None and path.is_file() else None
    except (OSError, ValueError):
        return None


def hub_unreachable() -> str | None:
    """Why the Hugging Face hub cannot be reached, from one request without retries; ``None`` if it answers.

    Without it, each file of an uncached model costs half a minute of the hub client's retries before
    the error (and a cached model the same, before it falls back to the cache)."""
    from huggingface_hub import constants, get_session

    try:
        get_session().head(constants.ENDPOINT, timeout=HUB_PROBE_TIMEOUT_S)
    except Exception as error:  # the HTTP client's own connection and timeout errors
        return f"{type(error).__name__}: {error}"
    return None


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set: ``is_offline_mode()`` where huggingface_hub has it (1.x), else the
    constant it read at import (0.x)."""
    import huggingface_hub
    from huggingface_hub import constants

    is_offline_mode = getattr(huggingface_hub, "is_offline_mode", None)
    return bool(is_offline_mode() if is_offline_mode is not None else constants.HF_HUB_OFFLINE)


def local_files_only(model: str) -> bool:
    """True when a hub id must load from the local cache: offline mode, or a hub that does not answer."""
    if os.path.isdir(model):
        return False
    if hub_offline():
        return True
    reason = hub_unreachable()
    if reason is None:
        return False
    logger.warning("the Hugging Face hub does not answer (%s): loading %r from the local cache only", reason, model)
    return True
