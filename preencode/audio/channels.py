"""Channel conversion, matching the reference's ``Stereo`` and ``Mono`` transforms."""

from __future__ import annotations

import numpy as np


def convert_channels(audio: np.ndarray, channels: int) -> np.ndarray:
    """Convert ``[C, T]`` to ``[channels, T]``.

    - ``channels == C``: unchanged.
    - ``channels == 1``: the mean of all channels.
    - ``C == 1``: the mono channel repeated (mono to stereo).
    - ``C > channels``: the first ``channels`` channels (e.g. 5.1 to stereo keeps front left/right).

    Raises:
        ValueError: ``channels`` < 1, ``audio`` is not 2-D, or the case is ambiguous (e.g. 2 -> 6).
    """
    if audio.ndim != 2:
        raise ValueError(f"expected audio [C, T], got shape {tuple(audio.shape)}")
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")
    have = audio.shape[0]
    if have == channels:
        return audio
    if channels == 1:
        return audio.mean(axis=0, keepdims=True, dtype=np.float32)
    if have == 1:
        return np.repeat(audio, channels, axis=0)
    if have > channels:
        return audio[:channels]
    raise ValueError(f"cannot convert {have}-channel audio to {channels} channels")


def reduce_channels(audio: np.ndarray, channels: int) -> np.ndarray:
    """Drop the channels that :func:`convert_channels` would drop (the first ``channels`` of more), else
    unchanged.

    Applied before resampling so that dropped channels are not resampled. A mono target keeps every
    channel here: the reference clamps each channel to [-1, 1] before averaging, so averaging must
    wait until after the clamp.
    """
    have = audio.shape[0]
    if channels > 1 and have > channels:
        return audio[:channels]
    return audio
