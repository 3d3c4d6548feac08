"""The [CLS]-only encoder over packed (unpadded) batches: no FLOP is spent on padding tokens.

All pairs' tokens lie back to back in one ``(tokens, hidden)`` matrix, with ``cu_seqlens`` marking
where each pair starts, as in TEI's flash BERT. Embeddings, linear layers and layer norms run on the
packed rows; attention runs within each pair through ``torch.nn.attention.varlen.varlen_attn`` (flash
attention) on CUDA in fp16/bf16, and elsewhere through SDPA over the pairs padded for attention alone.
The last layer is computed for each pair's first token only, as ``ClsOnlyEncoder`` does.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rerank_plugins.runtime.cls_only import attention_scale, classify, embed, finish_layer, require_cls_only

__all__ = ["Attend", "PackedClsOnlyEncoder", "PackedInputs", "attention_kernel", "padded_attention"]

logger = logging.getLogger(__name__)

Attend = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int, int, float], torch.Tensor]
"""(query, key, value as (tokens, heads, dim); cu_seq_q, cu_seq_k; max_q, max_k; scale) to the
attention output, (query tokens, heads, dim)."""


@dataclass(frozen=True)
class PackedInputs:
    """A packed batch on the model's device; ``max_seqlen`` is a host int, so nothing waits on the device."""

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    cu_seqlens: torch.Tensor  # int32, (sequences + 1,)
    max_seqlen: int
    token_type_ids: torch.Tensor | None = None


