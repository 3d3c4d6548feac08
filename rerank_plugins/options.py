"""The core's options, declared once: every other list of them (checks, ``options()``, ``repr``, the score
cache key, the adapters' settings, the command-line flags, the README table) is derived from ``CORE_OPTIONS``.

Adding an option means adding a row here (and the README table, which a test compares with
``markdown_table()``), then reading it where it acts.
"""

from __future__ import annotations

import os
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from rerank_plugins.devices import Precision
from rerank_plugins.runtime import Runtime
from rerank_plugins.validation import is_int
from rerank_plugins.windows import WindowBoundaries

__all__ = [
    "CORE_OPTIONS",
    "DEFAULT_MODEL",
    "CoreOption",
    "LongDocuments",
    "MetadataMode",
    "WindowAggregation",
    "check_options",
    "docstring_args",
    "markdown_table",
    "option",
]

DEFAULT_MODEL = "cross-encoder/ms-marco-MiniLM-L6-v2"
LongDocuments = Literal["truncate", "window"]
WindowAggregation = Literal["max", "mean"]
Scores = Literal["no", "yes", "windowed"]
MetadataMode = Literal["none", "embed", "llm", "all"]


@dataclass(frozen=True)
class CoreOption:
    """One keyword argument of ``Reranker``: its type and default, one line of help, and where it shows.

    Attributes:
        name: The keyword (and the adapters' settings field).
        type: Its annotation: a ``Literal`` of choices, ``int``, ``bool`` or ``str``, each maybe ``| None``.
        default: The value when not given.
        help: One line, in Markdown: the README table, the settings' description, the command-line help.
        shown_default: How the README and ``--help`` show the default (a resolved default such as a device's).
        flag: The command-line flag; ``None``: not a command-line option (the command decides it).
        scores: ``"yes"``: it changes scores, so it is in the score cache key and the calibration's
            configuration; ``"windowed"``: only with ``long_documents="window"``; ``"no"``: it does not.
        minimum: The least value of an int option.
    """

    name: str
    type: Any
    default: Any
    help: str
    shown_default: str
    flag: str | None
    scores: Scores = "no"
    minimum: int | None = None

    @property
    def nullable(self) -> bool:
        """Whether ``None`` is a value of this option."""
        return type(None) in _members(self.type)

    @property
    def kind(self) -> Any:
        """The type without ``None``: a ``Literal``, ``int``, ``bool`` or ``str``."""
        kinds = [member for member in _members(self.type) if member is not type(None)]
        return kinds[0]

    @property
    def choices(self) -> tuple[str, ...] | None:
        """The values of a ``Literal`` option, else ``None``."""
        return get_args(self.kind) if get_origin(self.kind) is Literal else None

    def check(self, value: Any) -> Any:
        """``value`` if it is one this option takes, else a ``ValueError`` naming the option and the value."""
        if value is None and self.nullable:
            return value
        if self.choices is not None:
            if value not in self.choices:
                wanted = " or ".join(map(repr, self.choices)) if len(self.choices) == 2 else f"one of {self.choices}"
                raise ValueError(f"{self.name} must be {wanted}, got {value!r}")
        elif self.kind is bool:
            if not isinstance(value, bool):
                raise ValueError(f"{self.name} must be {'None, ' if self.nullable else ''}True or False, got {value!r}")
        elif self.kind is int:
            least = self.minimum if self.minimum is not None else 0
            if not is_int(value) or value < least:
                wanted = "a positive int" if least == 1 else f"an int >= {least}"
                raise ValueError(f"{self.name} must be {wanted}, got {value!r}")
        elif self.kind is str and (not isinstance(value, str) or not value.strip()):
            raise ValueError(
                f"{self.name} must be {'None or ' if self.nullable else ''}a non-empty string, got {value!r}"
            )
        return value


def _members(annotation: Any) -> tuple[Any, ...]:
    return get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) else (annotation,)


