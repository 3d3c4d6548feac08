"""The public surface is small and pinned; importing it needs no framework."""

from __future__ import annotations

import subprocess
import sys

import rerank_plugins


def test_all_is_pinned() -> None:
    assert sorted(rerank_plugins.__all__) == [
        "DEFAULT_MODEL",
        "RankedResult",
        "Reranker",
        "ScoringStats",
        "__version__",
    ]
    for name in rerank_plugins.__all__:
        assert hasattr(rerank_plugins, name)


def test_import_works_without_any_framework_installed() -> None:
    blocker = (
        "import sys\n"
        "blocked = ('langchain_core', 'langchain', 'langchain_classic', 'llama_index', 'llama_index.core', 'faiss')\n"
        "for name in blocked:\n"
        "    sys.modules[name] = None\n"
        "import rerank_plugins\n"
        "assert rerank_plugins.Reranker and rerank_plugins.RankedResult\n"
        "assert not [m for m in sys.modules if m.startswith(('langchain', 'llama_index')) and sys.modules[m]]\n"
    )
    subprocess.run([sys.executable, "-c", blocker], check=True)


def test_import_changes_no_global_state() -> None:
    probe = (
        "import logging, torch\n"
        "threads = torch.get_num_threads(); handlers = list(logging.getLogger().handlers)\n"
        "import rerank_plugins\n"
        "assert torch.get_num_threads() == threads\n"
        "assert logging.getLogger().handlers == handlers\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True)
