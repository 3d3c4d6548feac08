"""The light floor: imports that stay off the model stack, ``export``, and the light suite with torch blocked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import REPO

HEAVY = ("torch", "transformers", "sentence_transformers")
ARTEFACTS = (("onnx", "fp32"), ("onnx", "int8"), ("openvino", "fp32"), ("openvino", "int8"))
"""The exports the light suite scores: as .ci/run makes them for .ci/light."""
BLOCK_MODEL_STACK = f"""
import importlib.abc, sys
class _Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {HEAVY!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked: the light floor must not need it)")
        return None
sys.meta_path.insert(0, _Blocked())
"""
"""Prepended to a subprocess's code: importing torch, transformers or sentence-transformers fails there."""


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env={**os.environ, **env}, timeout=600
    )


def _loaded_after(code: str) -> list[str]:
    done = _python(f"{code}\nimport sys, json\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize(
    "code",
    [
        "import rerank_plugins",
        "import rerank_plugins.options",
        "import rerank_plugins.metadata_keys",
        "import rerank_plugins.remote",
        "from rerank_plugins import Reranker",
        "from rerank_plugins.langchain import RerankCompressor\nRerankCompressor(url='http://127.0.0.1:9')",
        "from rerank_plugins.llama_index import RerankPostprocessor\nRerankPostprocessor(url='http://127.0.0.1:9')",
        "from rerank_plugins.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass",
    ],
    ids=["root", "options", "metadata_keys", "remote", "Reranker", "langchain-url", "llama_index-url", "cli-help"],
)
def test_these_imports_load_no_model_stack(code: str) -> None:
    assert _loaded_after(code) == []


def test_help_lists_every_command_without_importing_them() -> None:
    from rerank_plugins.cli.commands import COMMANDS

    done = _python("from rerank_plugins.cli import main\nmain(['--help'])")
    assert all(name in done.stdout for name in COMMANDS) and "export" in done.stdout


def test_each_command_module_uses_the_listed_help_line() -> None:
    """``--help`` lists commands from ``cli.commands`` alone; each command's own parser shows the same line."""
    from rerank_plugins.cli import build_parser
    from rerank_plugins.cli.commands import COMMANDS

    full = build_parser()
    listed = {action.dest: action.help for action in full._subparsers._group_actions[0]._choices_actions}  # type: ignore[union-attr]
    assert listed == {name: command.help for name, command in COMMANDS.items()}