CORE_OPTIONS: tuple[CoreOption, ...] = (
    CoreOption(
        "model", str, DEFAULT_MODEL, "hub id or local directory of a cross-encoder", f"`{DEFAULT_MODEL}`", "--model",
        scores="yes",
    ),
    CoreOption("device", str | None, None, "where the model runs: `cpu`, `cuda`, `cuda:1`, `mps`",
               "cuda, then mps, then cpu", "--device"),
    CoreOption(
        "precision", Precision, "auto",
        "`auto` = bf16 on CPUs with native bf16 (AVX512-BF16/AMX), fp16 on CUDA, else fp32, among the precisions "
        "the runtime runs; or `fp32`, `bf16`, `fp16`, `int8` (OpenVINO or ONNX Runtime: int8 weights, activations "
        "quantised on the fly, no calibration data; not always faster than bf16: `rerank-plugins bench` measures "
        "both on your CPU). "
        "Scores are always fp32.",
        '`"auto"`', "--precision", scores="yes",
    ),
    CoreOption(
        "runtime", Runtime, "auto",
        "`auto` = OpenVINO on CPU when the `openvino` extra is installed, else torch; or `torch`, `openvino`, "
        "`onnx` (ONNX Runtime on the CPU, the `onnx` extra; fp32 or int8 only, so `precision=\"auto\"` is fp32 "
        "there; its fp32 can be slower than `CrossEncoder.predict` fp32 on CPUs with AMX, where torch's matmuls "
        "use AMX and its do not: `rerank-plugins bench` flags any mode slower than that baseline on your CPU). "
        "OpenVINO and ONNX Runtime export the model on first "
        "use and cache it in `$RERANK_PLUGINS_CACHE/<runtime>/<key>/` "
        "(`RERANK_PLUGINS_CACHE` defaults to `~/.cache/rerank-plugins`), one folder per model, keyed by its name, "
        "revision, config and weight files.",
        '`"auto"`', "--runtime", scores="yes",
    ),
    CoreOption("batch_size", int | None, None, "most pairs per forward pass", "512 on CUDA, 32 elsewhere",
               "--batch-size", minimum=1),
    CoreOption(
        "max_batch_tokens", int | None, None,
        "most tokens per forward pass, padding included: batches of long pairs stay small, short pairs share "
        "large ones",
        "65,536 on CUDA, 16,384 elsewhere", "--batch-tokens", minimum=1,
    ),
    CoreOption(
        "unpadded", bool | None, None,
        "run batches packed, with no padding tokens: BERT, XLM-R and ELECTRA on the torch runtime (flash "
        "attention over variable lengths on CUDA in fp16/bf16, SDPA elsewhere); other models run padded",
        "on CUDA", "--unpadded",
    ),
    CoreOption("max_length", int | None, None, "tokens per (query, document) pair", "the model's configured limit",
               "--max-length", scores="yes", minimum=1),
    CoreOption(
        "long_documents", LongDocuments, "truncate",
        '`"truncate"` cuts what does not fit (counted as `truncated_tokens`); `"window"` scores overlapping '
        "windows over the whole document and aggregates them per document",
        '`"truncate"`', "--long-documents", scores="yes",
    ),
    CoreOption("window_aggregation", WindowAggregation, "max",
               'how a document\'s window scores combine in window mode: `"max"` or `"mean"`', '`"max"`',
               "--window-aggregation", scores="windowed"),
    CoreOption("window_overlap", int | None, None, "tokens consecutive windows share in window mode",
               "half a window", "--window-overlap", scores="windowed", minimum=0),
    CoreOption(
        "window_boundaries", WindowBoundaries, "tokens",
        '`"sentence"`: each window starts and ends on a sentence boundary when one lies within a quarter window '
        "(32 tokens at most), so the passage a result's `span` points at reads from the start of a sentence "
        '(see "Evidence passages"); `"tokens"`: fixed steps',
        '`"tokens"`', "--window-boundaries", scores="windowed",
    ),
    CoreOption(
        "cache_size", int, 0,
        "entries in an LRU score cache; keyed by every option that changes scores, the calibration, the query "
        "and the document",
        "0 (off)", "--cache-size", minimum=0,
    ),
    CoreOption("revision", str | None, None, "model revision on the hub: branch, tag or commit", "`None` (main)",
               "--revision", scores="yes"),
    CoreOption("trust_remote_code", bool, False, "run custom model code from the model repository", "`False`",
               "--trust-remote-code"),
    CoreOption("show_progress_bar", bool | None, None, "a progress bar while scoring",
               "for jobs of 5,000 pairs or more", None),
    CoreOption(
        "instruction", str | None, None,
        'the task instruction of a causal-LM reranker\'s prompt (see "Choosing a model"); sequence classifiers '
        "refuse it",
        "`None` (the model's own)", "--instruction", scores="yes",
    ),
    CoreOption(
        "calibration", str | None, "auto",
        'a file from `rerank-plugins calibrate`: `relevance_score` becomes the calibrated P(relevant) (see '
        '"Calibrated relevance"); `"auto"` uses `rerank-calibration.json` in the model\'s directory when there is '
        "one (and logs it); `None` (`none` on the command line): the sigmoid of the raw score; a file made for "
        "another configuration is refused, naming the difference",
        '`"auto"`', "--calibration",
    ),
    CoreOption(
        "abstain", bool, False,
        "apply the calibration's recommended \"nothing relevant\" rule: a query whose P(any relevant) is below "
        "the rule's level gets no results (`Ranking.abstained`, with `p_any_relevant` kept); needs a calibration "
        "fitted with unanswerable queries (see \"Calibrated relevance\")",
        "`False`", "--abstain",
    ),
    CoreOption(
        "metadata_mode", MetadataMode, "none",
        'what the adapters score: `"none"` the text alone (LangChain `page_content`, LlamaIndex node text); '
        '`"embed"`, `"llm"`, `"all"` put `key: value` metadata lines before it, as LlamaIndex does for that mode '
        "(LangChain documents have no excluded keys, so there all three mean every key); the reranker's own "
        "keys never count. A calibration records it",
        '`"none"`', None, scores="yes",
    ),
)  # fmt: skip

