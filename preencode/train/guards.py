"""Guards of a training run against non-finite numbers: a sample's latents, the loss, a checkpoint's weights.

- A sample whose latents (the diffusion's input ``x0``: stored latents divided by the pretransform's scale, or
  audio encoded on the fly) are not all finite is dropped from its batch, never replaced by another. The first
  one is logged with its file, then a running count every :data:`LOG_EVERY`; the total is the metric
  ``train/non_finite_samples``. The check runs in the training step, after the loader's worker processes, so
  that the count is this process's whole count.
- A non-finite loss stops training before its backward pass (:class:`~preencode.errors.TrainingDiverged`),
  naming the step and the last checkpoint saved: one such step would make every weight NaN.
- A checkpoint whose weights (EMA included) are not all finite is never written: the check runs while the
  checkpoint is being assembled, before anything reaches the disk.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch

from ..errors import TrainingDiverged

log = logging.getLogger(__name__)

#: After the first skipped sample, one log line per this many.
LOG_EVERY = 100

_FIX = "Lower the learning rate or set --gradient-clip-val, and check the starting weights and the data."


def sample_name(info: dict[str, Any]) -> str:
    """The file a sample came from, for messages."""
    return str(info.get("latent_filename") or info.get("path") or info.get("relpath") or "(unnamed sample)")


class NonFiniteSamples:
    """Drops the samples of a batch whose latents are not all finite, and counts them.

    Args:
        log_every: after the first, log once per this many skipped samples.
    """

    def __init__(self, log_every: int = LOG_EVERY) -> None:
        self.log_every = log_every
        self.count = 0

    def keep_finite(self, x0: torch.Tensor, mask: torch.Tensor, infos: list[dict[str, Any]]
                    ) -> tuple[torch.Tensor, torch.Tensor, list[dict[str, Any]]] | None:
        """``(x0 [B', C, L], mask [B', L], infos)`` of the samples of ``x0 [B, C, L]`` that are all finite;
        the same objects when every sample is; None when none is."""
        finite = torch.isfinite(x0).flatten(1).all(dim=1)
        if bool(finite.all()):
            return x0, mask, infos
        kept = finite.nonzero().flatten().tolist()
        for index in (~finite).nonzero().flatten().tolist():
            self._count(infos[index])
        if not kept:
            return None
        rows = torch.tensor(kept, device=x0.device)
        return x0[rows], mask[rows], [infos[i] for i in kept]

    def _count(self, info: dict[str, Any]) -> None:
        self.count += 1
        if self.count == 1:
            log.warning("Skipping %s: its latents are not all finite (NaN or Inf). Such samples are skipped and "
                        "counted (train/non_finite_samples), never replaced; the count is logged every %d.",
                        sample_name(info), self.log_every)
        elif self.count % self.log_every == 0:
            log.warning("%d samples with non-finite latents skipped so far (the latest: %s).", self.count,
                        sample_name(info))

    def summary(self) -> None:
        """Log the total at the end of training (nothing when no sample was skipped)."""
        if self.count:
            log.warning("%d sample(s) with non-finite latents were skipped in this run.", self.count)


def last_saved_checkpoint(trainer: L.Trainer) -> str | None:
    """The checkpoint this run's ModelCheckpoint wrote last, else the one it resumed from (None: neither)."""
    # ModelCheckpoint sets its public best_model_path before writing (so it names a refused checkpoint too);
    # _last_checkpoint_saved is set once the file is written.
    saved = getattr(trainer.checkpoint_callback, "_last_checkpoint_saved", "")
    if saved and Path(saved).is_file():
        return str(saved)
    return str(trainer.ckpt_path) if trainer.ckpt_path else None


def _fix(trainer: L.Trainer) -> str:
    last = last_saved_checkpoint(trainer)
    resume = f"Resume from the last finite checkpoint (--ckpt-path {last}) or start again. " if last else ""
    return resume + _FIX


def check_loss(loss: torch.Tensor, trainer: L.Trainer) -> None:
    """Stop training when ``loss`` is not finite on any rank (all ranks decide together).

    Raises:
        TrainingDiverged: naming the step and the last checkpoint saved.
    """
    finite = bool(torch.isfinite(loss.detach()).all())
    if trainer.strategy.reduce_boolean_decision(finite, all=True):
        return
    value = "NaN or Inf on another rank" if finite else f"{float(loss.detach()):g}"
    raise TrainingDiverged(f"Training stopped at step {trainer.global_step}: the loss is not finite ({value}); the "
                           "weights were not updated with it and no checkpoint of this state was saved.",
                           _fix(trainer))


def check_weights(state_dict: dict[str, Any], trainer: L.Trainer) -> None:
    """Refuse to save a checkpoint whose floating-point tensors are not all finite.

    Raises:
        TrainingDiverged: naming the step and the first tensor that is not finite.
    """
    bad = [k for k, v in state_dict.items()
           if isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise TrainingDiverged(f"Training stopped at step {trainer.global_step}: the weights are no longer finite "
                               f"({bad[0]}{more} hold NaN or Inf), so this checkpoint was not saved.", _fix(trainer))
