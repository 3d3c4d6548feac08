"""Runtimes: the [CLS]-only forward pass, OpenVINO (fp32, bf16, int8) and its on-disk export cache."""

from __future__ import annotations

import io
import logging
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification

from rerank_plugins import Reranker
from rerank_plugins.loading import _REGISTRY
from rerank_plugins.runtime import resolve_runtime
from rerank_plugins.runtime.cls_only import ClsOnlyEncoder
from rerank_plugins.runtime.exporting import cache_root
from rerank_plugins.runtime.openvino import OpenVINORuntime


def _padded_batch() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(1000, 20000, (6, 40), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    for row, length in enumerate((40, 33, 25, 12, 7, 3)):
        attention_mask[row, length:] = 0
        input_ids[row, length:] = 0
    token_type_ids = torch.zeros_like(input_ids)
    token_type_ids[:, 10:] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}


@torch.inference_mode()
def test_cls_only_forward_equals_the_full_forward_pass(random_model: str) -> None:
    network = AutoModelForSequenceClassification.from_pretrained(random_model).eval()
    inputs = _padded_batch()
    expected = network(**inputs).logits
    actual = ClsOnlyEncoder(network)(**inputs)
    assert actual.shape == expected.shape == (6, 1)
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0)


def test_cls_only_refuses_other_architectures() -> None:
    with pytest.raises(ValueError, match="not an encoder classifier of the families"):
        ClsOnlyEncoder(torch.nn.Linear(2, 2))


@pytest.mark.slow
@pytest.mark.parametrize("precision, top10_overlap", [("bf16", 0.9), ("int8", 0.8)])
def test_openvino_low_precision_ranks_like_fp32_on_science_text(
    trained_model: str,
    scifact_queries: dict[str, str],
    scifact_test_qrels: dict[str, set[str]],
    scifact_slice: dict[str, str],
    precision: str,
    top10_overlap: float,
) -> None:
    others = list(scifact_slice)[-27:]
    jobs = [
        (scifact_queries[query_id], [scifact_slice[doc_id] for doc_id in [*sorted(judged), *others][:30]])
        for query_id, judged in list(scifact_test_qrels.items())[:3]
    ]
    reference = Reranker(trained_model, precision="fp32", runtime="torch")
    fast = Reranker(trained_model, precision=precision, runtime="openvino")  # type: ignore[arg-type]
    for query, texts in jobs:
        expected = reference.score(query, texts)
        scores = fast.score(query, texts)
        assert all(type(score) is float for score in scores)
        top = set(np.argsort(expected)[::-1][:10])
        assert len(top & set(np.argsort(scores)[::-1][:10])) / 10 >= top10_overlap
        assert np.corrcoef(expected, scores)[0, 1] > 0.98
    assert fast.stats.pairs == len({(query, text) for query, texts in jobs for text in texts})


def _forget_openvino_models(model: str) -> None:
    """As in a new process: no OpenVINO model of ``model`` is loaded yet."""
    for key in [key for key in _REGISTRY if key[0] == model and key[4] == "openvino"]:
        del _REGISTRY[key]


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal, as a user's shell is."""

    def isatty(self) -> bool:
        return True


@pytest.mark.slow
def test_exports_are_cached_on_disk_and_reused(
    random_model: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RERANK_PLUGINS_CACHE", str(tmp_path))  # an empty cache: other tests exported this model
    _forget_openvino_models(random_model)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with caplog.at_level(logging.INFO, logger="rerank_plugins"):
        first = Reranker(random_model, precision="fp32", runtime="openvino").score("q", ["a document"])
    said = terminal.getvalue()  # a wait of many seconds is announced on a terminal: one line, redrawn with its time
    shown = r"Exporting .* to OpenVINO \(fp32 weights\) \(once: cached for later runs\) 00:\d\d\n"
    assert said.count("\n") == 1 and re.fullmatch(shown, said.split("\r")[-1])
    exported = sorted(cache_root().glob("openvino/*/model.xml"))
    assert exported and all(str(path).startswith(str(cache_root())) for path in exported)
    _forget_openvino_models(random_model)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="rerank_plugins"):
        again = Reranker(random_model, precision="bf16", runtime="openvino").score("q", ["a document"])
    assert "exporting" not in caplog.text  # bf16 compiles the same fp32-weight export
    assert terminal.getvalue() == said  # and says nothing
    assert sorted(cache_root().glob("openvino/*/model.xml")) == exported
    assert again == pytest.approx(first, abs=0.1)
    Reranker(random_model, precision="int8", runtime="openvino").score("q", ["a document"])
    assert len(list(cache_root().glob("openvino/*/model.xml"))) == len(exported) + 1  # int8 weights: own export


def test_auto_runs_openvino_on_cpu_when_installed(random_model: str) -> None:
    reranker = Reranker(random_model, device="cpu")
    assert reranker.runtime == "openvino" and reranker.options()["runtime"] == "openvino"
    assert "runtime='openvino'" in repr(reranker)


def test_runtime_choices_are_checked(monkeypatch: pytest.MonkeyPatch, random_model: str) -> None:
    with pytest.raises(ValueError, match="runtime must be one of"):
        resolve_runtime("tensorrt", "cpu", "fp32")
    with pytest.raises(ValueError, match="int8.*OpenVINO"):
        Reranker(random_model, precision="int8", runtime="torch")
    with pytest.raises(ValueError, match="CPU only"):
        resolve_runtime("openvino", "cuda", "fp32")
    with pytest.raises(ValueError, match="not 'fp16'"):
        resolve_runtime("openvino", "cpu", "fp16")
    monkeypatch.setattr(OpenVINORuntime, "available", lambda self: False)
    assert resolve_runtime("auto", "cpu", "bf16") == "torch"
    with pytest.raises(ImportError, match=r"rerank-plugins\[openvino\]"):
        resolve_runtime("openvino", "cpu", "fp32")


def test_cache_location_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RERANK_PLUGINS_CACHE", str(tmp_path))
    assert cache_root() == tmp_path
    monkeypatch.delenv("RERANK_PLUGINS_CACHE")
    assert cache_root() == Path.home() / ".cache" / "rerank-plugins"


@pytest.mark.slow
def test_without_openvino_the_core_runs_on_torch_and_names_the_extra(random_model: str) -> None:
    script = (
        "import sys\n"
        "sys.modules['openvino'] = None\n"
        "from rerank_plugins import Reranker\n"
        f"reranker = Reranker({random_model!r}, device='cpu')\n"
        "assert reranker.runtime == 'torch', reranker.runtime\n"
        "assert len(reranker.score('q', ['a', 'b'])) == 2\n"
        "try:\n"
        f"    Reranker({random_model!r}, runtime='openvino')\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert 'pip install "rerank-plugins[openvino]"' in done.stdout
