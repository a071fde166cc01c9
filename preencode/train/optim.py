"""Optimisers and learning-rate schedulers from ``training.optimizer_configs`` (or ``learning_rate``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from ..errors import UserError
from .config import OptimizerConfig


def inverse_lr_factor(step: int, inv_gamma: float = 1.0, power: float = 1.0, warmup: float = 0.0) -> float:
    """InverseLR (as k-diffusion / stable-audio-tools): ``(1 - warmup**(step+1)) * (1 + step/inv_gamma)**-power``."""
    return (1 - warmup ** (step + 1)) * (1 + step / inv_gamma) ** -power


def build_optimizer(cfg: OptimizerConfig, params: Iterable[torch.nn.Parameter]) -> Any:
    """The optimiser (and a per-step scheduler) in Lightning's ``configure_optimizers`` format.

    Raises:
        UserError: the optimiser or scheduler rejects its config values.
    """
    settings = dict(cfg.params)
    if "betas" in settings:
        settings["betas"] = tuple(settings["betas"])
    try:
        optimizer = getattr(torch.optim, cfg.type)(list(params), **settings)
    except (TypeError, ValueError) as err:
        raise UserError(f"training.optimizer_configs.diffusion.optimizer ({cfg.type}) rejects its config: {err}.",
                        "Fix the optimizer config values.") from err
    if cfg.scheduler is None:
        return optimizer
    sched_settings = dict(cfg.scheduler_params)
    try:
        if cfg.scheduler == "InverseLR":
            final_lr = float(sched_settings.pop("final_lr", 0.0))
            base = optimizer.param_groups[0]["lr"]
            floor = final_lr / base if base else 0.0
            scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda step: max(floor, inverse_lr_factor(step, **sched_settings)))
            inverse_lr_factor(0, **sched_settings)  # report bad keys now, not at the first step
        else:
            scheduler = getattr(torch.optim.lr_scheduler, cfg.scheduler)(optimizer, **sched_settings)
    except (TypeError, ValueError) as err:
        raise UserError(f"training.optimizer_configs.diffusion.scheduler ({cfg.scheduler}) rejects its config: {err}.",
                        "Fix the scheduler config values.") from err
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
