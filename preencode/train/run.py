"""Setting up a training run: options, configs, compatibility checks, data, weights, Trainer.

Everything that can be checked without data or weights (options, the model config, checkpoint paths) is
checked first; then weights are loaded strictly; then the dataset is scanned and matched against the model.
Weights: ``--pretrained-ckpt-path`` (an unwrapped model such as Stable Audio Open's ``model.ckpt`` /
``model.safetensors``, or a training checkpoint) into the whole model, ``--pretransform-ckpt-path`` into
the pretransform's autoencoder. A missing, unexpected or mis-shaped tensor is an error that lists them
(stable-audio-tools skips them silently). ``--ckpt-path`` resumes a training checkpoint (ours or
stable-audio-tools'): step, optimiser, scheduler, EMA and the timestep sampler's position.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch

from ..data.config import DatasetConfig, load_dataset_config
from ..data.latent_shards import LatentShardDataset, shard_latent_channels
from ..data.loaders import build_latent_dataset, make_latent_loader
from ..data.loaders import make_loader as make_map_loader
from ..data.pre_encoded import latent_channels
from ..errors import CheckpointError, ConfigError, DatasetError, Interrupted, UserError
from ..models.checkpoint import normalize_keys
from ..models.diffusion.checkpoint import read_state_dict, select_state
from ..models.diffusion.config import DiffusionConfig, load_diffusion_config
from ..models.diffusion.factory import build_diffusion_model
from ..models.diffusion.model import ConditionedDiffusionModel
from .audio_batches import build_audio_dataset
from .data_position import StreamPosition
from .module import REFERENCE_ONLY, DiffusionTrainingModule
from .options import LOGGERS, PRECISIONS, TrainOptions
from .stopping import StopAtStepBoundary, StopRequest, TrainingStopped, ignore_in_worker, stop_on_signals
from .unwrap import read_training_checkpoint

log = logging.getLogger(__name__)

def check_options(opts: TrainOptions) -> None:
    """Option problems that need neither data nor weights.

    Raises:
        UserError: naming the flag and the fix.
    """
    if opts.precision not in PRECISIONS:
        raise UserError(f"--precision {opts.precision!r} is not supported; valid: {', '.join(PRECISIONS)}.",
                        "bf16-mixed (or 16-mixed on CUDA GPUs) halves activation memory.")
    if opts.precision == "16-mixed" and not torch.cuda.is_available():
        raise UserError("--precision 16-mixed needs a CUDA GPU: float16 autocast is not supported on this machine's "
                        "device (Lightning would silently switch to bf16-mixed).",
                        "Use --precision bf16-mixed (or 32-true).")
    if opts.ckpt_path and opts.pretrained_ckpt_path:
        raise UserError("--ckpt-path (resume a training run) and --pretrained-ckpt-path (start a new one from "
                        "model weights) exclude each other.", "Pass one of them.")
    for flag, path in (("--ckpt-path", opts.ckpt_path), ("--pretrained-ckpt-path", opts.pretrained_ckpt_path),
                       ("--pretransform-ckpt-path", opts.pretransform_ckpt_path)):
        if path and not Path(path).is_file():
            raise CheckpointError(f"{flag} {path} does not exist.", "Check the path.")
    for flag, value in (("--batch-size", opts.batch_size), ("--accum-batches", opts.accum_batches),
                        ("--checkpoint-every", opts.checkpoint_every), ("--num-nodes", opts.num_nodes)):
        if value < 1:
            raise UserError(f"{flag} must be at least 1, got {value}.")
    if opts.logger not in LOGGERS:
        raise UserError(f"Unknown --logger {opts.logger!r}; valid: {', '.join(LOGGERS)}.")


def load_training_config(path: str) -> DiffusionConfig:
    """The model config, which must be a ``diffusion_cond`` config with a ``training`` section.

    Raises:
        ConfigError: listing every problem.
    """
    config = load_diffusion_config(path)
    problems = []
    if config.model_type != "diffusion_cond":
        problems.append(f"model_type: training is implemented for diffusion_cond models, got {config.model_type!r}")
    if config.training is None:
        problems.append("training: is required to train (optimizer, pre_encoded, ...)")
    elif config.training.pre_encoded and config.pretransform is None:
        problems.append("training.pre_encoded: is true but the model has no pretransform to decode latents with")
    if problems:
        raise ConfigError(path, problems)
    return config


def check_data_kind(model: DiffusionConfig, data: DatasetConfig, source: str) -> None:
    """Raise a DatasetError when latents would feed an audio model or audio a latent one (before any model work)."""
    pre = model.training.pre_encoded if model.training is not None else False
    if pre and not data.holds_latents:
        raise DatasetError(f"The model config sets training.pre_encoded: true but {source} has dataset_type "
                           f"{data.dataset_type!r} without \"pre_encoded\": true.",
                           "Use a pre_encoded dataset config (or wds/s3 with \"pre_encoded\": true), or set "
                           "pre_encoded: false.")
    if not pre and data.holds_latents:
        raise DatasetError(f"{source} is pre_encoded but the model config sets training.pre_encoded: false "
                           "(it would encode latents again).", "Set \"pre_encoded\": true in the training section.")


def check_data_matches_model(model: DiffusionConfig, dataset: torch.utils.data.Dataset) -> None:
    """Raise a DatasetError when the stored latents' channels differ from the model's io_channels."""
    if model.training is not None and model.training.pre_encoded:
        found = (shard_latent_channels(dataset) if isinstance(dataset, LatentShardDataset)
                 else latent_channels(dataset))  # type: ignore[arg-type]
        if found is not None and found[0] != model.io_channels:
            raise DatasetError(f"The pre-encoded latents have {found[0]} channels ({found[1]}) but the model's "
                               f"io_channels is {model.io_channels}.",
                               "Pre-encode with the model's pretransform, or fix io_channels in the model config.")


def build_dataset(model: DiffusionConfig, data: DatasetConfig, seed: int,
                  shuffle: bool = True) -> torch.utils.data.Dataset:
    """The dataset of ``data``: latents (loose files, or shards in folders or S3, streamed) or audio."""
    if data.holds_latents:
        ratio = model.pretransform.autoencoder.downsampling_ratio if model.pretransform is not None else 1
        return build_latent_dataset(data, seconds_per_frame=ratio / model.sample_rate, seed=seed, shuffle=shuffle)
    if model.sample_size is None:
        raise UserError("On-the-fly encoding needs sample_size in the model config.", "Add \"sample_size\".")
    channels = model.audio_channels or (model.pretransform.autoencoder.io_channels if model.pretransform else 2)
    return build_audio_dataset(data, model.sample_rate, model.sample_size, channels, seed=seed)


def make_loader(dataset: torch.utils.data.Dataset, *, batch_size: int, num_workers: int, shuffle: bool,
                drop_last: bool, seed: int = 0,
                worker_init_fn: Callable[[int], None] | None = None) -> torch.utils.data.DataLoader:
    """The loader of :func:`build_dataset`'s dataset; shards get a resumable stream loader. ``worker_init_fn``
    runs in each loader worker (the training loop's signal policy)."""
    if isinstance(dataset, LatentShardDataset):
        return make_latent_loader(dataset, batch_size=batch_size, num_workers=num_workers, shuffle=shuffle,
                                  drop_last=drop_last, seed=seed, worker_init_fn=worker_init_fn)
    return make_map_loader(dataset, batch_size=batch_size, num_workers=num_workers, shuffle=shuffle,
                           drop_last=drop_last, seed=seed, worker_init_fn=worker_init_fn)


def load_weights(model: ConditionedDiffusionModel, pretrained: str | None, pretransform: str | None) -> None:
    """Load ``--pretrained-ckpt-path`` into the whole model and ``--pretransform-ckpt-path`` into its
    pretransform, strictly (the pretransform's tensors may be missing from the first when the second is given).

    Raises:
        CheckpointError: listing missing, unexpected and mis-shaped tensors.
    """
    if pretransform and model.pretransform is None:
        raise UserError("--pretransform-ckpt-path was given but the model config has no pretransform.",
                        "Remove the flag, or use a config with model.pretransform.")
    if pretrained:
        own = model.state_dict()
        state = select_state(read_state_dict(pretrained), own, pretrained,
                             allow_missing=("pretransform.",) if pretransform else ())
        model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=False)
        log.info("Loaded %d tensors from %s", len(state), pretrained)
    if pretransform:
        from ..models.checkpoint import load_autoencoder_state, load_state_dict_file

        if model.pretransform is None:  # refused above; narrows the type
            raise UserError("--pretransform-ckpt-path needs a model config with model.pretransform.")
        load_autoencoder_state(model.pretransform.model, load_state_dict_file(pretransform), pretransform)
    elif model.pretransform is not None and not pretrained:
        log.warning("No --pretrained-ckpt-path or --pretransform-ckpt-path: the pretransform has random weights, "
                    "so demos (and on-the-fly encoding) are meaningless.")


