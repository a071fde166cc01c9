"""Command-line options of ``preencode generate``.

Torch-free, so that the command line's parser (and ``--help``) is built without importing torch;
:func:`run_generate` imports the generation code only when it runs.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields

from ..arguments import Integer, Real, non_negative_float, positive_int

#: Sampler names (``preencode.models.diffusion.sampling`` implements them; a test keeps the two in step).
SAMPLERS = ("dpmpp-2m", "dpmpp-3m-sde", "euler", "pingpong")


@dataclass
class GenerateOptions:
    """What to generate and where to write it (the flags of ``preencode generate``).

    Attributes:
        model_config: the model's config (JSON path).
        ckpt_path: its weights: an unwrapped ``.ckpt``/``.safetensors`` or a training checkpoint.
        output: the WAV path; with ``batch`` > 1, ``<stem>_<i><suffix>`` for i = 0 .. batch - 1.
        prompt: the text prompt (metadata field ``prompt``).
        seconds_total: length of the audio written (also the ``seconds_total`` conditioning).
        seconds_start: the ``seconds_start`` conditioning.
        negative_prompt: cross-attention conditioning of the unconditional half of guidance.
        steps, cfg_scale, sampler: None takes the model objective's defaults.
        seed: None draws one (it is logged).
        batch: number of clips (one forward batch).
        device: ``auto``, ``cpu``, ``cuda``...
        no_ema: from a training checkpoint, take the online weights instead of the EMA ones.
        overwrite: replace existing output files (refused otherwise).
    """

    model_config: str
    ckpt_path: str
    output: str
    prompt: str = ""
    seconds_total: float = 10.0
    seconds_start: float = 0.0
    negative_prompt: str | None = None
    steps: int | None = None
    cfg_scale: float | None = None
    sampler: str | None = None
    seed: int | None = None
    batch: int = 1
    device: str = "auto"
    no_ema: bool = False
    overwrite: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> GenerateOptions:
        """The options parsed by :func:`add_generate_arguments` (the command line's own entries are left out)."""
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})


def add_generate_arguments(p: argparse.ArgumentParser) -> None:
    p.description = ("Generate audio from a prompt with a diffusion model (stable-audio-tools format) and write "
                     "WAV files.")
    p.add_argument("--model-config", required=True, help="the model's config JSON (e.g. model_config.json)")
    p.add_argument("--ckpt-path", required=True,
                   help="the model's weights: unwrapped .ckpt or .safetensors, or a training checkpoint")
    p.add_argument("--prompt", default="", help="text prompt (metadata field 'prompt')")
    p.add_argument("--seconds-total", type=Real(minimum=0.0, exclusive=True), default=10.0,
                   help="length of the audio written, and the seconds_total conditioning (default 10)")
    p.add_argument("--seconds-start", type=non_negative_float, default=0.0,
                   help="the seconds_start conditioning (default 0)")
    p.add_argument("--negative-prompt", default=None, help="prompt to steer away from (used with --cfg-scale > 1)")
    p.add_argument("--steps", type=positive_int, default=None,
                   help="sampler steps (default: 100 for v, 50 for rectified_flow, 8 for rf_denoiser)")
    p.add_argument("--cfg-scale", type=non_negative_float, default=None,
                   help="classifier-free guidance scale (default: 7, or 1 for rf_denoiser)")
    p.add_argument("--sampler", default=None, choices=SAMPLERS,
                   help="v models: dpmpp-3m-sde (default), dpmpp-2m (deterministic); rectified_flow/rf_denoiser: "
                        "euler (default for rectified_flow, deterministic), pingpong (default for rf_denoiser)")
    p.add_argument("--seed", type=Integer(minimum=0, maximum=2**63 - 1), default=None,
                   help="random seed (default: drawn and printed); the same seed gives the same audio")
    p.add_argument("--batch", type=positive_int, default=1,
                   help="number of clips; with N > 1 they are written as <output stem>_0.wav ... _<N-1>.wav")
    p.add_argument("--output", required=True, help="output WAV path (16-bit PCM at the model's sample rate)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1, ...")
    p.add_argument("--no-ema", action="store_true",
                   help="from a training checkpoint, use the online instead of the EMA weights")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")


def run_generate(args: argparse.Namespace) -> int:
    """``preencode generate``: prints the paths written."""
    from .run import generate

    for path in generate(GenerateOptions.from_args(args)):
        print(path)
    return 0
