"""A diffusion transformer (DiT) over latent frames.

Inputs ``x [B, io_channels, L]`` and ``t [B]`` in [0, 1]; conditioning arrives as cross-attention
tokens ``[B, S, cond_token_dim]``, a global vector ``[B, global_cond_dim]`` (added to the timestep
embedding, then prepended as a token or applied by adaptive layer norm) and prepended tokens
``[B, P, prepend_cond_dim]``. Positions use rotary embeddings. The output has the shape of ``x``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import DiTConfig


def _rotary(x: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding of ``x [B, H, N, D]`` (D even) over N."""
    n, d = x.shape[-2], x.shape[-1]
    freqs = 1.0 / (10000 ** (torch.arange(0, d, 2, device=x.device, dtype=torch.float32) / d))
    angles = torch.arange(n, device=x.device, dtype=torch.float32)[:, None] * freqs[None]
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, context_dim: int | None = None) -> None:
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_kv = nn.Linear(context_dim or dim, 2 * dim, bias=False)
        self.out = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, rotary: bool = False,
                key_mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, dim = x.shape
        q = self.to_q(x)
        k, v = self.to_kv(x if context is None else context).chunk(2, dim=-1)
        q, k, v = (y.reshape(b, y.shape[1], self.heads, -1).transpose(1, 2) for y in (q, k, v))
        if rotary:
            q, k = _rotary(q), _rotary(k)
        mask = key_mask[:, None, None, :] if key_mask is not None else None
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(out.transpose(1, 2).reshape(b, n, dim))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, context_dim: int | None, ada_ln: bool) -> None:
        super().__init__()
        self.norm1, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.self_attn = Attention(dim, heads)
        self.cross_attn = Attention(dim, heads, context_dim) if context_dim else None
        self.norm2 = nn.LayerNorm(dim) if context_dim else None
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.ada = nn.Linear(dim, 6 * dim) if ada_ln else None
        if self.ada is not None:
            nn.init.zeros_(self.ada.weight)
            nn.init.zeros_(self.ada.bias)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None, context_mask: torch.Tensor | None,
                global_embed: torch.Tensor | None) -> torch.Tensor:
        if self.ada is not None and global_embed is not None:
            s1, b1, g1, s2, b2, g2 = self.ada(F.silu(global_embed))[:, None].chunk(6, dim=-1)
            x = x + (1 + g1) * self.self_attn(self.norm1(x) * (1 + s1) + b1, rotary=True)
        else:
            x = x + self.self_attn(self.norm1(x), rotary=True)
        if self.cross_attn is not None and context is not None:
            x = x + self.cross_attn(self.norm2(x), context=context, key_mask=context_mask)
        if self.ada is not None and global_embed is not None:
            return x + (1 + g2) * self.ff(self.norm3(x) * (1 + s2) + b2)
        return x + self.ff(self.norm3(x))


def _mlp(d_in: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_out, bias=False), nn.SiLU(), nn.Linear(d_out, d_out, bias=False))


class DiffusionTransformer(nn.Module):
    """See the module docstring. Built from a :class:`DiTConfig`."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        dim = cfg.embed_dim
        self.time_freqs = nn.Parameter(torch.randn(128), requires_grad=False)
        self.to_time = nn.Sequential(nn.Linear(256, dim), nn.SiLU(), nn.Linear(dim, dim))
        context_dim = None
        if cfg.cond_token_dim:
            context_dim = dim if cfg.project_cond_tokens else cfg.cond_token_dim
            self.to_cond = _mlp(cfg.cond_token_dim, context_dim)
        if cfg.global_cond_dim:
            self.to_global = _mlp(cfg.global_cond_dim, dim)
        if cfg.prepend_cond_dim:
            self.to_prepend = _mlp(cfg.prepend_cond_dim, dim)
        ada = cfg.global_cond_type == "adaLN"
        p = cfg.patch_size
        self.proj_in = nn.Linear(cfg.io_channels * p, dim, bias=False)
        self.blocks = nn.ModuleList(Block(dim, cfg.num_heads, context_dim, ada) for _ in range(cfg.depth))
        self.norm_out = nn.LayerNorm(dim)
        self.proj_out = nn.Linear(dim, cfg.io_channels * p, bias=False)
        nn.init.zeros_(self.proj_out.weight)

    def forward(self, x: torch.Tensor, t: torch.Tensor, *, cross_cond: torch.Tensor | None = None,
                cross_mask: torch.Tensor | None = None, global_cond: torch.Tensor | None = None,
                prepend_cond: torch.Tensor | None = None, prepend_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x [B, C, L]`` (L a multiple of patch_size), ``t [B]`` -> ``[B, C, L]``."""
        b, c, length = x.shape
        p = self.cfg.patch_size
        tf = 2 * math.pi * t.float()[:, None] * self.time_freqs[None]
        embed = self.to_time(torch.cat([tf.cos(), tf.sin()], dim=-1))  # [B, D]
        if global_cond is not None:
            embed = embed + self.to_global(global_cond)
        h = self.proj_in(x.reshape(b, c, length // p, p).permute(0, 2, 1, 3).reshape(b, length // p, c * p))
        prefix = []
        if prepend_cond is not None:
            prefix.append(self.to_prepend(prepend_cond))
        if self.cfg.global_cond_type == "prepend":
            prefix.append(embed[:, None])
        n_prefix = sum(y.shape[1] for y in prefix)
        h = torch.cat([*prefix, h], dim=1)
        context = self.to_cond(cross_cond) if cross_cond is not None else None
        ada = embed if self.cfg.global_cond_type == "adaLN" else None
        for block in self.blocks:
            h = block(h, context, cross_mask, ada)
        out = self.proj_out(self.norm_out(h[:, n_prefix:]))  # [B, L/p, C*p]
        return out.reshape(b, length // p, c, p).permute(0, 2, 1, 3).reshape(b, c, length)
