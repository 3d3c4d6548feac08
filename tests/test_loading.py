"""Loading: shared instances, and a clear error for everything that is not a usable cross-encoder."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rerank_plugins import DEFAULT_MODEL, Reranker
from tests.hub_cache import add_to_hub_cache
from tests.paths import REPO, build_random_cross_encoder


def test_same_model_is_loaded_once_per_process(trained_model: str) -> None:
    first = Reranker(trained_model, device="cpu", precision="fp32").load()
    second = Reranker(trained_model, device="cpu", precision="fp32", batch_size=4, cache_size=10).load()
    other_precision = Reranker(trained_model, device="cpu", precision="bf16").load()
    assert first._loaded is second._loaded
    assert first._loaded.network is second._loaded.network
    assert other_precision._loaded is not first._loaded


def test_max_length_defaults_to_the_models_configured_limit(trained_model: str, random_model: str) -> None:
    assert Reranker(trained_model).max_length == 256  # sentence-transformers config of the trained model
    assert Reranker(random_model).max_length == 512  # tokenizer_config of ms-marco-MiniLM-L6-v2
    assert Reranker(random_model, max_length=128).max_length == 128


def test_missing_directory_fails_at_construction(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="No model directory at"):
        Reranker(str(tmp_path / "nope"))


def test_directory_without_config_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        Reranker(str(tmp_path))


def test_bi_encoder_is_refused_at_construction_with_what_was_found(bi_encoder_path: str) -> None:
    with pytest.raises(ValueError, match="bi-encoder .* not a cross-encoder"):
        Reranker(bi_encoder_path)  # before any weights are read, not at the first query


def test_cached_hub_bi_encoder_is_refused_at_construction(bi_encoder_path: str, tmp_path: Path, monkeypatch) -> None:
    add_to_hub_cache(tmp_path, "sentence-transformers/all-MiniLM-L6-v2", Path(bi_encoder_path))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ValueError, match="bi-encoder .* not a cross-encoder"):
        Reranker("sentence-transformers/all-MiniLM-L6-v2")
    with pytest.raises(FileNotFoundError, match="no hub model 'cross-encoder/not-cached' in the local"):
        Reranker("cross-encoder/not-cached")  # offline and not in the cache: said at construction


HUB_WITHOUT_OFFLINE = """
from rerank_plugins import Reranker
print(Reranker("cross-encoder/ms-marco-MiniLM-L6-v2", runtime="torch").score("q", ["a document"]))
Reranker("cross-encoder/not-cached-anywhere").load()
"""


@pytest.mark.slow
def test_without_hf_hub_offline_an_unreachable_hub_costs_no_retries(trained_model: str, tmp_path: Path) -> None:
    with socket.socket() as probe:  # a local port nothing listens on: the hub "does not answer"
        probe.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{probe.getsockname()[1]}"
    add_to_hub_cache(tmp_path / "hub", "cross-encoder/ms-marco-MiniLM-L6-v2", Path(trained_model))
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT=endpoint, HF_HUB_CACHE=str(tmp_path / "hub"), PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-c", HUB_WITHOUT_OFFLINE], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 1 and done.stdout.startswith("[")  # the cached model loaded and scored
    assert "the Hugging Face hub does not answer" in done.stderr
    assert "not in the local Hugging Face cache (the hub did not answer)" in done.stderr
    assert "Retrying" not in done.stderr  # the hub client's 5 retries per file took 31 s before the error


def test_loading_keeps_transformers_chatter_down_and_restores_its_settings(
    random_model: str, tmp_path: Path, capfd, caplog
) -> None:
    from safetensors.torch import load_file, save_file
    from transformers.utils import logging as transformers_logging

    model = tmp_path / "model"
    shutil.copytree(random_model, model)
    weights = load_file(model / "model.safetensors")
    save_file({**weights, "bert.leftover.weight": weights["classifier.bias"].clone()}, model / "model.safetensors")
    library = logging.getLogger("transformers")
    before = (library.handlers[:], library.level, library.propagate, transformers_logging.get_verbosity())
    capfd.readouterr()
    with caplog.at_level(logging.DEBUG, logger="rerank_plugins"):
        Reranker(str(model), runtime="torch", precision="fp32").load()
    printed = capfd.readouterr().err
    assert "Loading weights" not in printed and "LOAD REPORT" not in printed
    assert any("LOAD REPORT" in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records)  # kept
    assert (library.handlers, library.level, library.propagate, transformers_logging.get_verbosity()) == before
    assert transformers_logging.set_tqdm_hook(None) is None  # no hook of ours left behind


def test_base_encoder_without_classifier_is_refused(tmp_path: Path, random_model: str) -> None:
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(random_model)
    config.architectures = ["BertModel"]
    AutoModel.from_config(config).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="is a BertModel model, not a cross-encoder"):
        Reranker(str(tmp_path)).load()


def test_classifier_with_three_labels_is_refused(tmp_path: Path) -> None:
    build_random_cross_encoder(tmp_path, num_labels=3)
    with pytest.raises(ValueError, match="classifier with 3 labels"):
        Reranker(str(tmp_path)).load()


def test_corrupt_weights_give_a_clear_error(tmp_path: Path, random_model: str) -> None:
    shutil.copytree(random_model, tmp_path / "model")
    (tmp_path / "model" / "model.safetensors").write_bytes(b"this is not a safetensors file")
    with pytest.raises(RuntimeError, match="Could not load the cross-encoder weights"):
        Reranker(str(tmp_path / "model")).load()


def test_uncached_hub_model_offline_fails_at_construction_in_one_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    started = time.perf_counter()
    with pytest.raises(
        FileNotFoundError, match=r"in the local Hugging Face cache \(HF_HUB_OFFLINE is set\).*model='/path"
    ) as error:
        Reranker(DEFAULT_MODEL)
    assert time.perf_counter() - started < 1.0  # a look in the cache, not a load or a network wait
    assert "\n" not in str(error.value) and error.value.__cause__ is None and error.value.__context__ is None


def test_default_model_is_the_ms_marco_minilm(tmp_path: Path, monkeypatch, trained_model: str) -> None:
    assert DEFAULT_MODEL == "cross-encoder/ms-marco-MiniLM-L6-v2"
    add_to_hub_cache(tmp_path, DEFAULT_MODEL, Path(trained_model))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    assert Reranker().model_name == DEFAULT_MODEL  # construction alone does not touch the network or load
