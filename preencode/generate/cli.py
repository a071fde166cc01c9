"""``preencode generate``: a thin layer over :func:`preencode.generate.run.generate`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ..models.diffusion.sampling import RF_SAMPLERS, V_SAMPLERS
from .run import GenerateOptions


def generate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="preencode generate",
                                description="Generate audio from a prompt with a diffusion model (stable-audio-tools "
                                            "format) and write WAV files.")
    p.add_argument("--model-config", required=True, help="the model's config JSON (e.g. model_config.json)")
    p.add_argument("--ckpt-path", required=True,
                   help="the model's weights: unwrapped .ckpt or .safetensors, or a training checkpoint")
    p.add_argument("--prompt", default="", help="text prompt (metadata field 'prompt')")
    p.add_argument("--seconds-total", type=float, default=10.0,
                   help="length of the audio written, and the seconds_total conditioning (default 10)")
    p.add_argument("--seconds-start", type=float, default=0.0, help="the seconds_start conditioning (default 0)")
    p.add_argument("--negative-prompt", default=None, help="prompt to steer away from (used with --cfg-scale > 1)")
    p.add_argument("--steps", type=int, default=None,
                   help="sampler steps (default: 100 for v, 50 for rectified_flow, 8 for rf_denoiser)")
    p.add_argument("--cfg-scale", type=float, default=None,
                   help="classifier-free guidance scale (default: 7, or 1 for rf_denoiser)")
    p.add_argument("--sampler", default=None, choices=sorted(V_SAMPLERS + RF_SAMPLERS),
                   help="v models: dpmpp-3m-sde (default), dpmpp-2m (deterministic); rectified_flow/rf_denoiser: "
                        "euler (default for rectified_flow, deterministic), pingpong (default for rf_denoiser)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: drawn and printed); the same seed "
                   "gives the same audio")
    p.add_argument("--batch", type=int, default=1,
                   help="number of clips; with N > 1 they are written as <output stem>_0.wav ... _<N-1>.wav")
    p.add_argument("--output", required=True, help="output WAV path (16-bit PCM at the model's sample rate)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1, ...")
    p.add_argument("--no-ema", action="store_true",
                   help="from a training checkpoint, use the online instead of the EMA weights")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    return p


def generate_main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, generate, print the written paths; user errors propagate as
    :class:`~preencode.errors.UserError` (the command shell prints them and exits 2)."""
    from .run import generate

    for path in generate(GenerateOptions(**vars(generate_parser().parse_args(argv)))):
        print(path)
    return 0
