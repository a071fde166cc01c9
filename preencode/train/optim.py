"""Optimiser and learning-rate schedule from ``training.optimizer_configs.diffusion`` (or ``learning_rate``).

As the reference: the optimiser is the ``torch.optim`` class named by ``type`` with ``config`` as its
keyword arguments; ``learning_rate`` alone means ``Adam(lr=learning_rate)``; when both are given,
``optimizer_configs`` wins (with a warning). The scheduler is :class:`InverseLR` or any
``torch.optim.lr_scheduler`` class, stepped after every optimiser step.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import torch

from ..errors import UserError
from ..models.diffusion.training_config import TrainingConfig

log = logging.getLogger(__name__)


class InverseLR(torch.optim.lr_scheduler.LRScheduler):
    """Inverse decay with an exponential warm-up (k-diffusion's and stable-audio-tools' schedule).

    After ``n`` steps the learning rate of each group is
    ``(1 - warmup ** (n + 1)) * max(final_lr, base_lr * (1 + n / inv_gamma) ** -power)``:
    ``inv_gamma`` steps halve it ``power`` times over, ``warmup`` (in [0, 1)) ramps it up first.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, inv_gamma: float = 1.0, power: float = 1.0,
                 warmup: float = 0.0, final_lr: float = 0.0, last_epoch: int = -1) -> None:
        if not 0.0 <= warmup < 1:
            raise ValueError(f"warmup must be in [0, 1), got {warmup}")
        self.inv_gamma, self.power, self.warmup, self.final_lr = inv_gamma, power, warmup, final_lr
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:  # type: ignore[override]
        n = self.last_epoch
        ramp = 1 - self.warmup ** (n + 1)
        decay = (1 + n / self.inv_gamma) ** -self.power
        return [ramp * max(self.final_lr, base * decay) for base in self.base_lrs]


def build_optimizers(training: TrainingConfig, params: Iterable[torch.nn.Parameter]) -> Any:
    """The optimiser (and a per-step scheduler) in Lightning's ``configure_optimizers`` format.

    Raises:
        UserError: the optimiser or scheduler rejects its config values.
    """
    cfg = training.optimizer
    if training.learning_rate is not None and cfg.config.get("lr") != training.learning_rate:
        log.warning("training.learning_rate and training.optimizer_configs are both set: using optimizer_configs "
                    "(as stable-audio-tools does).")
    where = "training.optimizer_configs.diffusion"
    try:
        optimizer = getattr(torch.optim, cfg.type)(list(params), **cfg.config)
    except (TypeError, ValueError) as err:
        raise UserError(f"{where}.optimizer ({cfg.type}) rejects its config: {err}.",
                        "Fix the optimizer's config values.") from err
    if cfg.scheduler_type is None:
        return [optimizer]
    try:
        if cfg.scheduler_type == "InverseLR":
            scheduler: Any = InverseLR(optimizer, **cfg.scheduler_config)
        else:
            scheduler = getattr(torch.optim.lr_scheduler, cfg.scheduler_type)(optimizer, **cfg.scheduler_config)
    except (TypeError, ValueError, KeyError) as err:
        raise UserError(f"{where}.scheduler ({cfg.scheduler_type}) rejects its config: {err}.",
                        "Fix the scheduler's config values.") from err
    return [optimizer], [{"scheduler": scheduler, "interval": "step"}]
