"""The adapters' metadata keys: defined once, framework-free, and their values pinned (they are public output)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rerank_plugins import metadata_keys

PINNED = {
    "DOCUMENT_ID_KEY": "rerank_document_id",
    "FUSED_SCORE_KEY": "fused_score",
    "P_ANY_RELEVANT_KEY": "rerank_p_any_relevant",
    "RELEVANCE_SCORE_KEY": "relevance_score",
    "RERANK_SCORE_KEY": "rerank_score",
    "RETRIEVAL_RANK_KEY": "retrieval_rank",
    "RETRIEVAL_SCORE_KEY": "retrieval_score",
    "SPAN_KEY": "rerank_span",
    "TEXT_LENGTH_KEY": "rerank_text_length",
    "TRUNCATED_TOKENS_KEY": "rerank_truncated_tokens",
    "WINDOWS_KEY": "rerank_windows",
}


def test_key_values_are_pinned() -> None:
    assert sorted(metadata_keys.__all__) == sorted(PINNED)
    assert {name: getattr(metadata_keys, name) for name in metadata_keys.__all__} == PINNED


def test_keys_import_without_any_framework() -> None:
    blocker = (
        "import sys\n"
        "for name in ('langchain_core', 'llama_index', 'llama_index.core'):\n"
        "    sys.modules[name] = None\n"
        "import rerank_plugins.metadata_keys\n"
    )
    subprocess.run([sys.executable, "-c", blocker], check=True)


def test_langchain_adapter_keeps_its_key_names() -> None:
    pytest.importorskip("langchain_core")
    from rerank_plugins.langchain import documents

    for name in documents.__all__:
        if name.endswith("_KEY"):
            assert getattr(documents, name) == PINNED[name], name


def test_llama_index_adapter_keeps_its_key_names() -> None:
    pytest.importorskip("llama_index.core")
    from rerank_plugins.llama_index import postprocessor

    for name in postprocessor.__all__:
        if name.endswith("_KEY"):
            assert getattr(postprocessor, name) == PINNED[name], name
