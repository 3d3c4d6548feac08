"""Nothing in a model directory runs on load: no remote code by default, no pickle execution."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest

from rerank_plugins import Reranker


class _Payload:
    """Unpickling this writes a marker file: proof that the pickle's code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.write_text, (self.marker, "pwned"))


def test_trust_remote_code_is_off_by_default(random_model: str) -> None:
    assert Reranker(random_model).trust_remote_code is False


@pytest.mark.slow
def test_custom_model_code_in_the_directory_is_not_executed(random_model: str, tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(random_model, model)
    marker = tmp_path / "remote-code-ran"
    (model / "evil_model.py").write_text(f"open({str(marker)!r}, 'w').write('pwned')\n", encoding="utf-8")
    config = json.loads((model / "config.json").read_text())
    config["auto_map"] = {"AutoModelForSequenceClassification": "evil_model.EvilModel", "AutoConfig": "evil_model.C"}
    (model / "config.json").write_text(json.dumps(config), encoding="utf-8")

    reranker = Reranker(str(model), precision="fp32").load()  # the built-in BERT class is used instead

    assert type(reranker._loaded.network).__module__.startswith("transformers.models.bert")
    assert len(reranker.score("q", ["d"])) == 1
    assert not marker.exists()


def test_pickle_weights_are_not_executed(random_model: str, tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(random_model, model)
    (model / "model.safetensors").unlink()
    marker = tmp_path / "pickle-ran"
    with open(model / "pytorch_model.bin", "wb") as out:
        pickle.dump({"weights": _Payload(marker)}, out)

    with pytest.raises(RuntimeError, match="Could not load the cross-encoder weights"):
        Reranker(str(model)).load()
    assert not marker.exists()
