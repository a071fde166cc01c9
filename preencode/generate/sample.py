"""Generating audio with a diffusion model: conditioning, starting noise, sampler, decoding.

One path for every caller (``preencode generate``, training demos, the demo fine-tune). Like
stable-audio-tools' ``generate_diffusion_cond``: conditioner outputs are routed to the network
(optionally with a negative prompt's), standard normal noise ``[B, io_channels, frames]`` is drawn from
the seed, the objective's sampler integrates it (:func:`preencode.models.diffusion.sampling.sample`),
and the pretransform decodes the latents. The starting noise is drawn on the CPU from
``torch.Generator().manual_seed(seed)`` (the same numbers as the reference's ``torch.manual_seed(seed)``
on a CPU, and the same on every device); the sampler's own noise comes from a generator on the
model's device seeded with ``seed + 1``. Same model, arguments and seed: same output.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import UserError
from ..models.diffusion.model import ConditionedDiffusionModel
from ..models.diffusion.sampling import DEFAULTS, RF_SAMPLERS, V_SAMPLERS, sample


def samplers_for(objective: str) -> tuple[str, ...]:
    """The sampler names valid for a model's objective."""
    return V_SAMPLERS if objective == "v" else RF_SAMPLERS


def latent_frames(model: ConditionedDiffusionModel, seconds: float, sample_size: int | None = None) -> int:
    """Latent frames to generate for ``seconds`` of audio: the model's training window (``sample_size``,
    within which it is conditioned on ``seconds_total``) or, when the audio is longer or the config sets
    no window, the audio's own length; rounded up to a multiple of the network's patch size."""
    ratio = model.pretransform.downsampling_ratio if model.pretransform is not None else 1
    samples = max(math.ceil(seconds * model.sample_rate), sample_size or 0)
    unit = model.min_input_length
    return math.ceil(samples / unit) * unit // ratio


@torch.no_grad()
def sample_latents(model: ConditionedDiffusionModel, metadata: list[dict[str, Any]], frames: int, *,
                   seed: int = 0, steps: int | None = None, cfg_scale: float | None = None,
                   sampler: str | None = None, negative_metadata: list[dict[str, Any]] | None = None,
                   network: nn.Module | None = None, sigma_min: float | None = None,
                   sigma_max: float | None = None) -> Tensor:
    """Latents ``[len(metadata), io_channels, frames]`` (scaled, i.e. ready for ``pretransform.decode``).

    Args:
        model: supplies the conditioner, the routing of its outputs and the objective.
        metadata: one dict per output (e.g. ``{"prompt": ..., "seconds_start": 0, "seconds_total": 10}``).
        frames: latent length (a multiple of the patch size).
        seed: starting noise and sampler noise (see the module docstring).
        steps, cfg_scale, sampler, sigma_min, sigma_max: None takes the objective's defaults
            (:data:`~preencode.models.diffusion.sampling.DEFAULTS`).
        negative_metadata: a negative prompt's metadata, one dict per output (cross-attention only).
        network: the network to sample with instead of ``model.model`` (e.g. the EMA copy in training).

    Raises:
        UserError: a sampler the objective does not have, or missing metadata fields.
    """
    objective = model.objective
    if sampler is not None and sampler not in samplers_for(objective):
        raise UserError(f"Sampler {sampler!r} does not fit the model's {objective!r} objective; valid: "
                        f"{', '.join(samplers_for(objective))}.", "Pick one of those (or leave the default).")
    net = network if network is not None else model.model
    device = next(net.parameters()).device
    inputs: dict[str, Any] = {}
    if model.conditioner is not None:
        inputs = model.get_conditioning_inputs(model.conditioner(metadata, device))
        if negative_metadata is not None:
            inputs.update(model.get_conditioning_inputs(model.conditioner(negative_metadata, device), negative=True))
    scale = DEFAULTS[objective].cfg_scale if cfg_scale is None else cfg_scale
    dtype = next(net.parameters()).dtype
    noise = torch.randn([len(metadata), model.io_channels, frames], generator=torch.Generator().manual_seed(seed))
    noise = noise.to(device=device, dtype=dtype)
    generator = torch.Generator(device=device).manual_seed(seed + 1)

    def denoise(x: Tensor, t: Tensor) -> Tensor:
        return net(x, t, cfg_scale=scale, **inputs)

    return sample(denoise, noise, objective, sampler, steps, sigma_min=sigma_min, sigma_max=sigma_max,
                  generator=generator)


@torch.no_grad()
def generate_audio(model: ConditionedDiffusionModel, metadata: list[dict[str, Any]], seconds: float, *,
                   sample_size: int | None = None, **kwargs: Any) -> Tensor:
    """Audio ``[len(metadata), channels, round(seconds * sample_rate)]`` (float32, clamped to [-1, 1]).

    ``kwargs`` go to :func:`sample_latents`. Without a pretransform the sampled tensor is the audio.
    """
    if seconds <= 0:
        raise UserError(f"The length to generate must be positive, got {seconds} s.", "Pass --seconds-total > 0.")
    frames = latent_frames(model, seconds, sample_size)
    latents = sample_latents(model, metadata, frames, **kwargs)
    audio = model.pretransform.decode(latents) if model.pretransform is not None else latents
    length = round(seconds * model.sample_rate)
    return audio[..., :length].float().clamp(-1, 1)