def check_resume(module: DiffusionTrainingModule, path: str) -> None:
    """A training checkpoint to resume must be one (weights and training state) and hold exactly this module's
    tensors.

    Raises:
        CheckpointError: not a training checkpoint, or listing the differences.
    """
    ckpt = read_training_checkpoint(path)
    if "optimizer_states" not in ckpt or "global_step" not in ckpt:
        raise CheckpointError(f"--ckpt-path {path} holds model weights but no training state (step, optimiser): "
                              "it is not a training checkpoint to resume.",
                              "To start a new run from these weights, pass it as --pretrained-ckpt-path.")
    tensors = {k: v for k, v in ckpt["state_dict"].items() if isinstance(v, torch.Tensor)}
    state = {k: v for k, v in normalize_keys(tensors).items() if not k.startswith(REFERENCE_ONLY)}
    own = module.state_dict()
    missing = sorted(own.keys() - state.keys())
    unexpected = sorted(state.keys() - own.keys())
    shapes = sorted(k for k in own.keys() & state.keys() if own[k].shape != state[k].shape)
    if missing or unexpected or shapes:
        parts = [f"{len(v)} {n}: {', '.join(v[:5])}{' ...' if len(v) > 5 else ''}" for n, v in
                 (("missing", missing), ("unexpected", unexpected), ("with another shape", shapes)) if v]
        ema_differs = any("diffusion_ema" in k for k in missing + unexpected)
        hint = " (training.use_ema differs from the run's?)" if ema_differs else ""
        raise CheckpointError(f"Training checkpoint {path} does not match the model config{hint} "
                              f"({'; '.join(parts)}).",
                              "Resume with the model config of that run.")


