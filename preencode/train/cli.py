"""``preencode train`` / ``python3 train.py`` and ``preencode unwrap``: thin layers over library calls."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from ..errors import UserError
from .run import LOGGERS, TrainOptions


def _devices(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="preencode train", description="Train a latent diffusion model.")
    p.add_argument("--model-config", required=True, help="diffusion model config (stable-audio-tools format)")
    p.add_argument("--dataset-config", required=True, help="dataset config (pre_encoded, or audio_dir for on-the-fly)")
    p.add_argument("--val-dataset-config", default=None)
    p.add_argument("--save-dir", required=True, help="checkpoints, demos and logs go here")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--num-workers", type=int, default=4)
    p.add_argument("--devices", "--num-gpus", dest="devices", type=_devices, default="auto",
                   help="devices per node (a number or 'auto'); --num-gpus is an alias")
    p.add_argument("--num-nodes", type=int, default=1)
    p.add_argument("--strategy", default="auto")
    p.add_argument("--precision", default="32-true", help="Lightning precision, e.g. 16-mixed, bf16-mixed")
    p.add_argument("--accum-batches", type=int, default=1)
    p.add_argument("--gradient-clip-val", type=float, default=None)
    p.add_argument("--checkpoint-every", type=int, default=10000, help="optimiser steps between checkpoints")
    p.add_argument("--ckpt-path", default=None, help="resume from this training checkpoint")
    p.add_argument("--pretrained-ckpt-path", default=None, help="start from these unwrapped model weights")
    p.add_argument("--pretransform-ckpt-path", default=None, help="unwrapped autoencoder weights for the pretransform")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--logger", choices=LOGGERS, default="csv")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--name", default="preencode", help="run/project name for wandb")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def _run(fn, debug: bool) -> int:  # noqa: ANN001 - a zero-argument callable
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        fn()
    except UserError as err:
        if debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    return 0


def train_main(argv: Sequence[str] | None = None) -> int:
    args = vars(train_parser().parse_args(argv))
    debug = args.pop("debug")
    from .run import train

    return _run(lambda: train(TrainOptions(**args)), debug)


def unwrap_main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="preencode unwrap",
                                description="Write a training checkpoint's model weights as .ckpt + .safetensors + .json config.")
    p.add_argument("--ckpt-path", required=True, help="training checkpoint (e.g. <save-dir>/checkpoints/last.ckpt)")
    p.add_argument("--output", required=True, help="output path without extension, e.g. out/model")
    p.add_argument("--no-ema", action="store_true", help="use the raw instead of the EMA weights")
    p.add_argument("--debug", action="store_true")
    args = p.parse_args(argv)
    from .unwrap import unwrap_checkpoint

    def go() -> None:
        for path in unwrap_checkpoint(args.ckpt_path, args.output, use_ema=not args.no_ema):
            print(path)

    return _run(go, args.debug)
