"""The Oobleck encoder and decoder of stable-audio-tools (Stable Audio Open's VAE).

Module nesting (``layers.<i>.layers.<j>...``) mirrors the reference so state-dict keys are identical.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from .config import OobleckConfig
from .layers import WNConv1d, activation


class ResidualUnit(nn.Module):
    """act -> dilated conv(k=7) -> act -> conv(k=1), plus the input. ``[B, C, T]`` in and out."""

    def __init__(self, channels: int, dilation: int, use_snake: bool) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            activation(use_snake, channels),
            WNConv1d(channels, channels, kernel_size=7, dilation=dilation, padding=3 * dilation),
            activation(use_snake, channels),
            WNConv1d(channels, channels, kernel_size=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.layers(x)


class EncoderBlock(nn.Module):
    """Three residual units (dilations 1, 3, 9), then a strided conv: ``[B, C_in, T] -> [B, C_out, T/stride]``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, use_snake: bool) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            *(ResidualUnit(in_channels, d, use_snake) for d in (1, 3, 9)),
            activation(use_snake, in_channels),
            WNConv1d(in_channels, out_channels, kernel_size=2 * stride, stride=stride,
                     padding=math.ceil(stride / 2)),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class DecoderBlock(nn.Module):
    """Upsampling then three residual units: ``[B, C_in, T] -> [B, C_out, T*stride]``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, use_snake: bool,
                 use_nearest_upsample: bool) -> None:
        super().__init__()
        if use_nearest_upsample:
            upsample: nn.Module = nn.Sequential(
                nn.Upsample(scale_factor=stride, mode="nearest"),
                WNConv1d(in_channels, out_channels, kernel_size=2 * stride, bias=False, padding="same"),
            )
        else:
            upsample = WNConv1d(in_channels, out_channels, kernel_size=2 * stride, stride=stride,
                                padding=math.ceil(stride / 2), transposed=True)
        self.layers = nn.Sequential(
            activation(use_snake, in_channels),
            upsample,
            *(ResidualUnit(out_channels, d, use_snake) for d in (1, 3, 9)),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class OobleckEncoder(nn.Module):
    """Audio ``[B, in_channels, T]`` to pre-bottleneck latents ``[B, latent_dim, T / prod(strides)]``."""

    def __init__(self, cfg: OobleckConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.widths
        self.layers = nn.Sequential(
            WNConv1d(cfg.io_channels, w[0], kernel_size=7, padding=3),
            *(EncoderBlock(w[i], w[i + 1], s, cfg.use_snake) for i, s in enumerate(cfg.strides)),
            activation(cfg.use_snake, w[-1]),
            WNConv1d(w[-1], cfg.latent_dim, kernel_size=3, padding=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class OobleckDecoder(nn.Module):
    """Latents ``[B, latent_dim, N]`` to audio ``[B, out_channels, N * prod(strides)]``."""

    def __init__(self, cfg: OobleckConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.widths
        n = len(cfg.strides)
        self.layers = nn.Sequential(
            WNConv1d(cfg.latent_dim, w[-1], kernel_size=7, padding=3),
            *(DecoderBlock(w[i], w[i - 1], cfg.strides[i - 1], cfg.use_snake, cfg.use_nearest_upsample)
              for i in range(n, 0, -1)),
            activation(cfg.use_snake, w[0]),
            WNConv1d(w[0], cfg.io_channels, kernel_size=7, padding=3, bias=False),
            nn.Tanh() if cfg.final_tanh else nn.Identity(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)
