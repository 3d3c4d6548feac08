"""Fixtures of the service tests: the local core a served answer must equal."""

from __future__ import annotations

import pytest

from rerank_plugins import Reranker


@pytest.fixture(scope="session")
def served_core(random_model: str) -> Reranker:
    """The core ``rerank-plugins serve`` runs in these tests (``ServeProcess``: torch, fp32) on the random model:
    every served score is checked against this one's."""
    return Reranker(random_model, runtime="torch", precision="fp32")
