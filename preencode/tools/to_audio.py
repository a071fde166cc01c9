"""``preencode decode <latent.npy>``: turn a stored latent back into audio, to listen to what was encoded.

Long latents are decoded in chunks of ``chunk_frames`` frames, each with ``overlap_frames`` frames of
context on both sides that are decoded and then trimmed away. A convolutional decoder only sees a
bounded neighbourhood of frames, so when the context covers that receptive field the chunked result
equals an unchunked decode (up to float rounding), while memory stays bounded by the chunk size.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import UserError
from ..models.autoencoder import AudioAutoencoder
from ..store.details import read_details
from ..store.meta import LatentMeta
from ..store.names import DETAILS, LATENT, META
from ..store.reader import ReadError, Record, record_at
from .commands import DEFAULT_CHUNK_FRAMES, DEFAULT_OVERLAP_FRAMES

log = logging.getLogger(__name__)


@torch.inference_mode()
def decode_chunked(model: AudioAutoencoder, latent: Tensor, chunk_frames: int = DEFAULT_CHUNK_FRAMES,
                   overlap_frames: int = DEFAULT_OVERLAP_FRAMES) -> Tensor:
    """Decode one latent ``[latent_dim, N]`` -> audio ``[io_channels, N * downsampling_ratio]``.

    Args:
        model: an autoencoder with ``decode([B, latent_dim, n]) -> [B, C, n * ratio]``.
        latent: float latent on any device (moved to the model's).
        chunk_frames: frames kept per decoder call; ``0`` decodes everything at once.
        overlap_frames: context frames decoded and discarded on each side of a chunk.

    Raises:
        ValueError: negative chunk or overlap sizes.
    """
    if chunk_frames < 0 or overlap_frames < 0:
        raise ValueError(f"chunk_frames and overlap_frames must be >= 0, got {chunk_frames}, {overlap_frames}")
    ratio = model.downsampling_ratio
    frames = latent.shape[-1]
    latent = latent.to(model.device)
    if chunk_frames == 0 or frames <= chunk_frames:
        return model.decode(latent[None])[0].float().cpu()
    pieces = []
    for start in range(0, frames, chunk_frames):
        end = min(start + chunk_frames, frames)
        lo, hi = max(0, start - overlap_frames), min(frames, end + overlap_frames)
        audio = model.decode(latent[None, :, lo:hi])[0]
        pieces.append(audio[:, (start - lo) * ratio:(end - lo) * ratio].float().cpu())
    return torch.cat(pieces, dim=-1)


def valid_range(meta: LatentMeta, frames: int) -> tuple[int, int]:
    """First and one-past-last valid frame per ``padding_mask`` (the whole latent when it has none)."""
    mask = meta.mask(frames)
    if mask is None:
        log.warning("The latent's metadata has no usable padding_mask; keeping all %d frames.", frames)
        return 0, frames
    valid = np.flatnonzero(mask)
    if valid.size == 0:
        return 0, 0
    return int(valid[0]), int(valid[-1]) + 1


def load_latent_file(location: str | Path) -> tuple[np.ndarray, Record]:
    """A stored latent ``[latent_dim, N]`` and its record: a loose ``<id>.npy`` or a shard member
    (``<shard>.tar:<id>``, or a shard holding one latent). Raises UserError when it is missing or unusable."""
    record = record_at(location)
    if LATENT not in record.parts:
        raise UserError(f"{location} is not named like a stored latent (<id>{LATENT}, the id being the name up to "
                        "its first dot).", f"Pass the path of a stored <id>{LATENT} file, or <shard>.tar:<id>.")
    try:
        latent = record.load_latent()
    except ReadError as err:
        raise UserError(f"{err}.", "Run `preencode verify` on the output folder to find damaged files.") from err
    where = record.location(LATENT)
    if latent.ndim != 2:
        raise UserError(f"{where} has shape {list(latent.shape)}, expected a latent [latent_dim, frames].",
                        "Pass a latent written by `preencode encode`.")
    if not np.issubdtype(latent.dtype, np.floating):
        raise UserError(f"{where} holds integer tokens ({latent.dtype}); decoding discrete tokens is not supported.",
                        "Decode continuous latents only.")
    if not np.isfinite(latent).all():
        raise UserError(f"{where} contains NaN or infinite values.", "Re-encode this file.")
    return latent, record


def _sibling_meta(record: Record) -> LatentMeta:
    if META not in record.parts:
        return LatentMeta()
    try:
        return record.load_meta()
    except ReadError as err:
        raise UserError(f"{err}.", "Pass --keep-padding to ignore it.") from err


def _model_config(args: argparse.Namespace, record: Record) -> str | dict:
    """``--model-config``, else the full config stored in the tree's details file (``<out>/<rank>/<id>.npy`` or
    ``<out>/<rank>/shard-….tar``)."""
    if args.model_config:
        return args.model_config
    details = read_details(Path(record.parts[LATENT].path).resolve().parent.parent)
    if details.model_config is not None:
        log.info("Using the model config stored in %s.", details.path)
        return details.model_config
    raise UserError(f"No model config for {record.location(LATENT)}: the {DETAILS} of its output does not hold one.",
                    "Pass --model-config with the autoencoder config used to encode.")


def decode_file(args: argparse.Namespace) -> Path:
    """Decode ``args.latent`` to ``args.output`` (see :func:`build_parser`). Returns the wav's path."""
    from .. import load_autoencoder

    out = Path(args.output)
    latent, record = load_latent_file(args.latent)
    latent_path = record.location(LATENT)
    if not out.parent.is_dir():
        raise UserError(f"Cannot write {out}: folder {out.parent} does not exist.", "Create it or pick another -o.")
    model = load_autoencoder(_model_config(args, record), args.ckpt_path, device=args.device)
    if model.is_discrete:
        raise UserError("This autoencoder has a discrete bottleneck; decoding tokens is not supported.",
                        "Use a continuous (VAE) autoencoder config.")
    if latent.shape[0] != model.latent_dim:
        raise UserError(f"{latent_path} has {latent.shape[0]} channels but the model's latent_dim is "
                        f"{model.latent_dim}.", "Pass the --model-config and --ckpt-path used to encode it.")
    start, end = 0, latent.shape[1]
    if not args.keep_padding:
        start, end = valid_range(_sibling_meta(record), latent.shape[1])
        if end == start:
            raise UserError(f"{latent_path} has no valid frames (its padding_mask is all 0).",
                            "Pass --keep-padding to decode it anyway.")
    # Decode everything, then trim: the valid part's edges are decoded with their real neighbours.
    audio = decode_chunked(model, torch.from_numpy(latent), args.chunk_frames, args.overlap_frames)
    ratio = model.downsampling_ratio
    audio = audio[:, start * ratio:end * ratio]
    import soundfile

    soundfile.write(str(out), audio.numpy().T, model.sample_rate, subtype="FLOAT")
    log.info("Wrote %s: %d channels, %.2f s at %d Hz.", out, audio.shape[0],
             audio.shape[1] / model.sample_rate, model.sample_rate)
    return out
