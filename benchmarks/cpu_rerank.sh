#!/usr/bin/env bash
# CPU reranking benchmark on real text: SciFact test claims with their bi-encoder top-100 candidates.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${RERANK_PLUGINS_SHARED:-../shared}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec "${RERANK_PLUGINS_VENV:-.venv}/bin/rerank-plugins" bench \
    --data "$SHARED/data/scifact" --model "$SHARED/models/minilm-l6-scifact-ce" \
    --queries "${QUERIES:-20}" --candidates 100 --modes torch-fp32 torch-bf16 openvino-fp32 openvino-bf16 openvino-int8 auto \
    --index-dir .cache/scifact-index --output benchmarks/results "$@"
