"""A local Hugging Face cache holding shared models under hub ids, so hub-id loading runs offline.

The layout is the one ``huggingface_hub`` writes (``models--org--name/refs/main`` naming a snapshot
folder of files), with the files linked from a local model directory. With ``HF_HUB_OFFLINE=1`` the
real loading code resolves the id from it exactly as from a cache filled by a download.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def add_to_hub_cache(cache: Path, repo_id: str, source: Path) -> Path:
    """Lay ``source``'s files out in ``cache`` as ``repo_id``'s main revision; returns the snapshot folder."""
    commit = hashlib.sha1(f"{repo_id}:{source.resolve()}".encode()).hexdigest()
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    for path in source.rglob("*"):
        if path.is_file():
            target = snapshot / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                os.symlink(path.resolve(), target)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit, encoding="utf-8")
    return snapshot
