"""What CPU this is: its name and the instruction-set flags that decide which precision runs fast on it.

Torch-free, read from ``/proc/cpuinfo`` once: every speed figure names the CPU it came from, and ``auto``
choices read the flags (AVX512-BF16, AMX, VNNI).
"""

from __future__ import annotations

import platform
import sys
from functools import lru_cache

__all__ = ["SPEED_FLAGS", "cpu_flags", "cpu_name"]

SPEED_FLAGS = ("avx512_bf16", "amx_bf16", "amx_int8", "avx512_vnni", "avx_vnni", "avx512f", "avx2")
"""The flags that decide bf16 and int8 speed, in the order figures report them."""


@lru_cache(maxsize=1)
def _cpuinfo() -> dict[str, str]:
    if not sys.platform.startswith("linux"):
        return {}
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as lines:
            for line in lines:
                if not line.strip():
                    break  # the first processor says it for all
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        return {}
    return fields


def cpu_name() -> str:
    """The CPU's model name (``platform`` as a fallback off Linux)."""
    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


def cpu_flags() -> frozenset[str]:
    """The CPU's instruction-set flags (empty where ``/proc/cpuinfo`` is not there)."""
    return frozenset(_cpuinfo().get("flags", "").split())
