"""Splitting a long signal into overlapping chunks whose stitched encodings equal one unchunked pass.

Chunk ``k`` owns the samples ``[k * size, (k + 1) * size)`` of the signal padded to a multiple of the
downsampling ratio. It is encoded from ``[start - margin, end + margin)`` clamped to the signal, and only
the frames of the samples it owns are kept. With ``margin`` at least the encoder's receptive field (one
side) and a multiple of the ratio, no kept frame sees the chunk's artificial edges, and frames at the
signal's own edges see the same zero padding as an unchunked pass.

"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from ...models.config import AutoencoderConfig
from ..fast.receptive_field import receptive_field as frame_field


def receptive_field(cfg: AutoencoderConfig) -> tuple[int, int]:
    """How far (in input samples) the encoder looks left and right of the samples a frame stands for.

    Frame ``j`` depends on input samples ``[j * ratio - left, (j + 1) * ratio + right)``; derived from the
    encoder config by :func:`preencode.encode.fast.receptive_field.receptive_field`.
    """
    left, right = frame_field(cfg.encoder)
    return left, max(0, right - (cfg.downsampling_ratio - 1))


def chunk_margin(cfg: AutoencoderConfig) -> int:
    """Context encoded on each side of a chunk: the receptive field rounded up to the ratio."""
    ratio = cfg.downsampling_ratio
    return math.ceil(max(receptive_field(cfg)) / ratio) * ratio


@dataclass
class Chunk:
    """One piece of a signal to encode.

    Attributes:
        audio: ``[C, L]`` input samples ``[in_start, in_start + L)``, ``L`` a multiple of the ratio.
        frame_start: global index of the first kept frame.
        keep_offset: index of the first kept frame in this chunk's encoder output.
        keep: number of kept frames.
        total: the signal's length in samples (before padding to the ratio), set on the last chunk only.
    """

    audio: np.ndarray
    frame_start: int
    keep_offset: int
    keep: int
    total: int | None = None

    @property
    def last(self) -> bool:
        return self.total is not None


def iter_chunks(blocks: Iterable[np.ndarray], size: int, margin: int, ratio: int) -> Iterator[Chunk]:
    """Chunks of the signal formed by concatenating ``blocks`` (each ``[C, n]``), holding at most
    ``size + 2 * margin`` samples plus one block in memory.

    Args:
        blocks: the signal in consecutive pieces of any length.
        size: samples owned per chunk (a multiple of ``ratio``).
        margin: context on each side (a multiple of ``ratio``).
        ratio: the downsampling ratio; the signal is zero-padded to a multiple of it.

    Raises:
        ValueError: ``size`` or ``margin`` is not a multiple of ``ratio``, or the signal is empty.
    """
    if size <= 0 or size % ratio or margin % ratio or margin < 0:
        raise ValueError(f"size {size} and margin {margin} must be multiples of the ratio {ratio}")
    parts: list[np.ndarray] = []
    buf_start, buffered, channels = 0, 0, 1  # buffered: samples of the signal held from buf_start on
    total = padded = None
    it = iter(blocks)
    k = 0
    while True:
        need = (k + 1) * size + margin  # chunk k's input end, unless the signal ends first
        # Read one sample past it, so that a chunk is known to be the last one when it is.
        while total is None and buf_start + buffered <= need:
            block = next(it, None)
            if block is None:
                total = buf_start + buffered
                padded = math.ceil(total / ratio) * ratio
                if total == 0:
                    raise ValueError("the signal is empty")
            elif block.shape[1]:
                channels = block.shape[0]
                parts.append(block)
                buffered += block.shape[1]
        start = max(0, k * size - margin)
        stop = need if padded is None else min(need, padded)
        held = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
        if held.shape[1] < stop - buf_start:  # the zero padding to a multiple of the ratio
            held = np.pad(held, ((0, 0), (0, stop - buf_start - held.shape[1])))
        audio = np.ascontiguousarray(held[:, start - buf_start: stop - buf_start])
        own_end = (k + 1) * size if padded is None else min((k + 1) * size, padded)
        last = padded is not None and own_end >= padded
        yield Chunk(audio, k * size // ratio, (k * size - start) // ratio, (own_end - k * size) // ratio,
                    total if last else None)
        if last:
            return
        # Keep only what the next chunk needs: from (k + 1) * size - margin on.
        drop = max(0, (k + 1) * size - margin - buf_start)
        held = held[:, drop:] if held.shape[1] > drop else np.zeros((channels, 0), np.float32)
        parts = [held]
        buf_start += drop
        buffered = held.shape[1]  # only read while the end is unknown, when it holds no padding
        k += 1
