"""Diffusion objectives, independent of the network and of Lightning.

Noise level ``t`` in [0, 1] (1 is pure noise). ``v``: ``x_t = cos(πt/2) x0 + sin(πt/2) ε``, target
``v = cos·ε - sin·x0``. ``rectified_flow``: ``x_t = (1-t) x0 + t ε``, target ``ε - x0`` (the velocity
from data to noise). Losses are mean squared errors over the frames the padding mask keeps.
"""

from __future__ import annotations

import math

import torch

from ..errors import UserError


class Objective:
    name = ""

    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def noised_and_target(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x0, noise [B, C, L]``, ``t [B]`` -> ``(x_t, target)``, both ``[B, C, L]``."""
        alpha, sigma = (a[:, None, None] for a in self.alpha_sigma(t))
        return alpha * x0 + sigma * noise, self.target(x0, noise, alpha, sigma)

    def target(self, x0: torch.Tensor, noise: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """MSE of ``output`` vs ``target`` ``[B, C, L]``, over frames where ``mask [B, L]`` is true."""
        err = (output.float() - target.float()) ** 2
        if mask is None:
            return err.mean()
        m = mask[:, None, :].to(err.dtype).expand_as(err)
        return (err * m).sum() / m.sum().clamp_min(1.0)


class VObjective(Objective):
    name = "v"

    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.cos(t * math.pi / 2), torch.sin(t * math.pi / 2)

    def target(self, x0, noise, alpha, sigma):
        return alpha * noise - sigma * x0


class RectifiedFlowObjective(Objective):
    name = "rectified_flow"

    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return 1 - t, t

    def target(self, x0, noise, alpha, sigma):
        return noise - x0


OBJECTIVES = {"v": VObjective, "rectified_flow": RectifiedFlowObjective}


def build_objective(name: str) -> Objective:
    if name not in OBJECTIVES:
        raise UserError(f"Unknown diffusion objective {name!r}; valid: {', '.join(OBJECTIVES)}.")
    return OBJECTIVES[name]()


def sample_timesteps(name: str, batch: int, generator: torch.Generator | None = None,
                     device: torch.device | str = "cpu") -> torch.Tensor:
    """Training noise levels ``[batch]`` in (0, 1): ``uniform`` or ``logit_normal``."""
    if name == "uniform":
        return torch.rand(batch, generator=generator).to(device)
    if name == "logit_normal":
        return torch.sigmoid(torch.randn(batch, generator=generator)).to(device)
    raise UserError(f"Unknown timestep_sampler {name!r}; valid: uniform, logit_normal.")
