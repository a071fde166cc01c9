"""Diffusion objectives: how clean latents are noised at a time ``t`` and what the network regresses.

The math of stable-audio-tools' ``diffusion_cond`` training, outside the network and outside Lightning
(in the style of k-diffusion's ``Denoiser.loss``): :meth:`Objective.loss` takes the network as a
function ``model(x_t [B, C, L], t [B]) -> prediction [B, C, L]`` with its conditioning already bound.

* ``v``: ``x_t = cos(πt/2) x0 + sin(πt/2) ε``; the target is ``v = cos(πt/2) ε - sin(πt/2) x0``.
* ``rectified_flow`` and ``rf_denoiser``: ``x_t = (1 - t) x0 + t ε``; the target is the velocity ``ε - x0``.

The loss is the mean squared error. With a padding mask ``[B, L]`` it is the mean over the kept frames of
every channel (the reference indexes the squared errors with the mask repeated over channels); a batch
whose mask keeps nothing gives a zero loss (the reference's mean over nothing would be NaN).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor
from torch.nn import functional as F

Model = Callable[[Tensor, Tensor], Tensor]
OBJECTIVES = ("v", "rectified_flow", "rf_denoiser")


def masked_mse(output: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean squared error of ``[B, C, L]`` tensors, over the frames where ``mask [B, L]`` is true.

    Computed in float32 even under autocast (``F.mse_loss`` is on autocast's float32 list).
    """
    errors = F.mse_loss(output, target, reduction="none")
    if mask is None:
        return errors.mean()
    keep = mask.to(torch.bool)
    if keep.ndim == 2:
        keep = keep.unsqueeze(1)
    keep = keep.expand_as(errors)
    if not bool(keep.any()):
        return errors.sum() * 0.0  # keeps the graph; nothing to learn from an all-padding batch
    return errors[keep].mean()


class Objective:
    """Base class; subclasses define :meth:`alpha_sigma` and :meth:`target`."""

    name = ""

    def alpha_sigma(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """Weights ``(alpha [B], sigma [B])`` of the clean latents and of the noise at times ``t [B]``."""
        raise NotImplementedError

    def target(self, x0: Tensor, noise: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
        """What the network should predict, ``[B, C, L]`` (``alpha``, ``sigma`` broadcast as ``[B, 1, 1]``)."""
        raise NotImplementedError

    def noised(self, x0: Tensor, noise: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """``x0 [B, C, L]``, ``noise`` like it, ``t [B]`` -> ``(x_t, target)``, both ``[B, C, L]``."""
        alpha, sigma = self.alpha_sigma(t)
        alpha, sigma = alpha[:, None, None], sigma[:, None, None]
        return x0 * alpha + noise * sigma, self.target(x0, noise, alpha, sigma)

    def loss(self, model: Model, x0: Tensor, noise: Tensor, t: Tensor, mask: Tensor | None = None) -> Tensor:
        """The training loss of ``model`` on clean latents ``x0 [B, C, L]`` noised with ``noise`` at ``t [B]``.

        Args:
            mask: bool ``[B, L]``; frames where it is false do not count (None: every frame counts).
        """
        noised, target = self.noised(x0, noise, t)
        return masked_mse(model(noised, t), target, mask)


class VObjective(Objective):
    name = "v"

    def alpha_sigma(self, t: Tensor) -> tuple[Tensor, Tensor]:
        return torch.cos(t * math.pi / 2), torch.sin(t * math.pi / 2)

    def target(self, x0: Tensor, noise: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
        return noise * alpha - x0 * sigma


class RectifiedFlowObjective(Objective):
    """``rectified_flow``; ``rf_denoiser`` trains the same way (it differs in sampling only)."""

    name = "rectified_flow"

    def alpha_sigma(self, t: Tensor) -> tuple[Tensor, Tensor]:
        return 1 - t, t

    def target(self, x0: Tensor, noise: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
        return noise - x0


def build_objective(name: str) -> Objective:
    """The objective of a model (``model.objective``; validated by the config parser).

    Raises:
        ValueError: an unknown name.
    """
    if name == "v":
        return VObjective()
    if name in ("rectified_flow", "rf_denoiser"):
        objective = RectifiedFlowObjective()
        objective.name = name
        return objective
    raise ValueError(f"unknown diffusion objective {name!r}; valid: {', '.join(OBJECTIVES)}")
