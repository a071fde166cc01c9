"""The audio autoencoder: encoder, bottleneck, decoder, and the numbers that describe its latents."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import UserError
from .bottlenecks import POSTERIORS, Bottleneck, DiscreteBottleneck, VAEBottleneck
from .config import AutoencoderConfig
from .layers import fold_weight_norm


class AudioAutoencoder(nn.Module):
    """An autoencoder with stable-audio-tools' module names (``encoder``, ``decoder``, ``bottleneck``).

    Attributes:
        sample_rate: audio sample rate in Hz.
        io_channels: audio channels in and out.
        latent_dim: latent channels.
        downsampling_ratio: audio samples per latent frame.
        is_discrete: whether the bottleneck quantises to tokens.
    """

    def __init__(self, config: AutoencoderConfig, encoder: nn.Module, decoder: nn.Module,
                 bottleneck: Bottleneck) -> None:
        super().__init__()
        self.config = config
        self.encoder = encoder
        self.decoder = decoder
        self.bottleneck = bottleneck
        self.sample_rate = config.sample_rate
        self.io_channels = config.io_channels
        self.in_channels = config.in_channels
        self.latent_dim = config.latent_dim
        self.downsampling_ratio = config.downsampling_ratio
        self.is_discrete = bottleneck.is_discrete

    @property
    def is_vae(self) -> bool:
        return isinstance(self.bottleneck, VAEBottleneck)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def _check_audio(self, audio: Tensor) -> None:
        if audio.ndim != 3 or audio.shape[1] != self.in_channels:
            raise ValueError(f"expected audio [B, {self.in_channels}, T], got {list(audio.shape)}")
        if audio.shape[-1] % self.downsampling_ratio:
            raise ValueError(f"audio length {audio.shape[-1]} is not a multiple of the downsampling ratio "
                             f"{self.downsampling_ratio}")

    def encode_pre_bottleneck(self, audio: Tensor) -> Tensor:
        """Encoder output before the bottleneck: ``[B, C, T]`` -> ``[B, C_enc, T // ratio]``."""
        self._check_audio(audio)
        return self.encoder(audio.to(self.dtype))

    def encode(self, audio: Tensor, posterior: str = "sample", noise: Tensor | None = None) -> Tensor:
        """Audio ``[B, io_channels, T]`` -> latents ``[B, latent_dim, T // downsampling_ratio]``.

        Args:
            audio: float audio, T a multiple of ``downsampling_ratio``.
            posterior: for a VAE, ``"sample"`` (mean + std * noise, as the reference) or ``"mean"``.
            noise: optional standard normal noise ``[B, latent_dim, N]`` for the VAE sample.
        """
        if posterior not in POSTERIORS:
            raise ValueError(f"posterior must be one of {POSTERIORS}, got {posterior!r}")
        return self.bottleneck.encode(self.encode_pre_bottleneck(audio), posterior=posterior, noise=noise)

    def encode_tokens(self, audio: Tensor) -> Tensor:
        """Audio ``[B, C, T]`` -> integer tokens ``[B, num_quantizers, T // ratio]`` (discrete models)."""
        if not isinstance(self.bottleneck, DiscreteBottleneck):
            raise UserError("This model has a continuous bottleneck and has no tokens.",
                            "Drop --is-discrete to store continuous latents.")
        return self.bottleneck.tokens(self.encode_pre_bottleneck(audio))

    @property
    def token_dtype(self) -> np.dtype:
        if not isinstance(self.bottleneck, DiscreteBottleneck):
            raise UserError("This model has a continuous bottleneck and has no tokens.")
        return self.bottleneck.token_dtype

    def decode(self, latents: Tensor) -> Tensor:
        """Latents ``[B, latent_dim, N]`` -> audio ``[B, io_channels, N * downsampling_ratio]``."""
        return self.decoder(self.bottleneck.decode(latents.to(self.dtype)))

    def fold_weight_norm(self) -> AudioAutoencoder:
        """Fold weight normalisation into plain weights (for inference); returns self."""
        fold_weight_norm(self)
        return self