@pytest.fixture(scope="module")
def artefacts(trained_model: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SciFact model exported three ways, as ``.ci/light`` exports it."""
    from rerank_plugins.export import export_model

    folder = tmp_path_factory.mktemp("artefacts")
    with pytest.MonkeyPatch.context() as patch:  # its own export cache: other tests count their first exports
        patch.setenv("RERANK_PLUGINS_CACHE", str(tmp_path_factory.mktemp("export-cache")))
        for runtime, precision in ARTEFACTS:
            export_model(trained_model, folder / f"{runtime}-{precision}", runtime=runtime, precision=precision)
    return folder


@pytest.fixture(autouse=True)
def _own_export_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Exports here go to a cache of their own, so tests elsewhere still see their models' first export."""
    monkeypatch.setenv("RERANK_PLUGINS_CACHE", str(tmp_path / "export-cache"))


@pytest.mark.slow
@pytest.mark.slow
def test_the_fp32_artefact_scores_as_the_source_and_int8_ranks_alike(artefacts: Path) -> None:
    fp32 = json.loads((artefacts / "onnx-fp32" / "rerank-export.json").read_text())
    int8 = json.loads((artefacts / "onnx-int8" / "rerank-export.json").read_text())
    openvino = json.loads((artefacts / "openvino-fp32" / "rerank-export.json").read_text())
    openvino_int8 = json.loads((artefacts / "openvino-int8" / "rerank-export.json").read_text())
    assert fp32["checks"]["max_abs_logit_difference"] < 1e-4 and fp32["checks"]["top10_overlap"] == 1.0
    assert openvino["checks"]["max_abs_logit_difference"] < 1e-4
    assert openvino_int8["checks"]["top10_overlap"] >= 0.9  # int8 weights, activations kept in float
    assert int8["checks"]["top10_overlap"] >= 0.75  # activations quantised too: faster, further from fp32
    assert fp32["source"]["weights_digest"] and fp32["activation"] in ("sigmoid", "identity")
    assert (artefacts / "onnx-int8" / "model.onnx").stat().st_size < 0.5 * (
        artefacts / "onnx-fp32" / "model.onnx"
    ).stat().st_size


@pytest.mark.slow
@pytest.mark.slow
def test_the_light_suite_passes_with_the_model_stack_blocked(artefacts: Path) -> None:
    """tests/light in a process where importing torch, transformers or sentence-transformers fails."""
    code = BLOCK_MODEL_STACK + (
        "import pytest\n"
        "sys.exit(pytest.main(['tests/light', '-q', '-p', 'no:cacheprovider', '--confcutdir', 'tests/light',"
        " '-o', 'addopts=', '-W', 'ignore::DeprecationWarning']))"
    )
    done = _python(code, RERANK_PLUGINS_ARTEFACTS=str(artefacts))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "failed" not in done.stdout and "skipped" not in done.stdout


def test_export_refuses_what_it_cannot_write(random_model: str, tmp_path: Path) -> None:
    from rerank_plugins.export import export_model

    with pytest.raises(ValueError, match="runtime must be one of"):
        export_model(random_model, tmp_path / "out", runtime="torch")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not an artefact"):
        export_model(random_model, tmp_path / "taken")
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"


@pytest.mark.slow
def test_an_artefact_refuses_a_runtime_precision_or_device_it_was_not_exported_for(
    random_model: str, tmp_path: Path
) -> None:
    from rerank_plugins import Reranker
    from rerank_plugins.export import export_model

    out = tmp_path / "artefact"
    export_model(random_model, out)
    with pytest.raises(ValueError, match="runtime='onnx', not 'openvino'"):
        Reranker(str(out), runtime="openvino")
    with pytest.raises(ValueError, match="fp32 weights, not int8"):
        Reranker(str(out), precision="int8")
    with pytest.raises(ValueError, match="CPU only"):
        Reranker(str(out), device="cuda")
    assert Reranker(str(out)).runtime == "onnx"


@pytest.mark.slow
def test_export_ships_a_calibration_of_the_source_and_refuses_another(random_model: str, tmp_path: Path) -> None:
    from rerank_plugins import Reranker
    from rerank_plugins.calibration import CALIBRATION_FILE, Calibration
    from rerank_plugins.export import export_model

    source = Reranker(random_model, runtime="onnx", precision="fp32", calibration=None)
    fitted = Calibration("platt", {"slope": 2.0, "intercept": 0.5}, source.score_configuration())
    path = fitted.save(tmp_path / "calibration.json")
    out = export_model(random_model, tmp_path / "artefact", calibration=path)
    assert out.checks["max_abs_logit_difference"] < 1e-4
    assert (tmp_path / "artefact" / CALIBRATION_FILE).is_file()
    assert Reranker(str(tmp_path / "artefact")).rank("q", ["a document"])[0].relevance_score > 0
    other = Calibration("platt", {"slope": 2.0, "intercept": 0.5}, {**source.score_configuration(), "max_length": 64})
    with pytest.raises(ValueError, match="max_length"):
        export_model(random_model, tmp_path / "refused", calibration=other.save(tmp_path / "other.json"))
    assert not (tmp_path / "refused").exists()


@pytest.mark.slow
def test_export_command_prints_the_checks(
    random_model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rerank_plugins.cli import main

    assert main(["export", random_model, "--out", str(tmp_path / "artefact"), "--runtime", "openvino"]) == 0
    out = capsys.readouterr().out
    assert "max_abs_logit_difference" in out and (tmp_path / "artefact" / "model.xml").is_file()
