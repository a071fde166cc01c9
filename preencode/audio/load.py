"""Loading audio for pre-encoding: decode, check, resample, convert channels, window.

Order of operations matches the reference (resample the whole signal, then pad/crop, then clamp
each channel to [-1, 1], then convert channels). Two differences that do not change the result:
channels that are dropped (the first two of many are kept) are dropped before resampling, and a window of a long
file whose length is exact in its header is decoded by seeking (plus a margin for the resampling
filter) instead of decoding and resampling the whole file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .channels import convert_channels, reduce_channels
from .decode import AudioLoadError, AudioSource, decode, probe, source_name
from .resample import resample, resampled_length
from .windows import Window, choose_window, pad_crop

# Margin decoded on both sides of a seeked window so that the resampling filter sees the same
# neighbourhood as when the whole file is resampled (soxr HQ's filter is a few ms long).
_MARGIN_SECONDS = 0.05
# Seek only when the file is at least this many times longer than the window.
_SEEK_MIN_RATIO = 2


def check_samples(audio: np.ndarray, name: str) -> None:
    """Reject empty audio and NaN/Inf samples.

    Raises:
        AudioLoadError: no samples, or non-finite values.
    """
    if audio.size == 0:
        raise AudioLoadError(name, "file has no audio samples (0 frames)")
    if not np.isfinite(audio).all():
        bad = int((~np.isfinite(audio)).sum())
        raise AudioLoadError(name, f"contains {bad} NaN or infinite sample values")


def load_audio(path: AudioSource, sample_rate: int | None = None, channels: int | None = None,
               name: str | None = None) -> tuple[torch.Tensor, int]:
    """Decode a whole file.

    Args:
        path: a file path, or the bytes of a file.
        sample_rate: resample to this rate (None keeps the file's rate).
        channels: convert to this many channels (None keeps the file's channels).
        name: how the file is named in errors (defaults to the path).

    Returns:
        ``(audio, sr)``: float32 tensor ``[C, T]`` clamped to [-1, 1] and its sample rate.

    Raises:
        AudioLoadError: the file cannot be opened or decoded, is empty, holds NaN/Inf, or cannot be
            converted to ``channels`` (e.g. stereo to 6 channels).
    """
    name = source_name(path, name)
    audio, sr = decode(path, name=name)
    check_samples(audio, name)
    if channels is not None:
        audio = reduce_channels(audio, channels)
    if sample_rate is not None and sample_rate != sr:
        audio, sr = resample(audio, sr, sample_rate), sample_rate
    audio = np.clip(audio, -1.0, 1.0)
    if channels is not None:
        audio = _convert(audio, channels, name)
    return torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)), sr


@dataclass
class WindowedAudio:
    """One window of a file: ``audio`` float32 tensor ``[channels, sample_size]`` at ``sample_rate``."""

    audio: torch.Tensor
    window: Window
    sample_rate: int
    source_sample_rate: int
    source_channels: int
    seeked: bool


def load_window(source: AudioSource, *, sample_rate: int, channels: int, sample_size: int,
                random_crop: bool, rng: np.random.Generator | None, seek: bool = True,
                name: str | None = None) -> WindowedAudio:
    """Load the ``sample_size`` window of a file that the reference's pad/crop would pick.

    ``total`` (the resampled length of the whole file) decides the window; with ``seek`` and an
    exact header length only the window (plus a margin) is decoded and resampled; then only that
    part is checked for NaN/Inf.

    Raises:
        AudioLoadError: the file cannot be used (see :func:`load_audio`).
    """
    name = source_name(source, name)
    info = probe(source, name)
    # A header length of 0 can also mean "unknown" (streamed FLAC): such files are decoded whole.
    if seek and info.exact and info.frames:
        total = resampled_length(info.frames, info.sample_rate, sample_rate)
        if total >= _SEEK_MIN_RATIO * sample_size:
            window = choose_window(total, sample_size, random_crop, rng)
            audio = _decode_window(source, name, info.frames, info.sample_rate, sample_rate, window, channels)
            return _finish(audio, window, sample_rate, info.sample_rate, info.channels, channels, True, name)
    audio, sr = decode(source, name=name)
    check_samples(audio, name)
    source_channels = audio.shape[0]
    audio = reduce_channels(audio, channels)
    audio = resample(audio, sr, sample_rate)
    if audio.shape[1] == 0:
        raise AudioLoadError(name, f"shorter than one sample at {sample_rate} Hz")
    window = choose_window(audio.shape[1], sample_size, random_crop, rng)
    return _finish(pad_crop(audio, window), window, sample_rate, sr, source_channels, channels, False, name)


def _convert(audio: np.ndarray, channels: int, name: str) -> np.ndarray:
    try:
        return convert_channels(audio, channels)
    except ValueError as err:
        raise AudioLoadError(name, str(err)) from err


def _finish(chunk: np.ndarray, window: Window, sample_rate: int, source_rate: int, source_channels: int,
            channels: int, seeked: bool, name: str) -> WindowedAudio:
    chunk = _convert(np.clip(chunk, -1.0, 1.0), channels, name).astype(np.float32, copy=False)
    return WindowedAudio(torch.from_numpy(np.ascontiguousarray(chunk)), window, sample_rate, source_rate,
                         source_channels, seeked)


def _decode_window(source: AudioSource, name: str, frames: int, sr_in: int, sr_out: int, window: Window,
                   channels: int) -> np.ndarray:
    """Decode and resample only what ``window`` needs; returns ``[C, sample_size]`` (padded)."""
    g = math.gcd(sr_in, sr_out)
    step_in, step_out = sr_in // g, sr_out // g
    margin = 0 if sr_in == sr_out else math.ceil(_MARGIN_SECONDS * sr_out)
    # Start on a sample that exists on both grids so that the segment's resampled samples fall
    # exactly on the whole file's output grid.
    t0 = (max(0, window.offset - margin) // step_out) * step_out
    s0 = t0 // step_out * step_in
    t1 = min(window.total, window.offset + window.sample_size + margin)
    s1 = min(frames, math.ceil(t1 * sr_in / sr_out) + (0 if sr_in == sr_out else 1))
    audio, _ = decode(source, start=s0, frames=s1 - s0, name=name)
    check_samples(audio, name)
    if audio.shape[1] < s1 - s0:
        raise AudioLoadError(name, f"file is truncated: the header says {frames} frames, "
                                   f"decoding stopped after {s0 + audio.shape[1]}")
    audio = resample(reduce_channels(audio, channels), sr_in, sr_out)
    shifted = Window(window.offset - t0, window.sample_size, audio.shape[1])
    return pad_crop(audio, shifted)
