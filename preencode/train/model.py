"""The conditioned latent diffusion model: pretransform, conditioners and DiT, built from a config.

``model.state_dict()`` has the same parts as stable-audio-tools' unwrapped models: ``pretransform.*``
(the frozen autoencoder under ``pretransform.model.*``), ``conditioner.*`` and ``model.*`` (the DiT).
The frozen T5 encoder is not part of it.
"""

from __future__ import annotations

import torch
from torch import nn

from ..models.factory import build_autoencoder
from .conditioners import Conditioning, MultiConditioner
from .config import DiffusionModelConfig, PretransformConfig
from .dit import DiffusionTransformer


class Pretransform(nn.Module):
    """A frozen autoencoder; diffusion runs on ``encode(audio) / scale`` and decodes ``latents * scale``."""

    def __init__(self, config: PretransformConfig) -> None:
        super().__init__()
        self.model = build_autoencoder(config.autoencoder).eval().requires_grad_(False)
        self.scale = config.scale

    def train(self, mode: bool = True) -> Pretransform:  # the autoencoder always stays in eval mode
        super().train(mode)
        self.model.eval()
        return self

    @torch.no_grad()
    def encode(self, audio: torch.Tensor, posterior: str = "sample") -> torch.Tensor:
        """Audio ``[B, C, T]`` -> scaled latents ``[B, latent_dim, T // ratio]``."""
        return self.model.encode(audio, posterior=posterior) / self.scale

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents ``[B, latent_dim, N]`` -> audio ``[B, C, N * ratio]``."""
        return self.model.decode(latents * self.scale)


class DiffusionModel(nn.Module):
    """Routes conditioner outputs to the DiT as in stable-audio-tools.

    Cross-attention conditioners are concatenated over tokens, global ones over channels (their first
    token), prepended ones over tokens.
    """

    def __init__(self, config: DiffusionModelConfig) -> None:
        super().__init__()
        self.config = config
        self.pretransform = Pretransform(config.pretransform) if config.pretransform else None
        self.conditioner = MultiConditioner(config.conditioning)
        self.model = DiffusionTransformer(config.diffusion)

    def condition(self, infos: list[dict], device: torch.device | str) -> Conditioning:
        return self.conditioner(infos, device) if len(self.conditioner.conditioners) else {}

    def dit_inputs(self, cond: Conditioning) -> dict[str, torch.Tensor | None]:
        """Conditioner outputs -> keyword arguments of :class:`DiffusionTransformer`."""
        c = self.config
        out: dict[str, torch.Tensor | None] = {}
        if c.cross_attention_cond_ids:
            out["cross_cond"] = torch.cat([cond[k][0] for k in c.cross_attention_cond_ids], dim=1)
            out["cross_mask"] = torch.cat([cond[k][1] for k in c.cross_attention_cond_ids], dim=1)
        if c.global_cond_ids:
            out["global_cond"] = torch.cat([cond[k][0][:, 0] for k in c.global_cond_ids], dim=-1)
        if c.prepend_cond_ids:
            out["prepend_cond"] = torch.cat([cond[k][0] for k in c.prepend_cond_ids], dim=1)
            out["prepend_mask"] = torch.cat([cond[k][1] for k in c.prepend_cond_ids], dim=1)
        return out

    @staticmethod
    def null_inputs(inputs: dict[str, torch.Tensor | None], drop: torch.Tensor | None = None) -> dict:
        """The unconditional inputs for classifier-free guidance: cross-attention and prepended tokens set
        to zero (for the samples where ``drop [B]`` is true, or all); global conditioning kept."""
        out = dict(inputs)
        for key in ("cross_cond", "prepend_cond"):
            value = inputs.get(key)
            if value is not None:
                keep = torch.zeros(value.shape[0], dtype=torch.bool, device=value.device) if drop is None else ~drop
                out[key] = value * keep[:, None, None].to(value.dtype)
        return out

    def forward(self, x: torch.Tensor, t: torch.Tensor, inputs: dict[str, torch.Tensor | None]) -> torch.Tensor:
        """``x [B, io_channels, L]``, ``t [B]`` -> prediction ``[B, io_channels, L]``."""
        return self.model(x, t, **inputs)
