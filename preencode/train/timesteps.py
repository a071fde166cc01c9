"""Training timesteps ``t [B]`` in [0, 1] (0: clean, 1: pure noise), as stable-audio-tools draws them.

``training.timestep_sampler``:

* ``uniform``: a scrambled one-dimensional Sobol sequence (low-discrepancy, so a batch covers [0, 1)
  evenly), not ``torch.rand``. The scramble is seeded from the run's seed, and the number of points
  drawn is saved in training checkpoints, so a resumed run continues the same sequence.
* ``logit_normal``: ``sigmoid(n)`` with ``n ~ N(0, 1)``.
* ``trunc_logit_normal``: a logit-normal with its lowest 7.5 % of probability cut off (in the normal's
  CDF), rescaled so that the cut maps to 0, then flipped (``t = 1 - t``): most draws are noisy. Its
  options are fixed, as in the reference.
* ``log_snr``: ``t = sigmoid(-λ)`` with ``λ ~ N(mean_logsnr, std_logsnr²)``, clamped to [1e-4, 1 - 1e-4].

Then, when ``model.diffusion.distribution_shift_options`` is set, :class:`DistributionShift` moves the
times towards noise by an amount that grows with the sequence length; finally, with probability
``p_one_shot`` a time is set to 1. Random draws other than Sobol come from the global generator
(seeded by the run's seed), like the reference's.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

TIMESTEP_SAMPLERS = ("uniform", "logit_normal", "trunc_logit_normal", "log_snr")
_LEFT_TRUNCATION = 0.075


def _normal_cdf(x: Tensor) -> Tensor:
    return 0.5 * (1 + torch.erf(x / math.sqrt(2)))


def _normal_icdf(p: Tensor) -> Tensor:
    return torch.erfinv(2 * p - 1) * math.sqrt(2)


def truncated_logit_normal(batch: int, left: float = _LEFT_TRUNCATION) -> Tensor:
    """``[batch]`` draws of a logit-normal truncated below ``left`` and rescaled to [0, 1)."""
    cdf = _normal_cdf(torch.randn(batch))
    lower = _normal_cdf(torch.logit(torch.tensor(left)))
    upper = _normal_cdf(torch.logit(torch.tensor(1.0)))  # 1: nothing is cut on the right
    samples = torch.sigmoid(_normal_icdf(lower + (upper - lower) * cdf))
    return (samples - left) / (1 - left)


def log_snr_timesteps(batch: int, mean: float = -1.2, std: float = 2.0) -> Tensor:
    """``[batch]`` times whose log-SNR ``log((1 - t) / t)`` is normal with this mean and std."""
    logsnr = torch.randn(batch) * std + mean
    return torch.sigmoid(-logsnr).clamp(1e-4, 1 - 1e-4)


class DistributionShift:
    """Shifts times towards noise, more for longer sequences (``distribution_shift_options``).

    With ``L`` the sequence length clamped to ``[min_length, max_length]``,
    ``mu = -(base_shift + (max_shift - base_shift) (L - min_length) / (max_length - min_length))`` and
    ``t' = 1 - e^mu / (e^mu + 1 / (1 - t) - 1)``; ``use_sine`` then maps ``t'`` to ``sin(π t' / 2)``.
    """

    def __init__(self, base_shift: float = 0.5, max_shift: float = 1.15, max_length: int = 4096,
                 min_length: int = 256, use_sine: bool = False) -> None:
        self.base_shift, self.max_shift = base_shift, max_shift
        self.max_length, self.min_length, self.use_sine = max_length, min_length, use_sine

    def __call__(self, t: Tensor, length: int) -> Tensor:
        length = min(max(length, self.min_length), self.max_length)
        span = (length - self.min_length) / (self.max_length - self.min_length)
        mu = -(self.base_shift + (self.max_shift - self.base_shift) * span)
        shifted = 1 - math.exp(mu) / (math.exp(mu) + (1 / (1 - t) - 1))
        return torch.sin(shifted * math.pi / 2) if self.use_sine else shifted


class TimestepSampler:
    """Draws the training times of a batch; see the module docstring.

    Args:
        kind: one of :data:`TIMESTEP_SAMPLERS`.
        seed: scrambles the Sobol sequence of ``uniform``.
        mean_logsnr, std_logsnr: options of ``log_snr``.
        shift: applied after drawing (None: no shift).
        p_one_shot: probability of setting a time to 1.
    """

    def __init__(self, kind: str = "uniform", *, seed: int = 0, mean_logsnr: float = -1.2, std_logsnr: float = 2.0,
                 shift: DistributionShift | None = None, p_one_shot: float = 0.0) -> None:
        if kind not in TIMESTEP_SAMPLERS:
            raise ValueError(f"unknown timestep sampler {kind!r}; valid: {', '.join(TIMESTEP_SAMPLERS)}")
        self.kind, self.seed = kind, seed
        self.mean_logsnr, self.std_logsnr = mean_logsnr, std_logsnr
        self.shift, self.p_one_shot = shift, p_one_shot
        self.sobol = torch.quasirandom.SobolEngine(1, scramble=True, seed=seed)

    def reseed(self, seed: int) -> None:
        """Start a new Sobol sequence scrambled with ``seed`` (e.g. one per rank)."""
        self.seed = seed
        self.sobol = torch.quasirandom.SobolEngine(1, scramble=True, seed=seed)

    def draw(self, batch: int) -> Tensor:
        """``[batch]`` times before the shift and ``p_one_shot`` (float32, CPU)."""
        if self.kind == "uniform":
            return self.sobol.draw(batch)[:, 0]
        if self.kind == "logit_normal":
            return torch.sigmoid(torch.randn(batch))
        if self.kind == "trunc_logit_normal":
            return 1 - truncated_logit_normal(batch)
        return log_snr_timesteps(batch, self.mean_logsnr, self.std_logsnr)

    def __call__(self, batch: int, length: int, device: torch.device | str = "cpu") -> Tensor:
        """Times ``[batch]`` for latents of ``length`` frames, on ``device``."""
        t = self.draw(batch).to(device)
        if self.shift is not None:
            t = self.shift(t, length)
        if self.p_one_shot > 0:
            t = torch.where(torch.rand_like(t) < self.p_one_shot, torch.ones_like(t), t)
        return t

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs to continue the Sobol sequence."""
        return {"kind": self.kind, "seed": self.seed, "sobol_drawn": int(self.sobol.num_generated)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the sequence of a checkpoint (made with the same sampler and seed)."""
        if state.get("kind") != self.kind or state.get("seed") != self.seed:
            return  # another run's sequence: keep this run's own
        self.sobol.reset()
        drawn = int(state.get("sobol_drawn", 0))
        if drawn:
            self.sobol.fast_forward(drawn)
