"""Audio demos during training: sample from the configured conditioning, decode, write wav files."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import soundfile as sf
import torch

from .config import DemoConfig

log = logging.getLogger(__name__)


class DemoCallback(L.Callback):
    """Every ``demo_every`` optimiser steps, writes ``<out_dir>/step_<n>/cfg_<s>_<i>.wav``.

    ``frames`` is the latent length of a demo. Conditioning comes from ``demo_cond`` (one dict per demo,
    up to ``num_demos``; an unconditional model generates ``num_demos`` samples). Audio is also sent to
    a TensorBoard or Weights & Biases logger when one is used.
    """

    def __init__(self, config: DemoConfig, out_dir: str | Path, frames: int) -> None:
        self.config, self.out_dir, self.frames = config, Path(out_dir), frames
        self.last_step = -1

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: object) -> None:
        step = trainer.global_step
        if step == self.last_step or step == 0 or step % self.config.demo_every:
            return
        self.last_step = step
        if trainer.is_global_zero:
            self.write(trainer, module, step)

    def write(self, trainer: L.Trainer | None, module: L.LightningModule, step: int) -> list[Path]:
        conds = list(self.config.demo_cond[: self.config.num_demos]) or [{}] * self.config.num_demos
        pre = module.model.pretransform
        was_training = module.training
        module.eval()
        written = []
        try:
            for scale in self.config.demo_cfg_scales:
                latents = module.generate(conds, self.frames, self.config.demo_steps, cfg_scale=scale, seed=step)
                audio = pre.decode(latents) if pre is not None else latents
                audio = audio.clamp(-1, 1).float().cpu()
                rate = module.config.sample_rate
                for i, clip in enumerate(audio):
                    path = self.out_dir / f"step_{step:08d}" / f"cfg_{scale:g}_{i}.wav"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    sf.write(str(path), clip.T.numpy(), rate, subtype="PCM_16")
                    written.append(path)
                    _log_audio(trainer, f"demo/cfg_{scale:g}_{i}", clip, rate, step)
        finally:
            module.train(was_training)
        log.info("Wrote %d demo(s) for step %d under %s", len(written), step, self.out_dir)
        return written


def _log_audio(trainer: L.Trainer | None, tag: str, clip: torch.Tensor, rate: int, step: int) -> None:
    logger = trainer.logger if trainer is not None else None
    if logger is None:
        return
    name = type(logger).__name__
    if name == "TensorBoardLogger":
        logger.experiment.add_audio(tag, clip.mean(0), step, sample_rate=rate)
    elif name == "WandbLogger":
        import wandb

        logger.experiment.log({tag: wandb.Audio(clip.T.numpy(), sample_rate=rate)}, step=step)
