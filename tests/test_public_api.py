"""The public surface is small and pinned; importing it needs no framework."""

from __future__ import annotations

import subprocess
import sys

import rerank_plugins


def test_all_is_pinned() -> None:
    assert sorted(rerank_plugins.__all__) == [
        "DEFAULT_MODEL",
        "RankedResult",
        "Ranking",
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


def test_subpackage_surfaces_are_pinned() -> None:
    import rerank_plugins.calibrating
    import rerank_plugins.calibration
    import rerank_plugins.remote
    import rerank_plugins.runtime
    import rerank_plugins.serving
    import rerank_plugins.training

    assert sorted(rerank_plugins.training.__all__) == [
        "EpochResult",
        "TrainingConfig",
        "TrainingData",
        "TrainingReport",
        "fine_tune",
        "load_training_data",
    ]
    assert sorted(rerank_plugins.calibration.__all__) == ["CALIBRATION_FILE", "Calibration"]
    assert sorted(rerank_plugins.calibrating.__all__) == [
        "CalibrationRun",
        "LabelledScores",
        "calibrate",
        "split_queries",
        "write_reliability_diagram",
    ]
    assert sorted(rerank_plugins.remote.__all__) == ["RemoteRerankError", "RemoteReranker"]
    assert sorted(rerank_plugins.runtime.__all__) == [
        "Forward",
        "RUNTIMES",
        "Runtime",
        "resolve_runtime",
        "runtime_precisions",
        "torch_forward",
    ]
    assert sorted(rerank_plugins.serving.__all__) == [
        "MicroBatcher",
        "Overloaded",
        "ServiceLimits",
        "create_app",
        "serve_in_background",
        "server_config",
    ]


def test_serving_and_remote_import_without_their_extras_and_name_them_when_used(random_model: str) -> None:
    blocker = (
        "import sys\n"
        "for name in ('fastapi', 'uvicorn', 'httpx', 'ray'):\n"
        "    sys.modules[name] = None\n"
        "import rerank_plugins.serving, rerank_plugins.remote\n"
        "from rerank_plugins import Reranker\n"
        "for call in (lambda: rerank_plugins.remote.RemoteReranker('http://x'),\n"
        f"             lambda: rerank_plugins.serving.create_app(Reranker({random_model!r}))):\n"
        "    try:\n"
        "        call()\n"
        "    except ImportError as error:\n"
        "        assert 'pip install \"rerank-plugins[' in str(error), error\n"
        "    else:\n"
        "        raise AssertionError('no ImportError')\n"
    )
    subprocess.run([sys.executable, "-c", blocker], check=True)
