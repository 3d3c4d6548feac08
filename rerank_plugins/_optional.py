"""Optional framework imports that fail with the command that fixes them."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["installed", "require"]


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise ``ImportError`` naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f'rerank_plugins needs {module.split(".")[0]} for this feature: pip install "rerank-plugins[{extra}]"'
        ) from error


def installed(module: str) -> bool:
    """Whether ``module`` imports: an optional extra's library is there."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
