"""From pre-bottleneck encoder output to what is stored: latents (or tokens), the posterior std, and
the per-sample noise of a posterior sample; which samples are not finite and must not be stored.

Batching, rank and device never change a sample's noise: it is drawn on the CPU from a generator
seeded with ``(seed, index, stream)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..models.autoencoder import AudioAutoencoder
from ..models.bottlenecks import DiscreteBottleneck, VAEBottleneck


def sample_generator(seed: int, index: int, stream: int = 0) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, index, stream])))


def posterior_noise(seed: int, index: int, shape: tuple[int, ...]) -> torch.Tensor:
    """Standard normal noise ``shape`` (float32) for the posterior sample of input ``index``."""
    return torch.from_numpy(sample_generator(seed, index, 1).standard_normal(shape, dtype=np.float32))


def bottleneck_outputs(model: AudioAutoencoder, settings: Any, pre: torch.Tensor,
                       indices: Sequence[int]) -> tuple[np.ndarray, np.ndarray | None]:
    """Latents ``[B, latent_dim, N]`` (tokens ``[B, n_q, N]``) and the VAE std ``[B, latent_dim, N]``
    (None unless ``settings.store_std``) of pre-bottleneck output ``pre`` ``[B, C_enc, N]``.

    A posterior sample uses noise drawn for each input index over all its ``N`` frames at once, so it
    does not depend on batching or on how a long input was chunked.
    """
    std = None
    if settings.is_discrete:
        if not isinstance(model.bottleneck, DiscreteBottleneck):  # the job checked this against the config
            raise TypeError(f"tokens need a discrete bottleneck, got {type(model.bottleneck).__name__}")
        return model.bottleneck.tokens(pre).cpu().numpy().astype(model.token_dtype), None
    if isinstance(model.bottleneck, VAEBottleneck):
        mean, std_t = model.bottleneck.posterior_params(pre.float())
        if settings.posterior == "mean":
            z = mean
        else:
            noise = torch.stack([posterior_noise(settings.seed, i, tuple(mean.shape[1:])) for i in indices])
            z = mean + std_t * noise.to(mean.device)
        if settings.store_std:
            std = std_t.cpu().numpy().astype(settings.out_dtype)
        return z.cpu().numpy().astype(settings.out_dtype), std
    return model.bottleneck.encode(pre).float().cpu().numpy().astype(settings.out_dtype), None


#: The failure reason of a sample whose encoding is not finite.
NON_FINITE = "non-finite latents"


def non_finite_rows(pre: torch.Tensor, latents: np.ndarray, std: np.ndarray | None) -> list[bool]:
    """Per sample: whether its pre-bottleneck output ``pre`` ``[B, C_enc, N]``, its stored latents (or
    tokens) ``[B, C, N]`` or its std hold a NaN or an infinity.

    Checked per sample, not per batch: the encoder is convolutional and its normalisation-free layers
    never mix the samples of a batch, so a NaN in one sample's audio path says nothing about the others
    (and a tiny window does not condemn its batch). Tokens are checked through ``pre``: a NaN
    distance still picks a code. The stored arrays are checked too: float16 latents overflow to inf.
    """
    bad = ~torch.isfinite(pre).flatten(1).all(dim=1).cpu().numpy()
    for array in (latents, std):
        if array is not None and np.issubdtype(array.dtype, np.floating):
            bad |= ~np.isfinite(array).reshape(len(array), -1).all(axis=1)
    return [bool(b) for b in bad]
