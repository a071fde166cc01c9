"""stable-audio-tools' diffusion transformer (``type: dit``) and its classifier-free guidance.

:class:`DiffusionTransformer` is the network: noisy latents ``x [B, C, L]`` and noise levels
``t [B]`` in, a prediction of the shape of ``x`` out (``v`` or the flow velocity, depending on the
objective it was trained with). Conditioning arrives as:

* cross-attention tokens ``[B, S, cond_token_dim]`` (projected by ``to_cond_embed``);
* a global vector ``[B, global_cond_dim]`` (projected by ``to_global_embed``, added to the timestep
  embedding, then prepended as one token or applied by adaptive layer norm);
* prepended tokens ``[B, P, prepend_cond_dim]`` (projected by ``to_prepend_embed``);
* input-concat channels ``[B, input_concat_dim, L']`` (resized to ``L`` by nearest neighbour).

:class:`GuidedDiT` (the reference's ``DiTWrapper`` plus its ``DiffusionTransformer.forward``) adds
classifier-free guidance and dropout around it. The module tree (``model.model.transformer...``)
and every parameter name equal the reference's.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .dit_config import DiTConfig
from .transformer import ContinuousTransformer

OBJECTIVES = ("v", "rectified_flow", "rf_denoiser")


class FourierFeatures(nn.Module):
    """``[B, in]`` -> ``[B, out]``: cos and sin of ``2π x W^T`` with fixed random frequencies ``W``."""

    def __init__(self, in_features: int, out_features: int, std: float = 1.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn([out_features // 2, in_features]) * std)

    def forward(self, x: Tensor) -> Tensor:
        f = 2 * math.pi * x @ self.weight.T
        return torch.cat([f.cos(), f.sin()], dim=-1)


def _mlp(d_in: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_out, bias=False), nn.SiLU(), nn.Linear(d_out, d_out, bias=False))


class DiffusionTransformer(nn.Module):
    """The network of a ``dit`` model (see the module docstring). Built from a :class:`DiTConfig`."""

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        c = self.config = config
        self.timestep_features = FourierFeatures(1, 256)
        self.to_timestep_embed = nn.Sequential(nn.Linear(256, c.timestep_dim, bias=True), nn.SiLU(),
                                               nn.Linear(c.timestep_dim, c.timestep_dim, bias=True))
        if c.cond_token_dim > 0:
            self.to_cond_embed = _mlp(c.cond_token_dim, c.cond_embed_dim)
        if c.global_cond_dim > 0:
            self.to_global_embed = _mlp(c.global_cond_dim, c.embed_dim if c.project_global_cond else c.global_cond_dim)
        if c.prepend_cond_dim > 0:
            self.to_prepend_embed = _mlp(c.prepend_cond_dim, c.embed_dim)
        self.patch_size = c.patch_size
        self.transformer = ContinuousTransformer(
            c.embed_dim, c.depth, dim_in=c.dim_in * c.patch_size, dim_out=c.io_channels * c.patch_size,
            dim_heads=c.dim_heads, cross_attend=c.cond_token_dim > 0, cond_token_dim=c.cond_embed_dim,
            global_cond_dim=c.embed_dim if c.global_cond_type == "adaLN" else None, opts=c.transformer)
        self.preprocess_conv = nn.Conv1d(c.dim_in, c.dim_in, 1, bias=False)
        nn.init.zeros_(self.preprocess_conv.weight)
        self.postprocess_conv = nn.Conv1d(c.io_channels, c.io_channels, 1, bias=False)
        nn.init.zeros_(self.postprocess_conv.weight)

    def forward(self, x: Tensor, t: Tensor, cross_attn_cond: Tensor | None = None,
                input_concat_cond: Tensor | None = None, global_embed: Tensor | None = None,
                prepend_cond: Tensor | None = None) -> Tensor:
        """``x [B, io_channels, L]`` (L a multiple of patch_size), ``t [B]`` -> ``[B, io_channels, L]``."""
        c = self.config
        if x.ndim != 3 or x.shape[1] != c.io_channels:
            raise ValueError(f"expected latents [B, {c.io_channels}, L], got {list(x.shape)}")
        if x.shape[-1] % self.patch_size:
            raise ValueError(f"sequence length {x.shape[-1]} is not a multiple of patch_size {self.patch_size}")
        if cross_attn_cond is not None:
            cross_attn_cond = self.to_cond_embed(cross_attn_cond)
        if global_embed is not None:
            global_embed = self.to_global_embed(global_embed)
        prepend: Tensor | None = self.to_prepend_embed(prepend_cond) if prepend_cond is not None else None
        if input_concat_cond is not None:
            if input_concat_cond.shape[2] != x.shape[2]:
                input_concat_cond = F.interpolate(input_concat_cond, (x.shape[2],), mode="nearest")
            x = torch.cat([x, input_concat_cond], dim=1)
        timestep_embed = self.to_timestep_embed(self.timestep_features(t[:, None]))
        if c.timestep_cond_type == "global":
            global_embed = timestep_embed if global_embed is None else global_embed + timestep_embed
        else:
            x = torch.cat([x, timestep_embed.unsqueeze(1).expand(-1, -1, x.shape[2])], dim=1)
        if c.global_cond_type == "prepend" and global_embed is not None:
            token = global_embed.unsqueeze(1)
            prepend = token if prepend is None else torch.cat([prepend, token], dim=1)
        prepend_length = prepend.shape[1] if prepend is not None else 0

        x = (self.preprocess_conv(x) + x).transpose(1, 2)  # [B, L, C]
        b, length, channels = x.shape
        p = self.patch_size
        if p > 1:  # [B, L, C] -> [B, L / p, C * p], channel-major within a patch
            x = x.reshape(b, length // p, p, channels).permute(0, 1, 3, 2).reshape(b, length // p, channels * p)
        out = self.transformer(x, prepend_embeds=prepend, context=cross_attn_cond,
                               global_cond=global_embed if c.global_cond_type == "adaLN" else None)
        out = out.transpose(1, 2)[:, :, prepend_length:]  # [B, C * p, L / p]
        if p > 1:
            out = out.reshape(b, c.io_channels, p, length // p).permute(0, 1, 3, 2).reshape(b, c.io_channels, length)
        return self.postprocess_conv(out) + out


class GuidedDiT(nn.Module):
    """Classifier-free guidance and conditioning dropout around a :class:`DiffusionTransformer`.

    Semantics are the reference's: guidance runs the conditional and the unconditional input as one
    doubled batch; "unconditional" means cross-attention and prepended tokens replaced by zeros (or,
    for cross-attention, by the negative conditioning where its mask is true), while the global
    conditioning and input-concat channels are kept. Attention masks are accepted and not applied,
    as in the reference (which disables them before its transformer).

    Args:
        config: the network's settings.
        objective: ``v``, ``rectified_flow`` or ``rf_denoiser``; decides the noise level ``sigma(t)``
            that ``cfg_interval`` is compared with.
    """

    def __init__(self, config: DiTConfig, objective: str = "v") -> None:
        super().__init__()
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        self.objective = objective
        self.model = DiffusionTransformer(config)

    def sigma(self, t: Tensor) -> Tensor:
        return torch.sin(t * math.pi / 2) if self.objective == "v" else t

    def forward(self, x: Tensor, t: Tensor, *, cross_attn_cond: Tensor | None = None,
                cross_attn_mask: Tensor | None = None, negative_cross_attn_cond: Tensor | None = None,
                negative_cross_attn_mask: Tensor | None = None, input_concat_cond: Tensor | None = None,
                negative_input_concat_cond: Tensor | None = None, global_cond: Tensor | None = None,
                negative_global_cond: Tensor | None = None, prepend_cond: Tensor | None = None,
                prepend_cond_mask: Tensor | None = None, cfg_scale: float = 1.0, cfg_dropout_prob: float = 0.0,
                cfg_interval: tuple[float, float] = (0.0, 1.0), scale_phi: float = 0.0,
                generator: torch.Generator | None = None) -> Tensor:
        """``x [B, C, L]``, ``t [B]`` -> ``[B, C, L]``.

        Args:
            cross_attn_cond, prepend_cond: ``[B, S, D]`` tokens (``*_mask [B, S]`` are not applied).
            negative_cross_attn_cond: ``[B, S, D]`` replaces the zeros of the unconditional half where
                ``negative_cross_attn_mask`` is true. ``negative_global_cond`` and
                ``negative_input_concat_cond`` are accepted and unused, as in the reference.
            global_cond: ``[B, global_cond_dim]``; input_concat_cond: ``[B, input_concat_dim, L']``.
            cfg_scale: guidance scale; 1 runs the conditional model only.
            cfg_dropout_prob: training only (with ``cfg_scale`` 1): per sample, replace the cross-attention
                (and, independently, the prepended) tokens by zeros with this probability.
            cfg_interval: guidance applies only when ``sigma(t[0])`` lies in this closed interval.
            scale_phi: CFG rescale: mix in the guided output rescaled to the conditional output's std
                over channels.
            generator: for the dropout draws (the global generator when None).
        """
        dtype = self.model.preprocess_conv.weight.dtype
        x, t = x.to(dtype), t.to(dtype)
        cross_attn_cond, negative_cross_attn_cond, input_concat_cond, global_cond, prepend_cond = (
            v.to(dtype) if v is not None else None
            for v in (cross_attn_cond, negative_cross_attn_cond, input_concat_cond, global_cond, prepend_cond))

        if cfg_dropout_prob > 0.0 and cfg_scale == 1.0:
            cross_attn_cond = _drop(cross_attn_cond, cfg_dropout_prob, generator)
            prepend_cond = _drop(prepend_cond, cfg_dropout_prob, generator)

        guided = cfg_scale != 1.0 and (cross_attn_cond is not None or prepend_cond is not None)
        if guided:
            sigma = self.sigma(t)
            guided = bool(cfg_interval[0] <= sigma[0] <= cfg_interval[1])
        if not guided:
            return self.model(x, t, cross_attn_cond=cross_attn_cond, input_concat_cond=input_concat_cond,
                              global_embed=global_cond, prepend_cond=prepend_cond)

        def doubled(v: Tensor | None) -> Tensor | None:
            return torch.cat([v, v], dim=0) if v is not None else None

        batch_cross = None
        if cross_attn_cond is not None:
            null = torch.zeros_like(cross_attn_cond)
            if negative_cross_attn_cond is not None:
                if negative_cross_attn_mask is not None:
                    keep = negative_cross_attn_mask.to(torch.bool).unsqueeze(2)
                    negative_cross_attn_cond = torch.where(keep, negative_cross_attn_cond, null)
                null = negative_cross_attn_cond
            batch_cross = torch.cat([cross_attn_cond, null], dim=0)
        batch_prepend = None
        if prepend_cond is not None:
            batch_prepend = torch.cat([prepend_cond, torch.zeros_like(prepend_cond)], dim=0)
        out = self.model(doubled(x), doubled(t), cross_attn_cond=batch_cross,
                         input_concat_cond=doubled(input_concat_cond), global_embed=doubled(global_cond),
                         prepend_cond=batch_prepend)
        cond_out, uncond_out = torch.chunk(out, 2, dim=0)
        cfg_out = uncond_out + (cond_out - uncond_out) * cfg_scale
        if scale_phi == 0.0:
            return cfg_out
        cond_std = cond_out.std(dim=1, keepdim=True)
        cfg_std = cfg_out.std(dim=1, keepdim=True)
        return scale_phi * (cfg_out * (cond_std / cfg_std)) + (1 - scale_phi) * cfg_out


def _drop(tokens: Tensor | None, prob: float, generator: torch.Generator | None) -> Tensor | None:
    """Per sample, zero all of ``tokens [B, S, D]`` with probability ``prob``."""
    if tokens is None:
        return None
    drop = torch.bernoulli(torch.full((tokens.shape[0], 1, 1), prob, device=tokens.device),
                           generator=generator).to(torch.bool)
    return torch.where(drop, torch.zeros_like(tokens), tokens)
