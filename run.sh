#!/usr/bin/env bash
# One entry point for a fresh machine: sets up .venv (CPU torch first), then runs the demo or the tests.
#   ./run.sh test   install everything, lint, run the test suite (what CI runs)
#   ./run.sh demo   install everything, rerank a few SciFact claims and show before/after
set -euo pipefail
cd "$(dirname "$0")"

VENV=${RERANK_PLUGINS_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
if ! "$PY" -c "import torch" 2>/dev/null; then
    "$PY" -m pip install --quiet --upgrade pip
    "$PY" -m pip install --quiet torch==2.13.0   # CPU build; a bare 'torch' pulls a multi-GB CUDA one
fi
"$PY" -m pip install --quiet -e ".[all,dev]"

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

case "${1:-test}" in
    test)
        "$PY" -m ruff check .
        "$PY" -m mypy
        "$PY" -m pytest -q --nbmake tests notebooks "${@:2}"
        ;;
    demo)  # the default hub model cannot be downloaded offline: use the shared SciFact-trained one, on SciFact
        data=()
        if [ -d ../shared/data/scifact ]; then  # text the model knows, judged: the demo measures the change
            data=(--data ../shared/data/scifact --index-dir .cache/scifact-index)
        fi
        "$VENV/bin/rerank-plugins" demo --model "${RERANK_PLUGINS_MODEL:-../shared/models/minilm-l6-scifact-ce}" \
            "${data[@]}" "${@:2}"
        ;;
    *)
        echo "usage: ./run.sh [test|demo] [extra args]" >&2
        exit 2
        ;;
esac
