"""``--full-length``: encoding batches of chunks and stitching each input's frames back together.

A batch (:class:`~preencode.encode.full_length.stream.ChunkBatch`) holds chunks of one or more inputs;
an input's chunks arrive in order, possibly over several batches. Each chunk's kept pre-bottleneck
frames are appended to its input's buffer; the input's last chunk completes it: the bottleneck then
runs once over all its frames (posterior noise drawn for the whole input), giving one latent sequence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ...data.failures import Failure
from ...models.autoencoder import AudioAutoencoder
from ...store.meta import LatentMeta, json_safe
from ...store.sample import EncodedSample
from ..posterior import NON_FINITE, bottleneck_outputs, non_finite_rows

if TYPE_CHECKING:
    from .stream import ChunkBatch


class Stitcher:
    """Pre-bottleneck frames ``[C_enc, n]`` of inputs whose last chunk has not arrived yet."""

    def __init__(self) -> None:
        self.partial: dict[int, list[torch.Tensor]] = {}
        self.frames: dict[int, int] = {}

    def add(self, index: int, frame_start: int, frames: torch.Tensor) -> None:
        """Append ``frames`` ``[C_enc, n]`` starting at global frame ``frame_start`` of input ``index``.

        Raises:
            RuntimeError: the chunk does not continue the input where the previous one ended.
        """
        have = self.frames.get(index, 0)
        if frame_start != have:
            raise RuntimeError(f"input {index}: chunk starts at frame {frame_start}, expected {have}")
        self.partial.setdefault(index, []).append(frames)
        self.frames[index] = have + frames.shape[-1]

    def finish(self, index: int) -> torch.Tensor:
        """All frames of input ``index``, ``[C_enc, N]``; forgets the input."""
        parts = self.partial.pop(index)
        del self.frames[index]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)

    def drop(self, index: int) -> None:
        self.partial.pop(index, None)
        self.frames.pop(index, None)


def encode_grouped(encode: Callable[[torch.Tensor], torch.Tensor],
                   audios: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``encode`` each ``[C, L_i]``; chunks of equal length go through one forward pass together.

    Returns the outputs ``[C_enc, L_i // ratio]`` in input order.
    """
    groups: dict[int, list[int]] = {}
    for i, audio in enumerate(audios):
        groups.setdefault(audio.shape[-1], []).append(i)
    out: list[torch.Tensor | None] = [None] * len(audios)
    for rows in groups.values():
        pre = encode(torch.stack([audios[i] for i in rows]))
        for row, i in enumerate(rows):
            out[i] = pre[row]
    return out  # type: ignore[return-value]


def frame_mask(total: int, frames: int, ratio: int) -> list[int]:
    """Frame ``j`` is content when its first sample ``j * ratio`` is (nearest-neighbour resizing of the
    sample mask, as the windowed mode): only a frame that starts in the padding is 0."""
    return [1 if j * ratio < total else 0 for j in range(frames)]


def predict_chunks(model: AudioAutoencoder, settings: Any, stitcher: Stitcher, batch: ChunkBatch,
                   device: torch.device) -> tuple[list[EncodedSample], list[Failure]]:
    """Encode a batch of chunks; returns the :class:`EncodedSample` s of the inputs it completes, and the
    failures of completed inputs whose encoding is not finite (not stored)."""
    dropped = {f.index for f in batch.failures if f.index is not None} | {r.index for r in batch.rejections}
    for index in dropped:  # inputs that failed or were rejected after some of their chunks
        stitcher.drop(index)
    chunks = [c for c in batch.chunks if c.index not in dropped]
    samples: list[EncodedSample] = []
    failures: list[Failure] = []
    if not chunks:
        return samples, failures
    audios = [c.audio.to(device, model.dtype, non_blocking=True) for c in chunks]
    pres = encode_grouped(model.encode_pre_bottleneck, audios)
    for chunk, pre in zip(chunks, pres, strict=True):
        stitcher.add(chunk.index, chunk.frame_start, pre[:, chunk.keep_offset: chunk.keep_offset + chunk.keep])
        if chunk.metadata is None:  # not the input's last chunk
            continue
        full = stitcher.finish(chunk.index)
        latents, std = bottleneck_outputs(model, settings, full[None], [chunk.index])
        meta = dict(chunk.metadata)
        if non_finite_rows(full[None], latents, std)[0]:
            failures.append(Failure(str(meta.get("path")), "encode", NON_FINITE, chunk.index, meta.get("dataset_id")))
            continue
        meta["padding_mask"] = frame_mask(chunk.total_samples, latents.shape[-1], model.downsampling_ratio)
        samples.append(EncodedSample(chunk.index, np.ascontiguousarray(latents[0]),
                                     LatentMeta.from_dict(json_safe(meta)),
                                     None if std is None else np.ascontiguousarray(std[0])))
    return samples, failures
