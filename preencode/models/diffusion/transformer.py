"""stable-audio-tools' ContinuousTransformer: pre-norm blocks of self-attention, cross-attention and a
(gated) feed-forward, with optional adaptive layer norm, conformer modules and layer scale.

Module and parameter names equal the reference's (``layers.N.pre_norm.gamma``, ``layers.N.ff.ff.0.proj``,
``rotary_pos_emb.inv_freq``...), so state dicts are interchangeable. Shapes: ``[B, N, D]`` (batch,
positions, features).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from .attention import Attention, DynamicTanh, RotaryEmbedding
from .dit_config import TransformerOptions


class LayerNorm(nn.Module):
    """Layer norm with a learned gain ``gamma`` and a bias ``beta`` that is a fixed zero buffer unless
    ``bias`` (the reference's default is bias-less)."""

    def __init__(self, dim: int, bias: bool = False, fix_scale: bool = False, force_fp32: bool = False,
                 eps: float = 1e-5) -> None:
        super().__init__()
        if fix_scale:
            self.register_buffer("gamma", torch.ones(dim))
        else:
            self.gamma = nn.Parameter(torch.ones(dim))
        if bias:
            self.beta = nn.Parameter(torch.zeros(dim))
        else:
            self.register_buffer("beta", torch.zeros(dim))
        self.eps, self.force_fp32 = eps, force_fp32

    def forward(self, x: Tensor) -> Tensor:
        if not self.force_fp32:
            return F.layer_norm(x, x.shape[-1:], weight=self.gamma, bias=self.beta, eps=self.eps)
        out = F.layer_norm(x.float(), x.shape[-1:], weight=self.gamma.float(), bias=self.beta.float(), eps=self.eps)
        return out.to(x.dtype)


class LayerScale(nn.Module):
    def __init__(self, dim: int, init_val: float = 1e-5) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full([dim], init_val))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale


class _Transpose(nn.Module):
    """Swaps the last two dims (``[B, N, D]`` <-> ``[B, D, N]``) around a convolution."""

    def forward(self, x: Tensor) -> Tensor:
        return x.transpose(-1, -2)


