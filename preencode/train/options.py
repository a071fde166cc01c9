"""Command-line options of ``preencode train`` / ``train.py`` and ``preencode unwrap``.

Torch-free, so that the command line's parser (and ``--help``) is built without importing torch or
Lightning; :func:`run_train` and :func:`run_unwrap` import the training code only when they run.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields

from ..arguments import count_or_name, non_negative_float, non_negative_int, positive_int, seed_32bit

LOGGERS = ("none", "csv", "tensorboard", "wandb")
PRECISIONS = ("32-true", "32", "bf16-mixed", "16-mixed")


@dataclass
class TrainOptions:
    model_config: str
    dataset_config: str
    save_dir: str
    val_dataset_config: str | None = None
    batch_size: int = 8
    num_workers: int = 4
    devices: int | str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    accum_batches: int = 1
    gradient_clip_val: float | None = None
    checkpoint_every: int = 10000
    ckpt_path: str | None = None
    pretrained_ckpt_path: str | None = None
    pretransform_ckpt_path: str | None = None
    gradient_checkpointing: bool = False
    seed: int = 42
    logger: str = "csv"
    max_steps: int | None = None
    name: str = "preencode"
    progress: str = "auto"

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> TrainOptions:
        """The options parsed by :func:`add_train_arguments` (the command line's own entries are left out)."""
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.description = "Train a latent diffusion model."
    p.add_argument("--model-config", required=True, help="diffusion model config (stable-audio-tools format)")
    p.add_argument("--dataset-config", required=True, help="dataset config (pre_encoded, or audio_dir for on-the-fly)")
    p.add_argument("--val-dataset-config", default=None)
    p.add_argument("--save-dir", required=True, help="checkpoints, demos and logs go here")
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--num-workers", type=non_negative_int, default=4)
    p.add_argument("--devices", "--num-gpus", dest="devices", type=count_or_name, default="auto",
                   help="devices per node (a number or 'auto'); --num-gpus is an alias")
    p.add_argument("--num-nodes", type=positive_int, default=1)
    p.add_argument("--strategy", default="auto")
    p.add_argument("--precision", default="32-true", choices=PRECISIONS,
                   help="32-true (default), bf16-mixed, or 16-mixed (CUDA only): mixed precision halves activation "
                        "memory")
    p.add_argument("--accum-batches", type=positive_int, default=1)
    p.add_argument("--gradient-clip-val", type=non_negative_float, default=None)
    p.add_argument("--checkpoint-every", type=positive_int, default=10000, help="optimiser steps between checkpoints")
    p.add_argument("--ckpt-path", default=None,
                   help="resume this training checkpoint (step, optimiser, scheduler, EMA)")
    p.add_argument("--pretrained-ckpt-path", default=None,
                   help="start from these model weights (e.g. Stable Audio Open's model.ckpt or model.safetensors), "
                        "loaded strictly")
    p.add_argument("--pretransform-ckpt-path", default=None,
                   help="unwrapped autoencoder weights for the pretransform (replace those of --pretrained-ckpt-path)")
    p.add_argument("--gradient-checkpointing", action="store_true",
                   help="recompute transformer blocks in the backward pass: less memory, about 30%% more compute")
    p.add_argument("--seed", type=seed_32bit, default=42)
    p.add_argument("--logger", choices=LOGGERS, default="csv")
    p.add_argument("--max-steps", type=positive_int, default=None)
    p.add_argument("--name", default="preencode", help="run/project name for wandb")
    p.add_argument("--progress", choices=("auto", "bar", "log", "none"), default="auto",
                   help="progress display (step/max-steps, loss, steps/s, ETA): a bar on a terminal, else a log "
                        "line every tenth of --max-steps (at most 1000 steps apart; 100 without --max-steps)")


def run_train(args: argparse.Namespace) -> int:
    """``preencode train`` / ``train.py``."""
    from .run import train

    train(TrainOptions.from_args(args))
    return 0


def add_unwrap_arguments(p: argparse.ArgumentParser) -> None:
    p.description = "Write a training checkpoint's model weights as .ckpt + .safetensors + .json config."
    p.add_argument("--ckpt-path", required=True, help="training checkpoint (e.g. <save-dir>/checkpoints/last.ckpt)")
    p.add_argument("--output", required=True, help="output path without extension, e.g. out/model")
    p.add_argument("--no-ema", action="store_true", help="use the raw instead of the EMA weights")
    p.add_argument("--model-config", default=None,
                   help="the model config, for a checkpoint that does not embed it (ours and stable-audio-tools' do)")


def run_unwrap(args: argparse.Namespace) -> int:
    """``preencode unwrap``: prints the paths written."""
    from .unwrap import unwrap_checkpoint

    for path in unwrap_checkpoint(args.ckpt_path, args.output, use_ema=not args.no_ema,
                                  model_config=args.model_config):
        print(path)
    return 0
