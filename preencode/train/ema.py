"""Exponential moving average of the diffusion network, with stable-audio-tools' schedule and layout.

The reference wraps its network in ``ema_pytorch.EMA(beta=0.9999, power=3/4, update_every=1,
update_after_step=1, include_online_model=False)`` and updates it from Lightning's
``on_before_zero_grad`` hook. We keep the same numbers and the same state dict (``ema_model.*`` plus the
buffers ``initted`` ``[1]`` float and ``step`` ``[1]`` int64), so training checkpoints are interchangeable:

* update ``n`` (counting from 0) copies the online weights while ``n <= 1``, and on the first later update;
* then every floating-point (float32/float16) parameter and buffer moves towards the online one:
  ``ema += (1 - decay) (online - ema)`` with ``decay = clamp(1 - (1 + (n - 1)) ** -power, 0, beta)``
  (:func:`ema_decay`), i.e. 0.405, 0.561, 0.646, ... reaching 0.999 after about 10k updates.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import torch
from torch import Tensor, nn

_AVERAGED = (torch.float32, torch.float16)


def ema_decay(update: int, beta: float = 0.9999, power: float = 0.75, update_after_step: int = 1) -> float:
    """The decay used by update number ``update`` (0-based) once averaging has started."""
    epoch = max(update + 1 - update_after_step - 1, 0)
    if epoch <= 0:
        return 0.0
    return min(max(1 - (1 + epoch) ** -power, 0.0), beta)


class EMA(nn.Module):
    """Holds ``ema_model``, a frozen copy of a network, and moves it towards the network in :meth:`update`.

    The online network is not part of this module (nor of its state dict); it is passed to :meth:`update`.
    """

    initted: Tensor
    step: Tensor

    def __init__(self, network: nn.Module, beta: float = 0.9999, power: float = 0.75,
                 update_after_step: int = 1) -> None:
        super().__init__()
        self.beta, self.power, self.update_after_step = beta, power, update_after_step
        self.ema_model = copy.deepcopy(network).requires_grad_(False)
        self.register_buffer("initted", torch.zeros(1))
        self.register_buffer("step", torch.zeros(1, dtype=torch.long))

    def _pairs(self, network: nn.Module) -> Iterator[tuple[Tensor, Tensor]]:
        """``(ema tensor, online tensor)`` for every averaged parameter and buffer, in module order."""
        ours = dict(self.ema_model.named_parameters())
        theirs = dict(network.named_parameters())
        for name, p in ours.items():
            if p.dtype in _AVERAGED:
                yield p, theirs[name]
        ours_b = dict(self.ema_model.named_buffers())
        theirs_b = dict(network.named_buffers())
        for name, b in ours_b.items():
            if b.dtype in _AVERAGED:
                yield b, theirs_b[name]

    @torch.no_grad()
    def copy_from(self, network: nn.Module) -> None:
        for ema, online in self._pairs(network):
            ema.copy_(online)

    @torch.no_grad()
    def update(self, network: nn.Module) -> None:
        """One update from the online ``network`` (same architecture as ``ema_model``)."""
        n = int(self.step.item())
        self.step += 1
        if n <= self.update_after_step:
            self.copy_from(network)
            return
        if not bool(self.initted.item()):
            self.copy_from(network)
            self.initted.fill_(1.0)
        weight = 1.0 - ema_decay(n, self.beta, self.power, self.update_after_step)
        for ema, online in self._pairs(network):
            ema.lerp_(online.to(ema.dtype), weight)

    def train(self, mode: bool = True) -> EMA:  # the average is never trained (no dropout in it)
        super().train(mode)
        self.ema_model.eval()
        return self
