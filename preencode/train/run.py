"""Setting up a training run: configs, compatibility checks, data, weights, Trainer."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import torch

from ..data.config import DatasetConfig, load_dataset_config
from ..data.loaders import build_pre_encoded_dataset, make_loader
from ..data.pre_encoded import latent_channels
from ..errors import DatasetError, UserError
from ..models.checkpoint import load_autoencoder_state, load_state_dict_file, load_strict
from .audio_batches import build_audio_dataset
from .config import DiffusionModelConfig, load_model_config
from .demos import DemoCallback
from .module import LatentDiffusionModule
from .options import LOGGERS, TrainOptions

log = logging.getLogger(__name__)


def check_data_matches_model(model: DiffusionModelConfig, data: DatasetConfig, dataset: torch.utils.data.Dataset,
                             source: str) -> None:
    """Raise a DatasetError naming both sides when the data cannot feed this model."""
    pre = model.training.pre_encoded
    if pre and data.dataset_type != "pre_encoded":
        raise DatasetError(f"The model config sets training.pre_encoded: true but {source} has dataset_type "
                           f"{data.dataset_type!r}.", "Use a pre_encoded dataset config, or set pre_encoded: false.")
    if not pre and data.dataset_type == "pre_encoded":
        raise DatasetError(f"{source} is pre_encoded but the model config sets training.pre_encoded: false "
                           "(it would encode latents again).", "Set \"pre_encoded\": true in the training section.")
    if pre:
        found = latent_channels(dataset)  # type: ignore[arg-type]
        if found is not None and found[0] != model.io_channels:
            raise DatasetError(f"The pre-encoded latents have {found[0]} channels ({found[1]}) but the model's "
                               f"io_channels is {model.io_channels}.",
                               "Pre-encode with the model's pretransform, or fix io_channels in the model config.")


def build_dataset(model: DiffusionModelConfig, data: DatasetConfig, seed: int) -> torch.utils.data.Dataset:
    if data.dataset_type == "pre_encoded":
        frame_seconds = model.downsampling_ratio / model.sample_rate
        return build_pre_encoded_dataset(data, seconds_per_frame=frame_seconds, seed=seed)
    if model.sample_size is None:
        raise UserError("On-the-fly encoding needs sample_size in the model config.", "Add \"sample_size\".")
    return build_audio_dataset(data, model.sample_rate, model.sample_size, model.audio_channels, seed=seed)


def build_module(opts: TrainOptions, config: DiffusionModelConfig) -> LatentDiffusionModule:
    module = LatentDiffusionModule(config)
    if opts.pretrained_ckpt_path:
        load_strict(module.model, load_state_dict_file(opts.pretrained_ckpt_path), opts.pretrained_ckpt_path,
                    allow_missing="pretransform." if opts.pretransform_ckpt_path else "")
        if module.ema is not None:
            module.ema.shadow.load_state_dict(module.model.model.state_dict())
    if opts.pretransform_ckpt_path:
        if module.model.pretransform is None:
            raise UserError("--pretransform-ckpt-path was given but the model config has no pretransform.")
        load_autoencoder_state(module.model.pretransform.model, load_state_dict_file(opts.pretransform_ckpt_path),
                               opts.pretransform_ckpt_path)
    elif module.model.pretransform is not None and not opts.pretrained_ckpt_path and not opts.ckpt_path:
        log.warning("No --pretransform-ckpt-path: the pretransform has random weights, so demos (and on-the-fly "
                    "encoding) are meaningless.")
    return module


def make_logger(kind: str, save_dir: str, name: str) -> object:
    if kind == "none":
        return False
    if kind == "csv":
        from lightning.pytorch.loggers import CSVLogger

        return CSVLogger(save_dir, name="csv")
    if kind == "tensorboard":
        from lightning.pytorch.loggers import TensorBoardLogger

        try:
            return TensorBoardLogger(save_dir, name="tensorboard")
        except ModuleNotFoundError as err:
            raise UserError("--logger tensorboard needs the 'tensorboard' package.", "pip install tensorboard") from err
    if kind == "wandb":
        try:
            import wandb  # noqa: F401
        except ImportError as err:
            raise UserError("--logger wandb needs the 'wandb' package.", "pip install wandb") from err
        from lightning.pytorch.loggers import WandbLogger

        return WandbLogger(project=name, save_dir=save_dir)
    raise UserError(f"Unknown --logger {kind!r}; valid: {', '.join(LOGGERS)}.")


def train(opts: TrainOptions) -> Path:
    """Run training; returns the path of the final checkpoint (``<save_dir>/checkpoints/last.ckpt``)."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    config = load_model_config(opts.model_config)
    data = load_dataset_config(opts.dataset_config)
    L.seed_everything(opts.seed, workers=True, verbose=False)
    dataset = build_dataset(config, data, opts.seed)
    check_data_matches_model(config, data, dataset, opts.dataset_config)
    loader = make_loader(dataset, batch_size=opts.batch_size, num_workers=opts.num_workers, shuffle=True,
                         drop_last=data.drop_last, seed=opts.seed)
    val_loader = None
    if opts.val_dataset_config:
        val_data = load_dataset_config(opts.val_dataset_config)
        val_set = build_dataset(config, val_data, opts.seed)
        check_data_matches_model(config, val_data, val_set, opts.val_dataset_config)
        val_loader = make_loader(val_set, batch_size=opts.batch_size, num_workers=opts.num_workers, shuffle=False,
                                 drop_last=False)
    module = build_module(opts, config)
    save_dir = Path(opts.save_dir)
    callbacks: list[L.Callback] = [ModelCheckpoint(dirpath=save_dir / "checkpoints", every_n_train_steps=opts.checkpoint_every,
                                                   save_top_k=-1, filename="step_{step:08d}", auto_insert_metric_name=False)]
    if config.training.demo is not None:
        frames = (config.sample_size or 0) // config.downsampling_ratio or dataset_frames(data) or 64
        callbacks.append(DemoCallback(config.training.demo, save_dir / "demos", frames))
    trainer = L.Trainer(accelerator="auto", devices=opts.devices, num_nodes=opts.num_nodes, strategy=opts.strategy,
                        precision=opts.precision, accumulate_grad_batches=opts.accum_batches,
                        gradient_clip_val=opts.gradient_clip_val, max_steps=opts.max_steps or -1, max_epochs=-1,
                        callbacks=callbacks, logger=make_logger(opts.logger, str(save_dir), opts.name),
                        log_every_n_steps=1, default_root_dir=str(save_dir), enable_model_summary=False,
                        num_sanity_val_steps=0, limit_val_batches=1.0 if val_loader else 0)
    trainer.fit(module, loader, val_loader, ckpt_path=opts.ckpt_path)
    last = save_dir / "checkpoints" / "last.ckpt"
    trainer.save_checkpoint(last)
    log.info("Saved %s at step %d", last, trainer.global_step)
    return last


def dataset_frames(data: DatasetConfig) -> int | None:
    return data.latent_crop_length