def padded_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    cu_seq_q: torch.Tensor,
    cu_seq_k: torch.Tensor,
    max_q: int,
    max_k: int,
    scale: float,
) -> torch.Tensor:
    """Attention within each sequence, by padding the packed rows for SDPA and packing the result again."""
    sequences = cu_seq_k.numel() - 1
    key_lengths = cu_seq_k.diff().long()

    def pad(rows: torch.Tensor, cu_seq: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        owner = torch.repeat_interleave(
            torch.arange(sequences, device=rows.device), cu_seq.diff().long(), output_size=rows.shape[0]
        )
        position = torch.arange(rows.shape[0], device=rows.device) - cu_seq[:-1].long()[owner]
        padded = rows.new_zeros((sequences, width, *rows.shape[1:]))
        padded[owner, position] = rows
        return padded.transpose(1, 2), owner, position

    padded_query, owner, position = pad(query, cu_seq_q, max_q)
    padded_key, _, _ = pad(key, cu_seq_k, max_k)
    padded_value, _, _ = pad(value, cu_seq_k, max_k)
    mask = (torch.arange(max_k, device=key.device) < key_lengths[:, None])[:, None, None, :]
    context = F.scaled_dot_product_attention(padded_query, padded_key, padded_value, attn_mask=mask, scale=scale)
    return context.transpose(1, 2)[owner, position]


def _varlen_attention() -> Attend | None:
    """``varlen_attn`` (torch >= 2.10) as an ``Attend``, or ``None`` where this torch has none."""
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    takes_scale = "scale" in inspect.signature(varlen_attn).parameters

    def attend(
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        cu_seq_q: torch.Tensor,
        cu_seq_k: torch.Tensor,
        max_q: int,
        max_k: int,
        scale: float,
    ) -> torch.Tensor:
        if not takes_scale and abs(scale - query.shape[-1] ** -0.5) > 1e-9:
            return padded_attention(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, scale)
        if takes_scale:
            return varlen_attn(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, scale=scale)  # type: ignore[return-value]
        return varlen_attn(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k)  # type: ignore[return-value]

    return attend


_KERNELS: dict[tuple[str, torch.dtype], Attend] = {}
_KERNELS_LOCK = threading.Lock()


def _probe(attend: Attend, device: torch.device, dtype: torch.dtype) -> str | None:
    """Why ``attend`` cannot be used on ``device`` in ``dtype`` (an error, or results off the reference)."""
    generator = torch.Generator().manual_seed(0)
    lengths = torch.tensor([5, 17, 1, 9])
    cu_seq = torch.zeros(len(lengths) + 1, dtype=torch.int32)
    cu_seq[1:] = lengths.cumsum(0)
    query, key, value = (
        torch.randn(int(lengths.sum()), 2, 32, generator=generator).to(device, dtype) for _ in range(3)
    )
    cu_seq = cu_seq.to(device)
    longest = int(lengths.max())
    try:
        got = attend(query, key, value, cu_seq, cu_seq, longest, longest, 32**-0.5)
    except Exception as error:  # a kernel missing for this GPU, dtype or build raises its own type
        return f"{type(error).__name__}: {error}"
    expected = padded_attention(query, key, value, cu_seq, cu_seq, longest, longest, 32**-0.5)
    difference = (got.float() - expected.float()).abs().max().item()
    return None if difference < 2e-2 else f"results differ from SDPA by {difference:.3g}"


def attention_kernel(device: torch.device, dtype: torch.dtype) -> Attend:
    """``varlen_attn`` on CUDA in fp16/bf16 when it runs and agrees with SDPA here, else ``padded_attention``.

    Checked once per device and dtype on a small example, so a kernel missing for this GPU or build
    falls back cleanly, with one warning.
    """
    key = (str(device), dtype)
    with _KERNELS_LOCK:
        if key not in _KERNELS:
            varlen = _varlen_attention() if device.type == "cuda" and dtype in (torch.float16, torch.bfloat16) else None
            chosen: Attend = padded_attention
            if varlen is not None:
                problem = _probe(varlen, device, dtype)
                if problem is None:
                    chosen = varlen
                else:
                    logger.warning(
                        "varlen_attn unusable on %s in %s (%s); packed batches use SDPA", device, dtype, problem
                    )
            _KERNELS[key] = chosen
        return _KERNELS[key]


def _layer(
    layer: Any,
    queries: torch.Tensor,
    hidden: torch.Tensor,
    cu_seq_q: torch.Tensor,
    cu_seq_k: torch.Tensor,
    max_q: int,
    max_k: int,
    attend: Attend,
) -> torch.Tensor:
    """One encoder layer on packed rows: ``queries`` attend over their own sequence's rows of ``hidden``."""
    attention = layer.attention.self
    heads, size = attention.num_attention_heads, attention.attention_head_size
    context = attend(
        attention.query(queries).view(-1, heads, size),
        attention.key(hidden).view(-1, heads, size),
        attention.value(hidden).view(-1, heads, size),
        cu_seq_q,
        cu_seq_k,
        max_q,
        max_k,
        attention_scale(attention),
    ).reshape(-1, heads * size)
    return finish_layer(layer, context, queries)


class PackedClsOnlyEncoder(nn.Module):
    """Relevance logits of a BERT, RoBERTa/XLM-R or ELECTRA classifier over packed batches, sharing its weights."""

    def __init__(self, network: Any) -> None:
        super().__init__()
        require_cls_only(network)
        self.network = network
        padding_idx = getattr(network.base_model.embeddings, "padding_idx", None)
        self.position_offset = 0 if padding_idx is None else padding_idx + 1  # RoBERTa counts from padding_idx + 1

    def forward(self, batch: PackedInputs) -> torch.Tensor:
        base = self.network.base_model
        types = None if batch.token_type_ids is None else batch.token_type_ids[None]
        positions = batch.position_ids + self.position_offset if self.position_offset else batch.position_ids
        hidden = embed(base, input_ids=batch.input_ids[None], token_type_ids=types, position_ids=positions[None])[0]
        attend = attention_kernel(hidden.device, hidden.dtype)
        cu_seq, longest = batch.cu_seqlens, batch.max_seqlen
        layers = list(base.encoder.layer)
        for layer in layers[:-1]:
            hidden = _layer(layer, hidden, hidden, cu_seq, cu_seq, longest, longest, attend)
        sequences = cu_seq.numel() - 1
        one_each = torch.arange(sequences + 1, dtype=cu_seq.dtype, device=cu_seq.device)
        first_rows = hidden[cu_seq[:-1].long()]
        return classify(
            self.network, _layer(layers[-1], first_rows, hidden, one_each, cu_seq, 1, longest, attend)[:, None]
        )
