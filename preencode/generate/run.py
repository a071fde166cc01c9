"""``preencode generate``: load a diffusion model, generate from a prompt, write WAV files."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import soundfile as sf
import torch

from ..errors import UserError
from ..models.diffusion.checkpoint import load_diffusion_model
from .options import GenerateOptions
from .sample import generate_audio

log = logging.getLogger(__name__)


def output_paths(output: str | Path, batch: int) -> list[Path]:
    """``output`` itself for one clip, else ``<stem>_0<suffix>``, ``<stem>_1<suffix>``, ..."""
    path = Path(output)
    if path.suffix.lower() != ".wav":
        raise UserError(f"--output {path} must end in .wav.", "Pass e.g. --output out.wav.")
    if batch == 1:
        return [path]
    return [path.with_name(f"{path.stem}_{i}{path.suffix}") for i in range(batch)]


def check_options(opts: GenerateOptions) -> list[Path]:
    """Validate everything that needs no model; returns the output paths.

    Raises:
        UserError: naming the option and the fix.
    """
    if opts.batch < 1:
        raise UserError(f"--batch must be at least 1, got {opts.batch}.")
    if opts.steps is not None and opts.steps < 1:
        raise UserError(f"--steps must be at least 1, got {opts.steps}.")
    if not opts.seconds_total > 0:
        raise UserError(f"--seconds-total must be positive, got {opts.seconds_total}.")
    if opts.seconds_start < 0:
        raise UserError(f"--seconds-start must not be negative, got {opts.seconds_start}.")
    if opts.seed is not None and not 0 <= opts.seed < 2 ** 63:
        raise UserError(f"--seed must be in [0, 2**63), got {opts.seed}.")
    paths = output_paths(opts.output, opts.batch)
    existing = [str(p) for p in paths if p.exists()]
    if existing and not opts.overwrite:
        raise UserError(f"{existing[0]} exists{' (and others)' if len(existing) > 1 else ''}; it was not "
                        "overwritten.", "Pass another --output, or --overwrite to replace it.")
    return paths


def metadata(prompt: str, seconds_start: float, seconds_total: float, batch: int) -> list[dict[str, Any]]:
    """The conditioning metadata of ``batch`` clips (the fields Stable Audio Open's conditioners read)."""
    return [{"prompt": prompt, "seconds_start": seconds_start, "seconds_total": seconds_total}] * batch


def generate(opts: GenerateOptions) -> list[Path]:
    """Generate ``opts.batch`` clips and write them as 16-bit WAV files; returns their paths.

    Raises:
        UserError (ConfigError, CheckpointError): bad options, config or checkpoint, before any sampling.
    """
    paths = check_options(opts)
    model = load_diffusion_model(opts.model_config, opts.ckpt_path, opts.device, prefer_ema=not opts.no_ema)
    seed = opts.seed if opts.seed is not None else random.randrange(2 ** 31)
    if opts.seed is None:
        log.info("Seed %d (pass --seed %d to generate the same audio again)", seed, seed)
    negative = (metadata(opts.negative_prompt, opts.seconds_start, opts.seconds_total, opts.batch)
                if opts.negative_prompt is not None else None)
    audio = generate_audio(model, metadata(opts.prompt, opts.seconds_start, opts.seconds_total, opts.batch),
                           opts.seconds_total, sample_size=model.config.sample_size, seed=seed, steps=opts.steps,
                           cfg_scale=opts.cfg_scale, sampler=opts.sampler, negative_metadata=negative)
    return write_wavs(audio, model.sample_rate, paths)


def write_wavs(audio: torch.Tensor, sample_rate: int, paths: list[Path]) -> list[Path]:
    """Write ``audio [B, C, T]`` (in [-1, 1]) as one 16-bit PCM WAV per clip."""
    for clip, path in zip(audio.cpu(), paths, strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), clip.T.numpy(), sample_rate, subtype="PCM_16")
    return paths
