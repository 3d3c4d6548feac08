"""The CPU as the code sees it: its flags decide what ``auto`` picks for each runtime (faked here, so every
kind of machine is covered on whatever machine runs the tests)."""

from __future__ import annotations

import pytest

from rerank_plugins import Reranker, devices
from rerank_plugins.cpu import cpu_flags, cpu_name
from rerank_plugins.devices import resolve_precision
from rerank_plugins.runtime import runtime_precisions

MACHINES = {
    "xeon-amx": frozenset({"avx512f", "avx512_bf16", "amx_bf16", "amx_int8", "avx512_vnni"}),
    "epyc-avx512-bf16": frozenset({"avx512f", "avx512_bf16", "avx512_vnni"}),
    "avx2-only": frozenset({"avx2"}),
}


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_auto_precision_is_chosen_per_runtime_from_the_cpu_flags(
    machine: str, random_model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(devices, "cpu_flags", lambda: MACHINES[machine])
    native = machine != "avx2-only"
    for runtime in ("torch", "openvino"):
        assert resolve_precision("auto", "cpu", runtime_precisions(runtime)) == ("bf16" if native else "fp32")
    assert resolve_precision("auto", "cpu", runtime_precisions("onnx")) == "fp32"  # ONNX Runtime has no bf16 path
    assert resolve_precision("auto", "cpu") == ("bf16" if native else "fp32")
    assert Reranker(random_model, runtime="onnx").precision == "fp32"  # every runtime works with no precision given
    with pytest.raises(ValueError, match="runtime='onnx' supports precision"):
        Reranker(random_model, runtime="onnx", precision="bf16")  # an explicit choice is still checked


def test_the_cpu_is_named_and_its_flags_read() -> None:
    assert cpu_name() and isinstance(cpu_flags(), frozenset)