def make_logger(kind: str, save_dir: str, name: str) -> Any:
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
    try:
        import wandb  # noqa: F401
    except ImportError as err:
        raise UserError("--logger wandb needs the 'wandb' package.", "pip install wandb") from err
    from lightning.pytorch.loggers import WandbLogger

    return WandbLogger(project=name, save_dir=save_dir)


def build_module(opts: TrainOptions, config: DiffusionConfig) -> DiffusionTrainingModule:
    """The model with its weights (and T5 encoders) loaded, wrapped for training."""
    model = build_diffusion_model(config)
    if model.conditioner is not None:
        model.conditioner.load()
    load_weights(model, opts.pretrained_ckpt_path, opts.pretransform_ckpt_path)
    if opts.gradient_checkpointing:
        model.model.model.transformer.gradient_checkpointing = True
    assert config.training is not None  # load_training_config requires it
    module = DiffusionTrainingModule(model, config.training, seed=opts.seed)
    if opts.ckpt_path:
        check_resume(module, opts.ckpt_path)
    return module


def train(opts: TrainOptions, callbacks: list[L.Callback] | None = None) -> Path:
    """Run training; returns the path of the final checkpoint (``<save_dir>/checkpoints/last.ckpt``).

    Raises:
        UserError (ConfigError, DatasetError, CheckpointError): before any training step.
        TrainingDiverged: the loss or the weights stopped being finite (nothing non-finite is saved).
        Interrupted: SIGINT or SIGTERM stopped the run at a step boundary, after saving ``last.ckpt``.
    """
    with stop_on_signals() as request:
        return _train(opts, callbacks or [], request)


