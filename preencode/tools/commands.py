"""The tools' subcommands: ``preencode inspect``, ``verify`` and ``decode``.

Each is its flags (``add_*_arguments``) and a few lines over the library (``run_*``), registered in
:mod:`preencode.cli`. This module imports neither numpy nor torch: the tools are imported when run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..arguments import non_negative_int
from ..store.names import DETAILS

INSPECT_DESCRIPTION = """\
Report what a pre-encoded output tree holds: latent counts per rank, audio hours, shapes and dtypes,
per-channel mean and std, the suggested pretransform scale, and failures grouped by reason.

Statistics are computed in one streaming pass (Chan's parallel merge in float64; memory does not
grow with the dataset) over VALID frames only, i.e. frames whose padding_mask is 1: padding frames
encode the silence appended to short files and would bias the statistics. --include-padding counts
every frame. The suggested scale is the std of what a training loader feeds the model, so that dividing
by it gives unit variance (the pretransform "scale" of a latent diffusion config): the overall std of the
counted values, or, where a posterior std is stored beside the latents (--store-std: the loader draws
mean + std * noise), sqrt(var(mean) + mean(std^2)); both numbers are shown.

OUTPUT may also be one shard (out/0/shard-000000.tar) or one latent in it (out/0/shard-000000.tar:<id>)."""

VERIFY_DESCRIPTION = """\
Check that every latent of an output tree is complete and consistent: each .npy (loose or inside a .tar
shard) is readable, 2-D, finite and has the channels and dtype the output's details announce; its .json
padding_mask matches; ids are unique across ranks and shards; no orphan or temporary files are left;
every input of manifest.jsonl has a latent, a failure or a rejection record."""

DECODE_DESCRIPTION = """\
Turn a stored latent back into audio, to listen to what was encoded. Long latents are decoded in chunks,
each with context frames on both sides that are decoded and then trimmed away, so the result equals an
unchunked decode while memory stays bounded by the chunk size."""

# decode's chunking defaults (preencode.tools.to_audio uses them too; it imports torch, this module must not).
DEFAULT_CHUNK_FRAMES = 512
DEFAULT_OVERLAP_FRAMES = 32


def add_inspect_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = INSPECT_DESCRIPTION
    parser.add_argument("output", help=f"output folder of an encode run (holds {DETAILS} and rank folders), one "
                                       "shard of it, or one latent in a shard (<shard>.tar:<id>)")
    parser.add_argument("--include-padding", action="store_true",
                        help="count padding frames (padding_mask 0) in the statistics too")
    parser.add_argument("--model-config", metavar="PATH",
                        help=f"autoencoder config giving sample rate and downsampling ratio when {DETAILS} "
                             "lacks them (reference output whose config path moved)")
    parser.add_argument("--plot", metavar="PNG", help="also draw per-channel mean/std and a value histogram")
    parser.add_argument("--json", action="store_true", help="print one machine-readable JSON object instead")


def run_inspect(args: argparse.Namespace) -> int:
    import json

    from .inspect import RESERVOIR_SIZE, format_report
    from .summary import summarise

    summary = summarise(args.output, include_padding=args.include_padding, model_config=args.model_config,
                        sample_size=RESERVOIR_SIZE if args.plot else 0)
    if args.plot:
        from .plot import plot_summary  # matplotlib only when a plot is asked for

        plot_summary(summary, Path(args.plot))
    if args.json:
        print(json.dumps(summary.as_dict()))
    else:
        print(format_report(summary))
        if args.plot:
            print(f"plot written to {args.plot}")
    return 0


def add_verify_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = VERIFY_DESCRIPTION
    parser.epilog = ("Exit code: 0 when clean, 1 when problems were found (one per line: path: what is wrong), "
                     "2 for a usage error such as a missing folder.")
    parser.add_argument("output", help="output folder of an encode run, or one shard of it")
    parser.add_argument("--model-config", metavar="PATH",
                        help=f"autoencoder config to check shapes against when {DETAILS} lacks them")


def run_verify(args: argparse.Namespace) -> int:
    from .verify import format_result, verify_tree

    result = verify_tree(args.output, args.model_config)
    print(format_result(result))
    return 0 if result.ok else 1


def add_decode_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DECODE_DESCRIPTION
    parser.add_argument("latent", help="a stored latent: <id>.npy (its sibling <id>.json gives the padding_mask), "
                                       "or a shard member <shard>.tar:<id>")
    parser.add_argument("--model-config", metavar="PATH", help="autoencoder config (default: the one stored in "
                        f"the output's {DETAILS})")
    parser.add_argument("--ckpt-path", metavar="PATH", required=True, help="unwrapped autoencoder checkpoint")
    parser.add_argument("-o", "--output", metavar="WAV", required=True, help="wav file to write (32-bit float)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, mps or auto (default: auto)")
    parser.add_argument("--chunk-frames", type=non_negative_int, default=DEFAULT_CHUNK_FRAMES,
                        help=f"latent frames per decoder call, 0 for all at once (default: {DEFAULT_CHUNK_FRAMES})")
    parser.add_argument("--overlap-frames", type=non_negative_int, default=DEFAULT_OVERLAP_FRAMES,
                        help=f"context frames decoded and trimmed on each side of a chunk "
                             f"(default: {DEFAULT_OVERLAP_FRAMES})")
    parser.add_argument("--keep-padding", action="store_true",
                        help="decode the padding frames too instead of trimming to the padding_mask's valid part")


def run_decode(args: argparse.Namespace) -> int:
    from .to_audio import decode_file

    print(f"wrote {decode_file(args)}")
    return 0
