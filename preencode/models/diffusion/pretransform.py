"""The frozen autoencoder a latent diffusion model works through (stable-audio-tools' ``AutoencoderPretransform``).

Its autoencoder is ours (:class:`preencode.models.autoencoder.AudioAutoencoder`, keys under
``pretransform.model.*`` with the reference's weight-norm names). Diffusion runs on
``encode(audio) / scale`` and decodes ``latents * scale``.
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor, nn

from ..autoencoder import AudioAutoencoder

log = logging.getLogger(__name__)


class AutoencoderPretransform(nn.Module):
    """A frozen autoencoder (always in eval mode, no gradients).

    Args:
        autoencoder: the autoencoder (its weights are loaded with the diffusion model's).
        scale: latents are divided by it after encoding and multiplied before decoding.
        model_half: compute in float16 on CUDA (weights converted at the first call there); other
            devices keep float32, as CPUs lack fast float16 arithmetic.
        iterate_batch: encode and decode one sample at a time (less memory, same numbers).
    """

    def __init__(self, autoencoder: AudioAutoencoder, scale: float = 1.0, model_half: bool = False,
                 iterate_batch: bool = False) -> None:
        super().__init__()
        self.model = autoencoder.eval().requires_grad_(False)
        self.scale, self.model_half, self.iterate_batch = scale, model_half, iterate_batch
        self.io_channels = autoencoder.io_channels
        self.encoded_channels = autoencoder.latent_dim
        self.downsampling_ratio = autoencoder.downsampling_ratio
        self.sample_rate = autoencoder.sample_rate
        self._warned = False

    def train(self, mode: bool = True) -> AutoencoderPretransform:
        super().train(mode)
        self.model.eval()
        return self

    def _prepare(self, x: Tensor) -> None:
        if not self.model_half or self.model.dtype == torch.float16:
            return
        if x.device.type == "cuda":
            self.model.half()
        elif not self._warned:
            log.warning("model_half: the pretransform computes in float32 on %s (no fast float16 arithmetic).",
                        x.device.type)
            self._warned = True

    def _each(self, fn: object, x: Tensor) -> Tensor:
        if not self.iterate_batch:
            return fn(x)  # type: ignore[operator]
        return torch.cat([fn(x[i:i + 1]) for i in range(x.shape[0])], dim=0)  # type: ignore[operator]

    @torch.no_grad()
    def encode(self, audio: Tensor, posterior: str = "sample") -> Tensor:
        """Audio ``[B, io_channels, T]`` (T a multiple of the ratio) -> ``[B, latent_dim, T / ratio]`` / scale."""
        self._prepare(audio)
        latents = self._each(lambda a: self.model.encode(a, posterior=posterior), audio)
        return latents.float() / self.scale

    @torch.no_grad()
    def decode(self, latents: Tensor) -> Tensor:
        """Scaled latents ``[B, latent_dim, N]`` -> audio ``[B, io_channels, N * ratio]`` (float32)."""
        self._prepare(latents)
        return self._each(self.model.decode, latents * self.scale).float()
