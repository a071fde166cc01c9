"""The LightningModule of diffusion training: wires the model, the objective, the timestep sampler and
the EMA; the math lives in :mod:`.objectives`, :mod:`.timesteps` and :mod:`.ema`.

It follows stable-audio-tools' ``DiffusionCondTrainingWrapper`` step by step: conditioner outputs from
the batch metadata; the padding mask kept with probability ``1 - mask_padding_dropout`` when
``mask_padding`` is on; pre-encoded latents divided by the pretransform's ``scale`` (audio is encoded on
the fly otherwise, and its mask resized to the latent length); times from the sampler (with the
distribution shift and ``p_one_shot``); the objective's loss of the network with conditioning dropout
``cfg_dropout_prob``; the EMA updated before each ``zero_grad``.

State dict (and so training checkpoints): ``diffusion.*`` (the whole model: ``model``, ``conditioner``,
``pretransform``) and, with ``use_ema``, ``diffusion_ema.ema_model.*``, ``diffusion_ema.initted``,
``diffusion_ema.step`` -- the reference's names, so either project's checkpoints load in the other.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from ..data.loaders import Batch
from ..errors import DatasetError
from ..models.diffusion.model import ConditionedDiffusionModel
from ..models.diffusion.training_config import TrainingConfig
from .ema import EMA
from .guards import NonFiniteSamples, check_loss, check_weights
from .objectives import build_objective
from .timesteps import DistributionShift, TimestepSampler

log = logging.getLogger(__name__)
#: Batches in a row with no usable sample after which training stops: the data is unusable, not unlucky.
MAX_EMPTY_BATCHES = 100

VALIDATION_TIMESTEPS = (0.1, 0.3, 0.5, 0.7, 0.9)
# stable-audio-tools' training wrapper also saves its loss module's constant weight; nothing to restore
REFERENCE_ONLY = ("losses.",)
CHECKPOINT_FORMAT = 1


class DiffusionTrainingModule(L.LightningModule):
    """Trains a :class:`ConditionedDiffusionModel` (``diffusion_cond`` config with a ``training`` section).

    Args:
        model: the model, weights already loaded.
        training: the config's validated ``training`` section.
        seed: seeds the Sobol sequence of the ``uniform`` timestep sampler and the mask dropout.
        encode_posterior: on-the-fly encoding (``pre_encoded: false``) draws a posterior ``sample`` (the
            reference) or takes its ``mean``.
    """

    def __init__(self, model: ConditionedDiffusionModel, training: TrainingConfig, *, seed: int = 0,
                 encode_posterior: str = "sample") -> None:
        super().__init__()
        self.diffusion = model
        self.training_config = training
        self.diffusion_ema = EMA(model.model) if training.use_ema else None
        self.objective = build_objective(model.objective)
        shift = model.config.distribution_shift
        self.timesteps = TimestepSampler(
            training.timestep_sampler, seed=seed, mean_logsnr=training.mean_logsnr, std_logsnr=training.std_logsnr,
            shift=DistributionShift(shift.base_shift, shift.max_shift, shift.max_length, shift.min_length,
                                    shift.use_sine) if shift is not None else None,
            p_one_shot=training.p_one_shot)
        self.seed = seed
        self.mask_rng = random.Random(seed)
        self.encode_posterior = encode_posterior
        self.skipped_samples = 0
        self.non_finite = NonFiniteSamples()
        self.empty_batches = 0  # batches in a row that had no usable sample
        self.validation_losses: dict[float, list[float]] = {t: [] for t in VALIDATION_TIMESTEPS}

    # ---- inputs -------------------------------------------------------------------------------
    def prepare_input(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch -> ``(x0 [B, io_channels, L], padding mask bool [B, L])``, the diffusion's clean input."""
        pre = self.diffusion.pretransform
        data = batch.data.to(self.device).float()
        mask = batch.padding_mask.to(self.device)
        if pre is None:
            return data, mask
        if self.training_config.pre_encoded:
            return (data / pre.scale if pre.scale != 1.0 else data), mask
        x0 = pre.encode(data, posterior=self.encode_posterior)
        mask = F.interpolate(mask[:, None].float(), size=x0.shape[-1], mode="nearest")[:, 0].bool()
        return x0, mask

    def conditioning(self, batch: Batch) -> Any:
        conditioner = self.diffusion.conditioner
        return conditioner(batch.infos, self.device) if conditioner is not None else None

    # ---- training -----------------------------------------------------------------------------
    def training_step(self, batch: Batch | None, batch_idx: int) -> torch.Tensor | None:
        cfg = self.training_config
        kept = None
        if batch is not None:  # None: every sample of the batch was unreadable or rejected
            self.skipped_samples += batch.skipped
            cond = self.conditioning(batch)
            use_mask = cfg.mask_padding and self.mask_rng.random() > cfg.mask_padding_dropout
            x0, mask = self.prepare_input(batch)
            kept = self.non_finite.keep_finite(x0, mask, batch.infos)  # None: no sample of the batch is finite
        if batch is None or kept is None:
            if self.trainer.world_size == 1:
                self.empty_batches += 1
                if self.empty_batches >= MAX_EMPTY_BATCHES:
                    raise DatasetError(f"No usable sample in {self.empty_batches} batches in a row: every sample "
                                       "was unreadable, rejected or held NaN/Inf latents (the log names them).",
                                       "Check the dataset (preencode verify on its output folder) and re-run.")
                return None  # the step is skipped
            # Lightning does not allow one rank to skip a step under DDP (the others would wait for it in the
            # gradient all-reduce): this rank adds zero gradients to the step instead.
            trainable = [p for p in self.diffusion.parameters() if p.requires_grad]
            zero = torch.stack([p.sum() for p in trainable]).sum() * 0.0
            check_loss(zero, self.trainer)  # the ranks decide on the loss together: this one takes part
            return zero
        self.empty_batches = 0
        if kept[0] is not x0:  # some were dropped: the conditioning of the others only
            x0, mask, infos = kept
            cond = self.conditioning(Batch(x0, infos))
        t = self.timesteps(x0.shape[0], x0.shape[-1], self.device)
        noise = torch.randn_like(x0)

        def network(x: torch.Tensor, tt: torch.Tensor) -> torch.Tensor:
            return self.diffusion(x, tt, cond, cfg_dropout_prob=cfg.cfg_dropout_prob)

        loss = self.objective.loss(network, x0, noise, t, mask if use_mask else None)
        check_loss(loss, self.trainer)
        size = x0.shape[0]
        self.log("train/loss", loss.detach(), on_step=True, prog_bar=True, batch_size=size)
        self.log("train/std_data", x0.std().detach(), on_step=True, batch_size=size)
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], on_step=True, batch_size=size)
        if self.skipped_samples:
            self.log("train/skipped_samples", float(self.skipped_samples), on_step=True, batch_size=size)
        if self.non_finite.count:
            self.log("train/non_finite_samples", float(self.non_finite.count), on_step=True, batch_size=size)
        return loss

    def on_fit_start(self) -> None:
        # Every rank starts from the same seed; give each its own noise and times, as the reference does under
        # SLURM (seed + rank), so that the samples of a global batch are not noised alike.
        rank, world = self.trainer.global_rank, self.trainer.world_size
        if world > 1:
            torch.manual_seed(self.seed + rank)
            self.mask_rng.seed(self.seed + rank)
            state = self.timesteps.state_dict()
            self.timesteps.reseed(self.seed + rank)
            self.timesteps.load_state_dict(dict(state, seed=self.seed + rank))

    def on_before_zero_grad(self, *args: Any, **kwargs: Any) -> None:
        if self.diffusion_ema is not None:
            self.diffusion_ema.update(self.diffusion.model)

    def on_train_epoch_start(self) -> None:
        dataset = getattr(self.trainer.train_dataloader, "dataset", None)
        set_epoch = getattr(dataset, "set_epoch", None)
        if set_epoch is not None:
            set_epoch(self.current_epoch)

    def configure_optimizers(self) -> Any:
        from .optim import build_optimizers

        return build_optimizers(self.training_config, self.diffusion.parameters())

    # ---- validation (the reference's fixed times, no padding mask) ------------------------------
    def validation_step(self, batch: Batch | None, batch_idx: int) -> None:
        if batch is None:
            return
        cond = self.conditioning(batch)
        x0, _ = self.prepare_input(batch)
        for value in VALIDATION_TIMESTEPS:
            t = torch.full((x0.shape[0],), value, device=self.device)
            loss = self.objective.loss(lambda x, tt: self.diffusion(x, tt, cond, cfg_dropout_prob=0.0),
                                       x0, torch.randn_like(x0), t)
            self.validation_losses[value].append(float(loss))

    def on_validation_epoch_end(self) -> None:
        means = {t: sum(v) / len(v) for t, v in self.validation_losses.items() if v}
        for t, value in means.items():
            self.log(f"val/loss_{t:.1f}", value, sync_dist=True)
        if means:
            self.log("val/avg_loss", sum(means.values()) / len(means), sync_dist=True)
        self.validation_losses = {t: [] for t in VALIDATION_TIMESTEPS}

    # ---- checkpoints --------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        check_weights(checkpoint["state_dict"], self.trainer)  # before anything is written
        checkpoint["model_config"] = self.diffusion.config.raw
        checkpoint["preencode"] = {"format": CHECKPOINT_FORMAT, "timestep_sampler": self.timesteps.state_dict()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        weights = checkpoint.get("state_dict", {})
        for key in [k for k in weights if k.startswith(REFERENCE_ONLY)]:
            del weights[key]
        state = checkpoint.get("preencode", {}).get("timestep_sampler")
        if isinstance(state, dict):
            self.timesteps.load_state_dict(state)

    def network_for_sampling(self) -> torch.nn.Module:
        """The EMA network when there is one (as the reference's demos), else the online one."""
        return self.diffusion_ema.ema_model if self.diffusion_ema is not None else self.diffusion.model