def _train(opts: TrainOptions, callbacks: list[L.Callback], request: StopRequest) -> Path:
    from lightning.pytorch.callbacks import ModelCheckpoint

    from .data_scale import DataScaleCheck
    from .demos import DemoCallback
    from .progress import TrainingProgress

    check_options(opts)
    config = load_training_config(opts.model_config)
    training = config.training
    assert training is not None
    data = load_dataset_config(opts.dataset_config)
    val_data = load_dataset_config(opts.val_dataset_config) if opts.val_dataset_config else None
    check_data_kind(config, data, opts.dataset_config)
    if val_data is not None and opts.val_dataset_config:
        check_data_kind(config, val_data, opts.val_dataset_config)
    logger = make_logger(opts.logger, opts.save_dir, opts.name)
    L.seed_everything(opts.seed, workers=True, verbose=False)
    module = build_module(opts, config)  # weights are checked before the (possibly long) dataset scan
    dataset = build_dataset(config, data, opts.seed)
    check_data_matches_model(config, dataset)
    loader = make_loader(dataset, batch_size=opts.batch_size, num_workers=opts.num_workers, shuffle=True,
                         drop_last=data.drop_last, seed=opts.seed, worker_init_fn=ignore_in_worker)
    val_loader = None
    if val_data is not None and opts.val_dataset_config:
        val_set = build_dataset(config, val_data, opts.seed, shuffle=False)
        check_data_matches_model(config, val_set)
        val_loader = make_loader(val_set, batch_size=opts.batch_size, num_workers=opts.num_workers, shuffle=False,
                                 drop_last=False, worker_init_fn=ignore_in_worker)
    save_dir = Path(opts.save_dir)
    last = save_dir / "checkpoints" / "last.ckpt"
    all_callbacks: list[L.Callback] = [ModelCheckpoint(
        dirpath=save_dir / "checkpoints", every_n_train_steps=opts.checkpoint_every, save_top_k=-1,
        filename="step_{step:08d}", auto_insert_metric_name=False), StreamPosition(loader)]
    if training.demo is not None:
        seconds = (config.sample_size or config.min_input_length) / config.sample_rate
        all_callbacks.append(DemoCallback(training.demo, save_dir / "demos", seconds, seed=opts.seed))
    all_callbacks += [TrainingProgress(opts.progress), DataScaleCheck(), *callbacks, StopAtStepBoundary(request, last)]
    trainer = L.Trainer(accelerator="auto", devices=opts.devices, num_nodes=opts.num_nodes, strategy=opts.strategy,
                        precision=opts.precision, accumulate_grad_batches=opts.accum_batches,  # type: ignore[arg-type]
                        gradient_clip_val=opts.gradient_clip_val, max_steps=opts.max_steps or -1, max_epochs=-1,
                        callbacks=all_callbacks, logger=logger, log_every_n_steps=1, default_root_dir=str(save_dir),
                        enable_model_summary=False, enable_progress_bar=False, num_sanity_val_steps=0,
                        limit_val_batches=1.0 if val_loader else 0)
    request.graceful = True  # from here on a signal stops at the next step boundary, with a checkpoint
    try:
        trainer.fit(module, loader, val_loader, ckpt_path=opts.ckpt_path)
    except TrainingStopped as stopped:
        of = f" of {opts.max_steps}" if opts.max_steps else ""
        instead = " in place of --pretrained-ckpt-path" if opts.pretrained_ckpt_path else ""
        raise Interrupted(f"interrupted: step {stopped.step}{of} (saved {stopped.checkpoint})", request.exit_code,
                          fix=f"re-run the same command with --ckpt-path {stopped.checkpoint}{instead} to resume") \
            from None
    finally:
        module.non_finite.summary()
    trainer.save_checkpoint(last, weights_only=False)  # the whole state, to resume from (as ModelCheckpoint's)
    log.info("Saved %s at step %d", last, trainer.global_step)
    return last
