"""Command-line options of ``pre_encode.py`` / ``preencode encode``: the spec's flags plus ours."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, fields
from typing import Any

from ...arguments import non_negative_int, positive_int

DEFAULT_SAMPLE_SIZE = 1320960
COMPILE_CHOICES = ("auto", "on", "off")


def _compile_choice(value: str) -> str:
    # 'none' (the plain, unoptimised encoder) was removed: it computed the same latents as 'off', slower.
    return "off" if value == "none" else value


@dataclass(frozen=True)
class EncodeOptions:
    model_config: str | None
    ckpt_path: str | None
    dataset_config: str
    output_path: str
    model_half: bool = False
    batch_size: int = 1
    sample_size: int = DEFAULT_SAMPLE_SIZE
    is_discrete: bool = False
    num_nodes: int = 1
    num_workers: int = 4
    strategy: str = "auto"
    limit_batches: int | None = None
    shuffle: bool = False
    accelerator: str = "auto"
    devices: str = "auto"
    posterior: str = "sample"
    seed: int = 0
    overwrite: bool = False
    update: bool = False
    prune: bool = False
    skip_padding: bool = True
    full_length: bool = False
    output_format: str = "npy"
    shard_size: int = 1000
    shard_bytes: int | None = None
    store_std: bool = False
    phase_flip: bool = False
    drop_silence: bool = False
    progress: str = "auto"
    compile: str = "auto"
    summary_json: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> EncodeOptions:
        """The options parsed by :func:`add_arguments` (the command line's own entries are left out)."""
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``preencode encode`` / ``pre_encode.py``: the spec's, with its defaults, then ours."""
    p.description = "Encode an audio dataset to the latents (or tokens) of a frozen autoencoder."
    spec = p.add_argument_group("stable-audio-tools pre_encode.py options")
    spec.add_argument("--model-config", help="path to the autoencoder model config (JSON)")
    spec.add_argument("--ckpt-path", help="path to the UNWRAPPED autoencoder checkpoint (.ckpt or .safetensors)")
    spec.add_argument("--model-half", action="store_true", help="half precision weights (float16 on CUDA; "
                      "computed in float32 on CPU) and float16 latents on disk")
    spec.add_argument("--dataset-config", required=True, help="path to the dataset config (JSON)")
    spec.add_argument("--output-path", required=True,
                      help="output folder, or s3://bucket/prefix (with --output-format wds)")
    spec.add_argument("--batch-size", type=positive_int, default=1, help="windows per batch")
    spec.add_argument("--sample-size", type=positive_int, default=DEFAULT_SAMPLE_SIZE,
                      help="audio samples to pad/crop each window to (a multiple of the downsampling ratio)")
    spec.add_argument("--is-discrete", action="store_true", help="store the integer tokens of a discrete model")
    spec.add_argument("--num-nodes", type=positive_int, default=1, help="number of nodes")
    spec.add_argument("--num-workers", type=non_negative_int, default=4, help="data loader worker processes")
    spec.add_argument("--strategy", default="auto", help="Lightning strategy (auto, ddp, ...)")
    spec.add_argument("--limit-batches", type=positive_int, default=None,
                      help="encode at most this many batches per rank")
    spec.add_argument("--shuffle", action="store_true", help="shuffle the processing order (ids do not change)")
    ours = p.add_argument_group("preencode options")
    ours.add_argument("--accelerator", default="auto", help="Lightning accelerator: auto, cpu, gpu, cuda, mps")
    ours.add_argument("--devices", default="auto", help="devices per node: auto, a count, or a list like 0,1")
    ours.add_argument("--posterior", choices=("sample", "mean"), default="sample",
                      help="VAE models: store a posterior sample (as the reference) or its mean")
    ours.add_argument("--seed", type=non_negative_int, default=0,
                      help="seed of posterior noise and random crops; each sample's draw depends only on it and the id")
    ours.add_argument("--overwrite", action="store_true",
                      help="delete an existing output made with other settings and start over")
    ours.add_argument("--update", action="store_true",
                      help="the inputs changed since the output was made: encode only new inputs (new ids after the "
                      "largest one) and changed ones (under their old ids); gone inputs are reported and their "
                      "latents kept (without it, a changed input list is refused)")
    ours.add_argument("--prune", action="store_true",
                      help="with --update: remove the latents of inputs that are gone")
    ours.add_argument("--no-skip-padding", dest="skip_padding", action="store_false",
                      help="encode every window in full, padding included (the reference's behaviour)")
    ours.add_argument("--full-length", action="store_true",
                      help="encode every file completely as one latent sequence instead of one window, in overlapping "
                      "chunks of --sample-size (then --batch-size counts chunks)")
    ours.add_argument("--output-format", choices=("npy", "wds"), default="npy",
                      help="npy: the spec's <rank>/<id>.npy + .json; wds: WebDataset tar shards per rank")
    ours.add_argument("--shard-size", type=positive_int, default=1000,
                      help="samples per tar shard (--output-format wds)")
    ours.add_argument("--shard-bytes", type=positive_int, default=None,
                      help="also close a shard once it holds this many bytes (--output-format wds)")
    ours.add_argument("--store-std", action="store_true",
                      help="VAE models: also store the posterior std as <id>.std.npz (key std) beside each "
                      "latent, or as a shard member with --output-format wds")
    ours.add_argument("--phase-flip", action="store_true",
                      help="invert the phase of a random half of the clips, as the reference does (off by default)")
    ours.add_argument("--drop-silence", action="store_true", help="skip clips that are entirely silent")
    ours.add_argument("--compile", type=_compile_choice, choices=COMPILE_CHOICES, default="auto",
                      help="CPU encoder's SnakeBeta through torch.compile (same latents either way). auto: compile "
                           "when the windows to encode repay the few seconds compiling takes (kernels are cached "
                           "between runs); on: always compile, an error where no compiler works; off: never "
                           "compile (the in-place SnakeBeta; 'none' is read as off)")
    ours.add_argument("--summary-json", metavar="PATH", help="also write the run summary as JSON to PATH")
    ours.add_argument("--progress", choices=("auto", "bar", "log", "none"), default="auto",
                      help="progress display: a bar on a terminal, one log line per second otherwise")
