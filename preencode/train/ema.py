"""Exponential moving average of a module's parameters (buffers are copied)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA(nn.Module):
    """Holds ``shadow``, a frozen copy of a module updated by :meth:`update`.

    Its state (``shadow.*`` and ``steps``) travels in checkpoints with the module that owns it. The
    decay warms up as ``min(beta, (1 + n) / (10 + n))`` so early averages are not dominated by the
    random initialisation.
    """

    def __init__(self, module: nn.Module, beta: float = 0.9999) -> None:
        super().__init__()
        self.beta = beta
        self.shadow = copy.deepcopy(module).eval().requires_grad_(False)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def train(self, mode: bool = True) -> EMA:  # the shadow always stays in eval mode
        super().train(mode)
        self.shadow.eval()
        return self

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        n = int(self.steps)
        decay = min(self.beta, (1 + n) / (10 + n))
        for ema_p, p in zip(self.shadow.parameters(), module.parameters(), strict=True):
            ema_p.lerp_(p.detach().to(ema_p.dtype), 1 - decay)
        for ema_b, b in zip(self.shadow.buffers(), module.buffers(), strict=True):
            ema_b.copy_(b)
        self.steps += 1
