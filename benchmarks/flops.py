"""Compute budgets: the encoder's convolution FLOPs and this machine's conv1d throughput."""

from __future__ import annotations

import time

import torch
from torch.nn import functional as F

from preencode.encode.fast.receptive_field import RESIDUAL_DILATIONS, RESIDUAL_KERNEL
from preencode.models.config import OobleckConfig


def encoder_gflops_per_second_of_audio(cfg: OobleckConfig, sample_rate: int) -> float:
    """GFLOP to encode one second of audio, counting ``2 * C_in * C_out * k * T_out`` per conv.

    Activations and additions (a few FLOP per element) are left out; they cost memory traffic
    rather than arithmetic. Stable Audio Open's VAE: about 109 GFLOP per second at 44.1 kHz.
    """
    widths = cfg.widths
    length = float(sample_rate)
    flops = 2 * cfg.io_channels * widths[0] * 7 * length
    for i, stride in enumerate(cfg.strides):
        c_in, c_out = widths[i], widths[i + 1]
        flops += len(RESIDUAL_DILATIONS) * 2 * c_in * c_in * (RESIDUAL_KERNEL + 1) * length
        length /= stride
        flops += 2 * c_in * c_out * 2 * stride * length
    flops += 2 * widths[-1] * cfg.latent_dim * 3 * length
    return flops / 1e9


def measure_conv1d_gflops(channels: int = 256, length: int = 16384, kernel: int = 7, batch: int = 1,
                          seconds: float = 2.0, dtype: torch.dtype = torch.float32,
                          channels_last: bool = False) -> float:
    """Sustained GFLOP/s of one 1-D convolution ``[batch, channels, length]``, ``channels`` -> ``channels``.

    ``channels_last=False`` times ``F.conv1d``; True the same convolution as a channels-last
    ``conv2d`` (the fast encoder's layout). Runs for about ``seconds`` after a warm-up, with the
    current thread settings.
    """
    x = torch.randn(batch, channels, length, dtype=dtype)
    w = torch.randn(channels, channels, kernel, dtype=dtype) / (channels * kernel) ** 0.5
    flop = 2 * channels * channels * kernel * length * batch
    if channels_last:
        x = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        w = w.unsqueeze(2).contiguous(memory_format=torch.channels_last)

        def conv() -> torch.Tensor:
            return F.conv2d(x, w, padding=(0, kernel // 2))
    else:
        def conv() -> torch.Tensor:
            return F.conv1d(x, w, padding=kernel // 2)
    with torch.inference_mode():
        conv()
        runs, start = 0, time.perf_counter()
        while True:
            conv()
            runs += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                return flop * runs / elapsed / 1e9
