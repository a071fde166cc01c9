"""The LightningModule: one training step over latents, optimisers, EMA, checkpoint contents.

With ``training.pre_encoded: true`` a batch holds stored latents; they are divided by the
pretransform's ``scale`` (as stable-audio-tools does, because its pretransform's ``encode`` divides
too) and the encoder never runs. With ``pre_encoded: false`` a batch holds audio and is encoded on
the fly by the same pretransform. Either way the padding mask (per latent frame) masks the loss.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from ..data.loaders import Batch
from ..errors import UserError
from .config import DiffusionModelConfig
from .ema import EMA
from .model import DiffusionModel
from .objectives import build_objective, sample_timesteps
from .sampling import SAMPLERS, cfg_denoiser

log = logging.getLogger(__name__)


class LatentDiffusionModule(L.LightningModule):
    """Trains :class:`DiffusionModel` with the configured objective.

    Checkpoints hold the model, the EMA copy of the DiT (``ema.shadow.*``), optimiser and scheduler
    state, the step, and the raw model config (``model_config``).
    """

    def __init__(self, config: DiffusionModelConfig) -> None:
        super().__init__()
        self.config = config
        self.model = DiffusionModel(config)
        self.objective = build_objective(config.training.diffusion_objective)
        self.ema = EMA(self.model.model, config.training.ema_beta) if config.training.use_ema else None
        self.skipped_samples = 0

    # ---- inputs -------------------------------------------------------------------------------
    def prepare_input(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch -> ``(x0 [B, io_channels, L], mask bool [B, L])``, the diffusion's clean input."""
        pre = self.model.pretransform
        mask = batch.padding_mask.to(self.device)
        if self.config.training.pre_encoded:
            x0 = batch.data.to(self.device).float()
            return (x0 / pre.scale if pre is not None else x0), mask
        if pre is None:
            return batch.data.to(self.device).float(), mask
        x0 = pre.encode(batch.data.to(self.device).float(), posterior=self.config.training.encode_posterior)
        mask = F.interpolate(mask[:, None].float(), size=x0.shape[-1], mode="nearest")[:, 0].bool()
        return x0, mask

    # ---- training -----------------------------------------------------------------------------
    def training_step(self, batch: Batch | None, batch_idx: int) -> torch.Tensor | None:
        if batch is None:  # every sample of the batch was unreadable or rejected
            return None
        self.skipped_samples += batch.skipped
        x0, mask = self.prepare_input(batch)
        inputs = self.model.dit_inputs(self.model.condition(batch.infos, self.device))
        p = self.config.training.cfg_dropout_prob
        if p > 0:
            inputs = self.model.null_inputs(inputs, torch.rand(x0.shape[0], device=self.device) < p)
        t = sample_timesteps(self.config.training.timestep_sampler, x0.shape[0]).to(self.device)
        noised, target = self.objective.noised_and_target(x0, t, torch.randn_like(x0))
        output = self.model(noised, t, inputs)
        loss = self.objective.loss(output, target, mask if self.config.training.mask_padding else None)
        self.log("train/loss", loss.detach(), on_step=True, prog_bar=True, batch_size=x0.shape[0])
        self.log("train/std_data", x0.std().detach(), on_step=True, batch_size=x0.shape[0])
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], on_step=True, batch_size=x0.shape[0])
        if self.skipped_samples:
            self.log("train/skipped_samples", float(self.skipped_samples), on_step=True, batch_size=x0.shape[0])
        return loss

    def validation_step(self, batch: Batch | None, batch_idx: int) -> None:
        if batch is None:
            return
        gen = torch.Generator().manual_seed(batch_idx)
        x0, mask = self.prepare_input(batch)
        inputs = self.model.dit_inputs(self.model.condition(batch.infos, self.device))
        t = sample_timesteps("uniform", x0.shape[0], gen).to(self.device)
        noise = torch.randn(x0.shape, generator=gen).to(self.device)
        noised, target = self.objective.noised_and_target(x0, t, noise)
        loss = self.objective.loss(self.model(noised, t, inputs), target, mask)
        self.log("val/loss", loss, on_epoch=True, batch_size=x0.shape[0])

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        super().optimizer_step(*args, **kwargs)
        if self.ema is not None:
            self.ema.update(self.model.model)

    def on_train_epoch_start(self) -> None:
        loader = self.trainer.train_dataloader
        dataset = getattr(loader, "dataset", None)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(self.current_epoch)

    def configure_optimizers(self) -> Any:
        from .optim import build_optimizer

        params = [p for p in self.model.parameters() if p.requires_grad]
        return build_optimizer(self.config.training.optimizer, params)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["model_config"] = self.config.raw

    # ---- generation ---------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, conds: list[dict], frames: int, steps: int, cfg_scale: float = 1.0, seed: int = 0,
                 use_ema: bool = True) -> torch.Tensor:
        """Sample latents ``[len(conds), io_channels, frames]`` (scaled, i.e. before decoding)."""
        net = self.ema.shadow if (use_ema and self.ema is not None) else self.model.model
        inputs = self.model.dit_inputs(self.model.condition(conds, self.device)) if conds and conds[0] else {}
        null = self.model.null_inputs(inputs)
        gen = torch.Generator().manual_seed(seed)
        noise = torch.randn(len(conds), self.config.io_channels, frames, generator=gen).to(self.device)
        fn = cfg_denoiser(lambda x, t: net(x, t, **inputs), lambda x, t: net(x, t, **null), cfg_scale)
        sampler = SAMPLERS.get(self.config.training.diffusion_objective)
        if sampler is None:
            raise UserError(f"No sampler for objective {self.config.training.diffusion_objective!r}.")
        return sampler(fn, noise, steps)
