"""A latent diffusion model with stable-audio-tools' layout: ``model`` (the network with guidance),
``conditioner`` and ``pretransform``, so that its state dict keys are the reference's
(``model.model.transformer...``, ``conditioner.conditioners.<id>...``, ``pretransform.model...``).

:meth:`ConditionedDiffusionModel.get_conditioning_inputs` routes conditioner outputs to the network
as the reference's ``ConditionedDiffusionModelWrapper`` does: cross-attention ids concatenated over
tokens (masks too), global ids over channels (their one token each), prepend ids over tokens,
input-concat ids over channels.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .conditioners import Conditioning, MultiConditioner
from .config import DiffusionConfig
from .dit import GuidedDiT
from .pretransform import AutoencoderPretransform

ConditioningInputs = dict[str, Tensor | None]


class ConditionedDiffusionModel(nn.Module):
    """See the module docstring; ``conditioner`` is None for a ``diffusion_uncond`` model.

    Attributes:
        config: the validated config it was built from.
        io_channels: latent channels the network diffuses.
        sample_rate: of the audio.
        objective: ``v``, ``rectified_flow`` or ``rf_denoiser``.
        min_input_length: audio lengths must be multiples of this (ratio x patch size).
    """

    def __init__(self, config: DiffusionConfig, model: GuidedDiT, conditioner: MultiConditioner | None,
                 pretransform: AutoencoderPretransform | None) -> None:
        super().__init__()
        self.config = config
        self.model = model
        self.conditioner = conditioner
        self.pretransform = pretransform
        self.io_channels, self.sample_rate = config.io_channels, config.sample_rate
        self.objective = config.objective
        self.min_input_length = config.min_input_length

    def get_conditioning_inputs(self, cond: Conditioning, negative: bool = False) -> ConditioningInputs:
        """Conditioner outputs -> keyword arguments of :class:`GuidedDiT`.

        Returns ``cross_attn_cond [B, S, D]`` and ``cross_attn_mask [B, S]``, ``global_cond [B, G]``,
        ``input_concat_cond [B, C, L']``, ``prepend_cond [B, P, D]`` and ``prepend_cond_mask [B, P]``
        (None where no id is routed); with ``negative``, the reference's ``negative_*`` names (only
        the cross-attention ones are used by the network).
        """
        c = self.config
        cross = cross_mask = global_cond = concat = prepend = prepend_mask = None
        if c.cross_attention_cond_ids:
            tokens: list[Tensor] = []
            masks: list[Tensor | None] = []
            for key in c.cross_attention_cond_ids:
                emb, mask = cond[key]
                if emb.ndim == 2:  # a conditioner that returned [B, D]
                    emb = emb.unsqueeze(1)
                    mask = mask.unsqueeze(1) if mask is not None else None
                tokens.append(emb)
                masks.append(mask)
            cross = torch.cat(tokens, dim=1)
            cross_mask = _cat_masks(masks)
        if c.global_cond_ids:
            global_cond = torch.cat([cond[key][0] for key in c.global_cond_ids], dim=-1)
            if global_cond.ndim == 3:
                global_cond = global_cond.squeeze(1)
        if c.input_concat_ids:
            concat = torch.cat([cond[key][0] for key in c.input_concat_ids], dim=1)
        if c.prepend_cond_ids:
            prepend = torch.cat([cond[key][0] for key in c.prepend_cond_ids], dim=1)
            prepend_mask = _cat_masks([cond[key][1] for key in c.prepend_cond_ids])
        if negative:
            return {"negative_cross_attn_cond": cross, "negative_cross_attn_mask": cross_mask,
                    "negative_global_cond": global_cond, "negative_input_concat_cond": concat}
        return {"cross_attn_cond": cross, "cross_attn_mask": cross_mask, "global_cond": global_cond,
                "input_concat_cond": concat, "prepend_cond": prepend, "prepend_cond_mask": prepend_mask}

    def forward(self, x: Tensor, t: Tensor, cond: Conditioning | None = None, cfg_scale: float = 1.0, *,
                negative_cond: Conditioning | None = None, **kwargs: Any) -> Tensor:
        """``x [B, io_channels, N]``, ``t [B]`` and conditioner outputs -> the prediction ``[B, io_channels, N]``.

        Args:
            cond: ``model.conditioner(metadata, device)`` (None for an unconditional model).
            cfg_scale: classifier-free guidance scale (1: none).
            negative_cond: conditioner outputs of a negative prompt: its cross-attention tokens replace the
                zeros of the unconditional half under guidance.
            kwargs: ``cfg_dropout_prob``, ``cfg_interval``, ``scale_phi``, ``generator`` of :class:`GuidedDiT`.
        """
        inputs = self.get_conditioning_inputs(cond) if cond is not None else {}
        if negative_cond is not None:
            inputs.update(self.get_conditioning_inputs(negative_cond, negative=True))
        return self.model(x, t, cfg_scale=cfg_scale, **inputs, **kwargs)


def _cat_masks(masks: list[Tensor | None]) -> Tensor | None:
    """Masks concatenated over tokens (None when a pre-encoded conditioner gave none)."""
    present = [m for m in masks if m is not None]
    return torch.cat(present, dim=1) if len(present) == len(masks) else None