_BY_NAME = {option.name: option for option in CORE_OPTIONS}


def option(name: str) -> CoreOption:
    """The option called ``name``."""
    return _BY_NAME[name]


def check_options(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` (``Reranker`` keyword arguments) checked against the table: an unknown name or a value an
    option does not take is refused here, naming it, before any model loads (or a Ray replica starts)."""
    unknown = sorted(set(values) - set(_BY_NAME))
    if unknown:
        raise ValueError(f"unknown Reranker options {unknown}; the options are {sorted(_BY_NAME)}")
    checked = {}
    for name, value in values.items():
        if name == "calibration" and isinstance(value, os.PathLike):
            value = os.fspath(value)
        if name == "calibration" and value is not None and not isinstance(value, str):
            raise TypeError(f"calibration must be a file path, 'auto' or None, got {type(value).__name__}")
        if name not in ("model", "device", "calibration"):  # their own checks resolve them (loading, devices)
            _BY_NAME[name].check(value)
        checked[name] = value
    return checked


def markdown_table() -> str:
    """The README's options table, one row per option, in the table's order."""
    rows = ["| option | default | meaning |", "|---|---|---|"]
    rows += [f"| `{o.name}` | {o.shown_default} | {o.help} |" for o in CORE_OPTIONS]
    return "\n".join(rows)


def docstring_args() -> str:
    """An ``Args:`` section for the ``Reranker`` constructor, one entry per option."""
    lines = ["Args:"]
    lines += [
        f"    {o.name}: {o.help.replace('`', '')} (default: {o.shown_default.replace('`', '')})." for o in CORE_OPTIONS
    ]
    return "\n".join(lines)
