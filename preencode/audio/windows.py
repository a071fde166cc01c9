"""Pad/crop windows with exactly the reference's ``PadCrop_Normalized_T`` semantics.

For a signal of ``n`` samples and a window of ``sample_size`` samples:

- ``offset`` is 0, or uniform in ``[0, n - sample_size]`` when ``random_crop`` and ``n > sample_size``;
- the window is ``audio[:, offset:offset + sample_size]``, zero-padded on the right;
- ``timestamps = (offset / max(n, sample_size), (offset + sample_size) / max(n, sample_size))``;
- ``seconds_start = floor(offset / sr)``, ``seconds_total = ceil(n / sr)``;
- ``padding_mask`` is 1 over the first ``min(n, sample_size)`` samples and 0 after.

Unlike the reference (global ``random``), offsets come from a generator seeded with
``(seed, item index)``, so a re-run picks the same windows.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class Window:
    """Where a window of ``sample_size`` samples lies in a signal of ``total`` samples."""

    offset: int
    sample_size: int
    total: int

    @property
    def content(self) -> int:
        """How many samples of the window hold audio (the rest is padding)."""
        return max(0, min(self.sample_size, self.total - self.offset))

    def metadata(self, sample_rate: int) -> dict[str, Any]:
        """``timestamps``, ``seconds_start``, ``seconds_total`` and ``padding_mask`` (a float tensor
        ``[sample_size]``), as the reference puts them in a sample's info."""
        denom = max(self.total, self.sample_size)
        mask = torch.zeros(self.sample_size)
        mask[: min(self.total, self.sample_size)] = 1
        return {
            "timestamps": (self.offset / denom, (self.offset + self.sample_size) / denom),
            "seconds_start": math.floor(self.offset / sample_rate),
            "seconds_total": math.ceil(self.total / sample_rate),
            "padding_mask": mask,
        }


def window_rng(seed: int, index: int, stream: str = "") -> np.random.Generator:
    """A generator determined by ``(seed, index, stream)``; ``stream`` names independent draws."""
    return np.random.default_rng([seed, index, zlib.crc32(stream.encode())])


def choose_window(total: int, sample_size: int, random_crop: bool,
                  rng: np.random.Generator | None = None) -> Window:
    """Pick the window for a signal of ``total`` samples.

    Raises:
        ValueError: ``sample_size`` < 1 or ``total`` < 0, or ``random_crop`` without ``rng``.
    """
    if sample_size < 1:
        raise ValueError(f"sample_size must be >= 1, got {sample_size}")
    if total < 0:
        raise ValueError(f"total must be >= 0, got {total}")
    offset = 0
    if random_crop and total > sample_size:
        if rng is None:
            raise ValueError("random_crop needs a random generator")
        offset = int(rng.integers(0, total - sample_size, endpoint=True))
    return Window(offset, sample_size, total)


def pad_crop(audio: np.ndarray, window: Window) -> np.ndarray:
    """Cut ``window`` out of ``audio`` ``[C, T]`` (with ``T == window.total``), zero-padded to
    ``[C, sample_size]``."""
    out = np.zeros((audio.shape[0], window.sample_size), dtype=np.float32)
    part = audio[:, window.offset: window.offset + window.sample_size]
    out[:, : part.shape[1]] = part
    return out


def is_silent(audio: np.ndarray | torch.Tensor, threshold_db: float = -60.0) -> bool:
    """True when the peak of ``audio`` is below ``threshold_db`` dBFS (the reference's ``is_silence``)."""
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().cpu().numpy()
    if audio.size == 0:
        return True
    peak = float(np.abs(audio).max())
    return peak <= 0.0 or 20.0 * math.log10(peak) < threshold_db
