"""Decode + resample throughput of the audio input layer, one worker (one process, one thread).

Generates its own inputs in a temporary folder (nothing is downloaded) and prints a Markdown table of
audio seconds decoded per wall-clock second:

- whole-file ``load_audio(path, 44100, 2)`` for 44.1/48/22.05 kHz stereo inputs in WAV, FLAC, MP3, OGG;
- a 30 s window (``load_window``) out of a 10-minute 48 kHz FLAC/WAV file, with and without seeking.

Usage: ``python benchmarks/decode_throughput.py [--seconds 60] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from preencode.audio import load_audio, load_window, window_rng

TARGET_SR = 44100
FORMATS = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "mp3": ("MP3", "MPEG_LAYER_III"),
           "ogg": ("OGG", "VORBIS")}
RATES = (44100, 48000, 22050)


def music_like(seconds: float, sr: int, seed: int = 0) -> np.ndarray:
    """A few drifting tones plus noise, ``[T, 2]`` (so lossy codecs have something to encode)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    sig = sum(0.1 * np.sin(2 * np.pi * f * t * (1 + 0.01 * np.sin(t))) for f in (110, 220, 445, 1230, 3100))
    left = sig + 0.02 * rng.standard_normal(t.size)
    right = np.roll(sig, 100) + 0.02 * rng.standard_normal(t.size)
    return np.stack([left, right], axis=1).astype(np.float32)


def write(path: Path, data: np.ndarray, sr: int, ext: str) -> None:
    """Write in blocks: libsndfile 1.2's MP3 encoder crashes on very large single writes."""
    fmt, subtype = FORMATS[ext]
    with sf.SoundFile(path, "w", sr, data.shape[1], subtype, format=fmt) as f:
        for start in range(0, len(data), 1 << 16):
            f.write(data[start:start + (1 << 16)])


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each whole-file input")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for sr in RATES:
            data = music_like(args.seconds, sr)
            for ext in FORMATS:
                path = root / f"in_{sr}.{ext}"
                write(path, data, sr, ext)
                load_audio(path, TARGET_SR, 2)  # warm up (filters, codecs)
                wall = best_time(lambda path=path: load_audio(path, TARGET_SR, 2), args.repeats)
                rows.append((f"{ext} {sr / 1000:g} kHz -> 44.1 kHz stereo, whole {args.seconds:g} s file",
                             args.seconds, wall))
        long = music_like(600, 48000, seed=1)
        for ext in ("flac", "wav"):
            path = root / f"long.{ext}"
            write(path, long, 48000, ext)
            for seek in (False, True):
                def crop(seek=seek, path=path):
                    load_window(path, sample_rate=TARGET_SR, channels=2, sample_size=30 * TARGET_SR,
                                random_crop=True, rng=window_rng(0, 1), seek=seek)
                crop()
                wall = best_time(crop, args.repeats)
                how = "seek" if seek else "decode all"
                rows.append((f"{ext} 48 kHz 10 min, 30 s window, {how}", 30.0, wall))
    print("| input | audio s | wall s | audio s per wall s |")
    print("|---|---:|---:|---:|")
    for name, audio_s, wall in rows:
        print(f"| {name} | {audio_s:g} | {wall:.3f} | {audio_s / wall:,.0f} |")


if __name__ == "__main__":
    main()