class GLU(nn.Module):
    """``x * act(gate)`` with ``x, gate`` the two halves of a linear (or convolutional) projection."""

    def __init__(self, dim_in: int, dim_out: int, activation: nn.Module, use_conv: bool = False,
                 conv_kernel_size: int = 3) -> None:
        super().__init__()
        self.act, self.use_conv = activation, use_conv
        self.proj: nn.Module = (nn.Conv1d(dim_in, dim_out * 2, conv_kernel_size, padding=conv_kernel_size // 2)
                                if use_conv else nn.Linear(dim_in, dim_out * 2))

    def forward(self, x: Tensor) -> Tensor:
        x = self.proj(x.transpose(1, 2)).transpose(1, 2) if self.use_conv else self.proj(x)
        x, gate = x.chunk(2, dim=-1)
        return x * self.act(gate)


class FeedForward(nn.Module):
    """``dim -> dim * mult -> dim``: SwiGLU by default (``glu``), else linear + SiLU; convolutions
    instead of the linear layers with ``use_conv`` (the GLU's input projection stays linear, as in the
    reference)."""

    def __init__(self, dim: int, mult: float = 4, no_bias: bool = False, glu: bool = True, use_conv: bool = False,
                 conv_kernel_size: int = 3, zero_init_output: bool = True) -> None:
        super().__init__()
        inner = int(dim * mult)
        pad = conv_kernel_size // 2
        linear_in: nn.Module
        if glu:
            linear_in = GLU(dim, inner, nn.SiLU())
        else:
            linear_in = nn.Sequential(
                _Transpose() if use_conv else nn.Identity(),
                (nn.Conv1d(dim, inner, conv_kernel_size, padding=pad, bias=not no_bias) if use_conv
                 else nn.Linear(dim, inner, bias=not no_bias)),
                _Transpose() if use_conv else nn.Identity(),
                nn.SiLU(),
            )
        linear_out: nn.Linear | nn.Conv1d = (
            nn.Conv1d(inner, dim, conv_kernel_size, padding=pad, bias=not no_bias) if use_conv
            else nn.Linear(inner, dim, bias=not no_bias))
        if zero_init_output:
            nn.init.zeros_(linear_out.weight)
            if linear_out.bias is not None:
                nn.init.zeros_(linear_out.bias)
        self.ff = nn.Sequential(linear_in, _Transpose() if use_conv else nn.Identity(), linear_out,
                                _Transpose() if use_conv else nn.Identity())

    def forward(self, x: Tensor) -> Tensor:
        return self.ff(x)


class ConformerModule(nn.Module):
    """Pointwise conv, GLU, depthwise conv (kernel 17), norm, SiLU, pointwise conv; ``[B, N, D]`` in and out."""

    def __init__(self, dim: int, norm_kwargs: dict) -> None:
        super().__init__()
        self.in_norm = LayerNorm(dim, **norm_kwargs)
        self.pointwise_conv = nn.Conv1d(dim, dim, kernel_size=1, bias=False)
        self.glu = GLU(dim, dim, nn.SiLU())
        self.depthwise_conv = nn.Conv1d(dim, dim, kernel_size=17, groups=dim, padding=8, bias=False)
        self.mid_norm = LayerNorm(dim, **norm_kwargs)
        self.swish = nn.SiLU()
        self.pointwise_conv_2 = nn.Conv1d(dim, dim, kernel_size=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pointwise_conv(self.in_norm(x).transpose(1, 2)).transpose(1, 2)
        x = self.depthwise_conv(self.glu(x).transpose(1, 2)).transpose(1, 2)
        x = self.swish(self.mid_norm(x))
        return self.pointwise_conv_2(x.transpose(1, 2)).transpose(1, 2)


class TransformerBlock(nn.Module):
    """Self-attention, optional cross-attention, optional conformer module, feed-forward; each a
    residual branch after a norm. With ``global_cond_dim`` the self-attention and feed-forward branches
    are modulated (adaptive layer norm: scale, shift and a sigmoid gate from the global conditioning)."""

    def __init__(self, dim: int, dim_heads: int, cross_attend: bool, dim_context: int | None,
                 global_cond_dim: int | None, opts: TransformerOptions) -> None:
        super().__init__()
        self.dim_heads = min(dim_heads, dim)
        zero_init = opts.zero_init_branch_outputs and not opts.layer_scale
        attn: dict[str, Any] = {"qk_norm": opts.qk_norm, "differential": opts.differential,
                                "feat_scale": opts.feat_scale}
        norm = opts.norm_kwargs()

        def make_norm() -> nn.Module:
            return DynamicTanh(dim) if opts.remove_norms else LayerNorm(dim, **norm)

        def make_scale() -> nn.Module:
            return LayerScale(dim) if opts.layer_scale else nn.Identity()

        self.pre_norm = make_norm()
        self.self_attn = Attention(dim, dim_heads=self.dim_heads, zero_init_output=zero_init, **attn)
        self.self_attn_scale = make_scale()
        self.cross_attend = cross_attend
        if cross_attend:
            self.cross_attend_norm = make_norm()
            self.cross_attn = Attention(dim, dim_heads=self.dim_heads, dim_context=dim_context,
                                        zero_init_output=zero_init, **attn)
            self.cross_attn_scale = make_scale()
        self.ff_norm = make_norm()
        self.ff = FeedForward(dim, zero_init_output=zero_init, **opts.ff_kwargs())
        self.ff_scale = make_scale()
        self.conformer: ConformerModule | None = None
        if opts.conformer:
            self.conformer = ConformerModule(dim, norm)
            self.conformer_scale = make_scale()
        self.global_cond_dim = global_cond_dim
        if global_cond_dim is not None:
            self.to_scale_shift_gate = nn.Parameter(torch.randn(6 * dim) / dim ** 0.5)
        self.rope = RotaryEmbedding(self.dim_heads // 2) if opts.add_rope else None

    def forward(self, x: Tensor, context: Tensor | None = None, global_cond: Tensor | None = None,
                rotary: Tensor | None = None) -> Tensor:
        """``x [B, N, D]``, ``context [B, S, dim_context]``, ``global_cond [B, 6 * D]`` -> ``[B, N, D]``."""
        if rotary is None and self.rope is not None:
            rotary = self.rope(x.shape[-2])
        if self.global_cond_dim and global_cond is not None:
            scale_self, shift_self, gate_self, scale_ff, shift_ff, gate_ff = (
                (self.to_scale_shift_gate + global_cond).unsqueeze(1).chunk(6, dim=-1))
            residual = x
            x = self.pre_norm(x) * (1 + scale_self) + shift_self
            x = self.self_attn(x, rotary=rotary) * torch.sigmoid(1 - gate_self)
            x = self.self_attn_scale(x) + residual
            x = self._cross_and_conformer(x, context)
            residual = x
            x = self.ff_norm(x) * (1 + scale_ff) + shift_ff
            x = self.ff(x) * torch.sigmoid(1 - gate_ff)
            return self.ff_scale(x) + residual
        x = x + self.self_attn_scale(self.self_attn(self.pre_norm(x), rotary=rotary))
        x = self._cross_and_conformer(x, context)
        return x + self.ff_scale(self.ff(self.ff_norm(x)))

    def _cross_and_conformer(self, x: Tensor, context: Tensor | None) -> Tensor:
        if context is not None and self.cross_attend:
            x = x + self.cross_attn_scale(self.cross_attn(self.cross_attend_norm(x), context=context))
        if self.conformer is not None:
            x = x + self.conformer_scale(self.conformer(x))
        return x


class ScaledSinusoidalEmbedding(nn.Module):
    """Sinusoidal absolute positions ``[N, D]`` with a learned scale."""

    def __init__(self, dim: int, theta: float = 10000) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1) * dim ** -0.5)
        half = dim // 2
        self.register_buffer("inv_freq", theta ** -(torch.arange(half).float() / half), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        pos = torch.arange(x.shape[1], device=x.device)
        emb = torch.einsum("i,j->ij", pos, self.inv_freq)
        return torch.cat((emb.sin(), emb.cos()), dim=-1) * self.scale


class AbsolutePositionalEmbedding(nn.Module):
    """A learned embedding per position ``[N, D]``, scaled by ``D ** -0.5``."""

    def __init__(self, dim: int, max_seq_len: int) -> None:
        super().__init__()
        self.scale, self.max_seq_len = dim ** -0.5, max_seq_len
        self.emb = nn.Embedding(max_seq_len, dim)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] > self.max_seq_len:
            raise ValueError(f"sequence of {x.shape[1]} positions is longer than abs_pos_emb_max_length "
                             f"(+ memory tokens) {self.max_seq_len}")
        return self.emb(torch.arange(x.shape[1], device=x.device)) * self.scale


class ContinuousTransformer(nn.Module):
    """Projects ``[B, N, dim_in]`` to ``dim``, prepends the given tokens (and learned memory tokens),
    runs the blocks and projects back to ``dim_out``; the memory tokens are dropped, the prepended ones
    are returned (the caller removes them).

    Args:
        dim, depth, dim_heads: width, number of blocks, width of a head.
        dim_in, dim_out: input and output widths (a bias-less linear projection each).
        cross_attend, cond_token_dim: cross-attention over a context of that width.
        global_cond_dim: adaptive layer norm from a global vector of that width.
        opts: the reference's transformer keyword options (rotary embeddings, conformer, norms...).
    """

    def __init__(self, dim: int, depth: int, *, dim_in: int, dim_out: int, dim_heads: int, cross_attend: bool,
                 cond_token_dim: int | None, global_cond_dim: int | None, opts: TransformerOptions) -> None:
        super().__init__()
        self.dim, self.depth = dim, depth
        self.gradient_checkpointing = False
        self.layers = nn.ModuleList([])
        self.project_in = nn.Linear(dim_in, dim, bias=False)
        self.project_out = nn.Linear(dim, dim_out, bias=False)
        self.rotary_pos_emb = RotaryEmbedding(max(dim_heads // 2, 32)) if opts.rotary_pos_emb else None
        self.num_memory_tokens = opts.num_memory_tokens
        if opts.num_memory_tokens > 0:
            self.memory_tokens = nn.Parameter(torch.randn(opts.num_memory_tokens, dim))
        self.pos_emb: nn.Module | None = None
        if opts.use_sinusoidal_emb:
            self.pos_emb = ScaledSinusoidalEmbedding(dim)
        if opts.use_abs_pos_emb:  # wins over the sinusoidal one when both are set, as in the reference
            self.pos_emb = AbsolutePositionalEmbedding(dim, opts.abs_pos_emb_max_length + opts.num_memory_tokens)
        self.global_cond_embedder = None
        if global_cond_dim is not None:
            self.global_cond_embedder = nn.Sequential(nn.Linear(global_cond_dim, dim), nn.SiLU(),
                                                      nn.Linear(dim, dim * 6))
        for i in range(depth):
            cross = cross_attend and (opts.final_cross_attn_ix == -1 or i <= opts.final_cross_attn_ix)
            self.layers.append(TransformerBlock(dim, dim_heads, cross, cond_token_dim, global_cond_dim, opts))

    def forward(self, x: Tensor, prepend_embeds: Tensor | None = None, context: Tensor | None = None,
                global_cond: Tensor | None = None) -> Tensor:
        """``x [B, N, dim_in]``, ``prepend_embeds [B, P, dim]``, ``context [B, S, cond_token_dim]``,
        ``global_cond [B, global_cond_dim]`` -> ``[B, P + N, dim_out]``."""
        x = self.project_in(x.to(self.project_in.weight.dtype))
        if prepend_embeds is not None:
            if prepend_embeds.shape[-1] != x.shape[-1]:
                raise ValueError(f"prepended tokens have width {prepend_embeds.shape[-1]}, expected {x.shape[-1]}")
            x = torch.cat((prepend_embeds, x), dim=-2)
        if self.num_memory_tokens > 0:
            x = torch.cat((self.memory_tokens.expand(x.shape[0], -1, -1), x), dim=1)
        rotary = self.rotary_pos_emb(x.shape[1]) if self.rotary_pos_emb is not None else None
        if self.pos_emb is not None:
            x = x + self.pos_emb(x)
        if global_cond is not None and self.global_cond_embedder is not None:
            global_cond = self.global_cond_embedder(global_cond)
        for layer in self.layers:
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(layer, x, context, global_cond, rotary, use_reentrant=False)
            else:
                x = layer(x, context=context, global_cond=global_cond, rotary=rotary)
        return self.project_out(x[:, self.num_memory_tokens:, :])
