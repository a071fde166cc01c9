"""A warning, once per run, when the data the diffusion model sees is far from unit variance.

The diffusion objectives assume their clean input has a std near 1; the pretransform's ``scale`` (the
latents are divided by it) is what makes it so. A scale that does not fit the stored latents (the
config's default of 1, or one measured without the posterior std of a ``--store-std`` output) does not
fail: it trains a model whose noise schedule is off by that factor. So the std of the first batches'
input (``train/std_data``, logged by the training module) is checked, and the scale that would bring it
to 1 is named (``preencode inspect`` suggests the same from the stored latents).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import lightning as L

log = logging.getLogger("preencode.train.data_scale")

#: std_data within this range is taken as near enough to 1.
LOW, HIGH = 0.8, 1.25
#: Batches whose std_data is averaged (in quadrature) before deciding.
BATCHES = 4


def current_scale(pl_module: L.LightningModule) -> float | None:
    """The pretransform's scale of the module's model (None without a pretransform)."""
    diffusion = getattr(pl_module, "diffusion", None)
    pretransform = getattr(diffusion, "pretransform", None)
    scale = getattr(pretransform, "scale", None)
    return float(scale) if scale is not None else None


def advice(std_data: float, scale: float | None, batches: int) -> str | None:
    """The warning's text when ``std_data`` is outside [:data:`LOW`, :data:`HIGH`], else None."""
    if LOW <= std_data <= HIGH or not math.isfinite(std_data) or std_data <= 0:
        return None
    seen = f"The std of the diffusion model's input over the first {batches} batch(es) is {std_data:.3g}"
    if scale is None:
        return (f"{seen}, far from 1 (the objective assumes about 1): the model has no pretransform, so "
                "normalise the data to unit variance.")
    return (f"{seen} (the latents divided by the pretransform's scale {scale:.4g}), far from 1 (the objective "
            f"assumes about 1): set \"scale\": {scale * std_data:.4g} in the model config's model.pretransform "
            "section (`preencode inspect <latents>` suggests a scale from the stored latents).")


class DataScaleCheck(L.Callback):
    """Warns once, on rank 0, when the first :data:`BATCHES` batches' ``train/std_data`` is far from 1."""

    def __init__(self, batches: int = BATCHES) -> None:
        self.batches = batches
        self.values: list[float] = []
        self.done = False

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self.done or not trainer.is_global_zero:
            return
        value = trainer.callback_metrics.get("train/std_data")
        if value is None or batch is None:  # a batch of unreadable samples logs nothing
            return
        self.values.append(float(value))
        if len(self.values) < self.batches:
            return
        self.finish(pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.done and self.values and trainer.is_global_zero:  # a run shorter than BATCHES batches
            self.finish(pl_module)

    def finish(self, pl_module: L.LightningModule) -> None:
        self.done = True
        std = math.sqrt(sum(v * v for v in self.values) / len(self.values))
        text = advice(std, current_scale(pl_module), len(self.values))
        if text:
            log.warning("%s", text)
