"""OpenVINO runtime: export a cross-encoder once, cache the IR on disk, compile it for this CPU.

OpenVINO's CPU kernels fuse attention, layer norm and activations and run bf16 and int8 matmuls
natively (AVX512-BF16, VNNI, AMX). ``int8`` stores int8 weights (NNCF, per output channel) and
quantises activations on the fly in small groups, so it needs no calibration data.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rerank_plugins._optional import require

__all__ = ["SHAPE_STEP", "cache_root", "openvino_forward", "openvino_available"]

logger = logging.getLogger(__name__)

SHAPE_STEP = 16
"""OpenVINO batches are padded to a multiple of this many tokens: it keeps one compiled kernel set per
length bucket, so memory stays flat over many batch shapes (a few % more padding)."""
DYNAMIC_QUANTIZATION_GROUP = 64
"""Activation values per int8 scale in ``int8``: smaller is closer to fp32, larger is faster."""
_FORMAT = 2  # bump when the exported graph changes, so old cache entries are not reused


def openvino_available() -> bool:
    """True when the ``openvino`` extra is installed."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def cache_root() -> Path:
    """Where exported models are kept: ``$RERANK_PLUGINS_CACHE`` or ``~/.cache/rerank-plugins``."""
    configured = os.environ.get("RERANK_PLUGINS_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "rerank-plugins"


def _fingerprint(source: dict[str, Any], network: Any) -> str:
    """Identity of the weights: name, revision and commit, plus size and mtime of local weight files."""
    import openvino

    from rerank_plugins import __version__

    facts = dict(source, openvino=openvino.__version__, package=__version__, format=_FORMAT)
    facts["config"] = network.config.to_json_string()
    model_dir = Path(str(source.get("name", "")))
    if model_dir.is_dir():
        facts["files"] = sorted(
            (path.name, path.stat().st_size, path.stat().st_mtime_ns)
            for path in model_dir.iterdir()
            if path.suffix in (".safetensors", ".bin")
        )
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _export(module: nn.Module, example: dict[str, torch.Tensor], quantise: bool, target: Path) -> None:
    """Convert to OpenVINO IR (dynamic batch and length) and save it under ``target`` atomically.

    ``example`` holds real inputs of the model (token ids within its vocabulary and positions), with
    one padded row so no branch that skips the mask is traced.
    """
    ov = require("openvino", "openvino")
    input_names = list(example)
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shapes the dynamic inputs below cover
        converted = ov.convert_model(
            module,
            example_input=tuple(example.values()),
            input=[(name, [-1, -1], ov.Type.i64) for name in input_names],
        )
    if quantise:
        nncf = require("nncf", "openvino")
        nncf_logger = logging.getLogger("nncf")
        level = nncf_logger.level
        nncf_logger.setLevel(logging.WARNING)  # its INFO is a table printed to stdout
        try:
            converted = nncf.compress_weights(converted, mode=nncf.CompressWeightsMode.INT8_ASYM)
        finally:
            nncf_logger.setLevel(level)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    try:
        ov.save_model(converted, staging / "model.xml", compress_to_fp16=False)
        os.replace(staging, target)
    except OSError:
        if not (target / "model.xml").is_file():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def openvino_forward(
    module: nn.Module,
    example: dict[str, torch.Tensor],
    precision: str,
    native_bf16: bool,
    source: dict[str, Any],
) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
    """Compile ``module`` (a ``scoring_module``) with OpenVINO in ``precision`` (fp32, bf16 or int8).

    It is exported on first use from ``example`` inputs and cached under a key of the weights' identity.
    """
    ov = require("openvino", "openvino")
    quantise = precision == "int8"
    input_names = list(example)
    network = getattr(module, "network", module)
    weights = "int8" if quantise else "fp32"
    facts = {**source, "weights": weights, "inputs": input_names, "module": type(module).__name__}
    key = _fingerprint(facts, network)
    target = cache_root() / "openvino" / key
    if not (target / "model.xml").is_file():
        logger.info("exporting %s to OpenVINO (%s weights) in %s", source.get("name"), precision, target)
        _export(module, example, quantise, target)
    hint = "bf16" if precision == "bf16" or (quantise and native_bf16) else "f32"
    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"}
    if quantise:
        config["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = str(DYNAMIC_QUANTIZATION_GROUP)
    compiled = ov.Core().compile_model(target / "model.xml", "CPU", config)

    def forward(inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        request = compiled.create_infer_request()  # one per call: requests are not shared between threads
        result = request.infer({name: inputs[name].numpy() for name in input_names})
        return torch.from_numpy(result[compiled.output(0)].copy())

    return forward
