"""Samplers as plain functions over a denoiser ``fn(x [B, C, L], t [B]) -> prediction``.

Euler for rectified flow (the prediction is the velocity ``ε - x0``) and DDIM for the v objective;
:func:`cfg_denoiser` adds classifier-free guidance. Both go from t = 1 (noise) to t = 0.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def cfg_denoiser(cond_fn: Denoiser, uncond_fn: Denoiser, scale: float) -> Denoiser:
    """``uncond + scale * (cond - uncond)`` (just ``cond_fn`` when scale is 1)."""
    if scale == 1.0:
        return cond_fn

    def fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        uncond = uncond_fn(x, t)
        return uncond + scale * (cond_fn(x, t) - uncond)

    return fn


@torch.no_grad()
def sample_euler_rf(fn: Denoiser, noise: torch.Tensor, steps: int) -> torch.Tensor:
    """Rectified flow: ``x <- x + (t_next - t) * v`` on a uniform grid from 1 to 0."""
    ts = torch.linspace(1.0, 0.0, steps + 1, device=noise.device)
    x = noise
    for t, t_next in itertools.pairwise(ts):
        v = fn(x, t.expand(x.shape[0]))
        x = x + (t_next - t) * v
    return x


@torch.no_grad()
def sample_ddim_v(fn: Denoiser, noise: torch.Tensor, steps: int) -> torch.Tensor:
    """Deterministic DDIM (eta = 0) for a v-prediction model on a uniform grid from 1 to 0."""
    ts = torch.linspace(1.0, 0.0, steps + 1, device=noise.device)
    x = noise
    for t, t_next in itertools.pairwise(ts):
        alpha, sigma = math.cos(t.item() * math.pi / 2), math.sin(t.item() * math.pi / 2)
        v = fn(x, t.expand(x.shape[0]))
        x0 = alpha * x - sigma * v
        eps = sigma * x + alpha * v
        a_next, s_next = math.cos(t_next.item() * math.pi / 2), math.sin(t_next.item() * math.pi / 2)
        x = a_next * x0 + s_next * eps
    return x


SAMPLERS = {"rectified_flow": sample_euler_rf, "v": sample_ddim_v}
