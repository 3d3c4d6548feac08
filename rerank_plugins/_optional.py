"""Optional framework imports that fail with the command that fixes them."""

from __future__ import annotations

import importlib
import importlib.util
import sys
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
    """Whether ``module`` is installed (found, not imported: asking costs no import of a large library)."""
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
