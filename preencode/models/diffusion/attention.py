"""Multi-head attention with rotary position embeddings, as in stable-audio-tools' ContinuousTransformer.

Parameter names and the order of operations follow the reference (``to_qkv`` for self-attention,
``to_q``/``to_kv`` for cross-attention, ``to_out``, optional ``q_norm``/``k_norm``), so that its
checkpoints load strictly and outputs agree to float rounding. Attention itself is
``torch.nn.functional.scaled_dot_product_attention`` (no flash-attn or flex-attention needed).

Masks are not applied: the reference never passes one to its attention (it drops the cross-attention
mask before the transformer, see :mod:`.dit`), so its checkpoints were trained attending to padding.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

QK_NORMS = ("none", "l2", "ln", "dyt")


class DynamicTanh(nn.Module):
    """``gamma * tanh(alpha * x) + beta``, a normalisation-free stand-in for layer norm."""

    def __init__(self, dim: int, init_alpha: float = 10.0) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1) * init_alpha)
        self.gamma = nn.Parameter(torch.ones(dim))
        self.beta = nn.Parameter(torch.zeros(dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.gamma * torch.tanh(self.alpha * x) + self.beta


class RotaryEmbedding(nn.Module):
    """Rotation angles ``[N, dim]`` for positions ``0..N-1`` (``inv_freq`` is a stored buffer, as in the
    reference checkpoints)."""

    inv_freq: Tensor

    def __init__(self, dim: int, base: float = 10000.0) -> None:
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim)))

    def forward(self, seq_len: int) -> Tensor:
        positions = torch.arange(seq_len, device=self.inv_freq.device).to(torch.float32)
        freqs = torch.einsum("i,j->ij", positions, self.inv_freq)
        return torch.cat((freqs, freqs), dim=-1)


def _rotate_half(x: Tensor) -> Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(x: Tensor, freqs: Tensor) -> Tensor:
    """Rotate the first ``freqs.shape[-1]`` features of ``x [..., N, D]``; the rest pass unchanged.

    Computed in float32 (whatever the dtype of ``x``), as the reference does for stability.
    """
    out_dtype = x.dtype
    x, freqs = x.to(torch.float32), freqs.to(torch.float32)
    rot_dim = freqs.shape[-1]
    freqs = freqs[-x.shape[-2]:, :]
    rotated, passed = x[..., :rot_dim], x[..., rot_dim:]
    rotated = rotated * freqs.cos() + _rotate_half(rotated) * freqs.sin()
    return torch.cat((rotated, passed), dim=-1).to(out_dtype)


class Attention(nn.Module):
    """Self-attention (``dim_context`` None) or cross-attention over a context ``[B, S, dim_context]``.

    The context may have fewer heads than the queries (``dim_context // dim_heads``); its keys and values
    are then repeated per group (grouped-query attention), as for Stable Audio Open's 768-wide T5
    tokens against its 1536-wide transformer.

    Args:
        dim: width of the input ``[B, N, dim]``.
        dim_heads: width of a head.
        dim_context: width of the context for cross-attention.
        zero_init_output: initialise ``to_out`` to zero.
        qk_norm: ``"none"``, ``"l2"`` (unit-norm queries and keys), ``"ln"`` (layer norm per head) or
            ``"dyt"`` (:class:`DynamicTanh` per head).
        differential: differential attention (two attention maps, the second subtracted).
        feat_scale: learned re-weighting of the mean over positions and of the rest.
    """

    def __init__(self, dim: int, dim_heads: int = 64, dim_context: int | None = None,
                 zero_init_output: bool = True, qk_norm: str = "none", differential: bool = False,
                 feat_scale: bool = False) -> None:
        super().__init__()
        if qk_norm not in QK_NORMS:
            raise ValueError(f"qk_norm must be one of {QK_NORMS}, got {qk_norm!r}")
        self.dim, self.dim_heads, self.differential, self.qk_norm = dim, dim_heads, differential, qk_norm
        dim_kv = dim_context if dim_context is not None else dim
        self.num_heads, self.kv_heads = dim // dim_heads, dim_kv // dim_heads
        self.cross = dim_context is not None
        if self.cross:
            self.to_q = nn.Linear(dim, dim * (2 if differential else 1), bias=False)
            self.to_kv = nn.Linear(dim_kv, dim_kv * (3 if differential else 2), bias=False)
        else:
            self.to_qkv = nn.Linear(dim, dim * (5 if differential else 3), bias=False)
        self.to_out = nn.Linear(dim, dim, bias=False)
        if zero_init_output:
            nn.init.zeros_(self.to_out.weight)
        if qk_norm == "ln":
            self.q_norm: nn.Module = nn.LayerNorm(dim_heads, elementwise_affine=True, eps=1.0e-6)
            self.k_norm: nn.Module = nn.LayerNorm(dim_heads, elementwise_affine=True, eps=1.0e-6)
        elif qk_norm == "dyt":
            self.q_norm, self.k_norm = DynamicTanh(dim_heads), DynamicTanh(dim_heads)
        self.feat_scale = feat_scale
        if feat_scale:
            self.lambda_dc = nn.Parameter(torch.zeros(dim))
            self.lambda_hf = nn.Parameter(torch.zeros(dim))

    def _heads(self, x: Tensor, heads: int) -> Tensor:
        """``[B, N, heads * d]`` -> ``[B, heads, N, d]``."""
        b, n, _ = x.shape
        return x.reshape(b, n, heads, -1).transpose(1, 2)

    def _project(self, x: Tensor, context: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """Queries, keys, values ``[B, H, N, d]`` (stacked pairs ``[B, 2, H, N, d]`` when differential)."""
        h, kv_h = self.num_heads, self.kv_heads
        if self.cross:
            kv_input = context if context is not None else x
            if self.differential:
                q, q_diff = self.to_q(x).chunk(2, dim=-1)
                k, k_diff, v = self.to_kv(kv_input).chunk(3, dim=-1)
                q = torch.stack([self._heads(q, h), self._heads(q_diff, h)], dim=1)
                k = torch.stack([self._heads(k, kv_h), self._heads(k_diff, kv_h)], dim=1)
                return q, k, self._heads(v, kv_h)
            k, v = self.to_kv(kv_input).chunk(2, dim=-1)
            return self._heads(self.to_q(x), h), self._heads(k, kv_h), self._heads(v, kv_h)
        if self.differential:
            q, k, v, q_diff, k_diff = (self._heads(y, h) for y in self.to_qkv(x).chunk(5, dim=-1))
            return torch.stack([q, q_diff], dim=1), torch.stack([k, k_diff], dim=1), v
        q, k, v = (self._heads(y, h) for y in self.to_qkv(x).chunk(3, dim=-1))
        return q, k, v

    def _attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        if self.num_heads != self.kv_heads:
            group = self.num_heads // self.kv_heads
            k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        return F.scaled_dot_product_attention(q, k, v)

    def forward(self, x: Tensor, context: Tensor | None = None, rotary: Tensor | None = None) -> Tensor:
        """``x [B, N, dim]`` (and ``context [B, S, dim_context]``) -> ``[B, N, dim]``.

        ``rotary [N, R]`` (angles from :class:`RotaryEmbedding`) rotates the queries and keys of
        self-attention.
        """
        q, k, v = self._project(x, context)
        if self.qk_norm == "l2":
            q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        elif self.qk_norm != "none":
            q, k = self.q_norm(q).to(q.dtype), self.k_norm(k).to(k.dtype)
        if rotary is not None:
            q, k = apply_rotary(q, rotary).to(v.dtype), apply_rotary(k, rotary).to(v.dtype)
        if self.differential:
            (q, q_diff), (k, k_diff) = q.unbind(dim=1), k.unbind(dim=1)
            out = self._attend(q, k, v) - self._attend(q_diff, k_diff, v)
        else:
            out = self._attend(q, k, v)
        b, _, n, _ = out.shape
        out = self.to_out(out.transpose(1, 2).reshape(b, n, -1))
        if self.feat_scale:
            dc = out.mean(dim=-2, keepdim=True)
            out = out + self.lambda_dc * dc + self.lambda_hf * (out - dc)
        return out
