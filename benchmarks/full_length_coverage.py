"""Coverage and throughput of ``--full-length`` against the default one-window-per-file mode.

Generates a few music-like files of 2 to 5 minutes (48 kHz stereo FLAC, so they are resampled to the
model's 44.1 kHz) in a temporary folder, encodes them with the bundled demo autoencoder (Stable Audio
Open's VAE layout, ratio 2048) in both modes with the default ``--sample-size`` (30 s), and prints:

- coverage: valid latent frames x downsampling ratio / the files' resampled length, in %;
- throughput: encoded audio seconds per wall second, raw and with the run's fixed cost (model load,
  trainer set-up, resume scan: the wall time of re-running the finished command, where every input is
  skipped) taken out; and the ratio full-length / default. So that both modes encode about as much audio
  (and first-batch warm-up weighs the same), the default mode reads each file through several symlinks.

Usage: ``python benchmarks/full_length_coverage.py [--minutes 2 3.5 5] [--num-workers 1] [--repeats 2]``
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from preencode.audio import resampled_length
from preencode.cli import main as cli_main

DEMO = Path(__file__).resolve().parents[1] / "preencode" / "demo"
SOURCE_SR = 48000
WINDOW = 1320960  # the default --sample-size


def music_like(seconds: float, sr: int, seed: int) -> np.ndarray:
    """Drifting chords with a beat and a little noise, ``[T, 2]`` float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    root = 110 * 2 ** (rng.integers(0, 12) / 12)
    sig = sum(0.12 * np.sin(2 * np.pi * root * m * t * (1 + 0.002 * np.sin(0.3 * t))) for m in (1, 1.25, 1.5, 2, 3))
    beat = 0.3 * np.exp(-((t * 2) % 1) * 12) * np.sin(2 * np.pi * 60 * t)
    left = sig + beat + 0.01 * rng.standard_normal(t.size)
    right = np.roll(sig, 37) + beat + 0.01 * rng.standard_normal(t.size)
    return np.clip(np.stack([left, right], axis=1), -1, 1).astype(np.float32)


def write_inputs(folder: Path, minutes: list[float]) -> int:
    """Write the files; returns their total length in samples at 44.1 kHz."""
    folder.mkdir(parents=True)
    total = 0
    for i, m in enumerate(minutes):
        data = music_like(m * 60, SOURCE_SR, seed=i)
        sf.write(folder / f"song_{i}.flac", data, SOURCE_SR, subtype="PCM_16")
        total += resampled_length(len(data), SOURCE_SR, 44100)
    return total


def encode(dataset: Path, out: Path, workers: int, *extra: str) -> float:
    argv = ["encode", "--model-config", str(DEMO / "tiny_vae.json"), "--ckpt-path", str(DEMO / "tiny_sao.safetensors"),
            "--dataset-config", str(dataset), "--output-path", str(out), "--num-workers", str(workers),
            "--accelerator", "cpu", "--progress", "none", *extra]
    start = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):
        code = cli_main(argv)
    if code != 0:
        raise SystemExit(f"encode failed with exit code {code}: {' '.join(argv)}")
    return time.perf_counter() - start


def valid_samples(out: Path, ratio: int) -> int:
    return sum(sum(json.loads(p.read_text())["padding_mask"]) * ratio for p in out.glob("*/*.json"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[2.0, 3.5, 5.0])
    parser.add_argument("--num-workers", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2, help="runs per mode, interleaved; the fastest counts")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    ratio, sr = 2048, 44100
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        total = write_inputs(root / "audio", args.minutes)
        copies = max(1, round(total / (len(args.minutes) * WINDOW)))
        copied = root / "copies"
        copied.mkdir()
        for path in sorted((root / "audio").iterdir()):
            for k in range(copies):
                (copied / f"{k}_{path.name}").symlink_to(path)
        rows: dict[str, tuple[int, float, float, int]] = {}
        for _ in range(args.repeats):  # interleaved, so that a busy spell of a shared machine hits both
            for mode, folder, extra in (("default", copied, ()), ("full-length", root / "audio", ("--full-length",))):
                dataset = root / f"{mode}.json"
                dataset.write_text(json.dumps({"dataset_type": "audio_dir", "random_crop": False,
                                               "datasets": [{"id": "songs", "path": str(folder)}]}))
                out = root / mode
                wall = encode(dataset, out, args.num_workers, "--overwrite", *extra)
                fixed = encode(dataset, out, args.num_workers, *extra)  # everything skipped: the fixed cost
                covered = valid_samples(out, ratio)
                if mode not in rows or wall < rows[mode][1]:
                    rows[mode] = (covered, wall, fixed, total * (copies if mode == "default" else 1))
        print(f"{len(args.minutes)} files, {total / sr / 60:.1f} min of audio, demo autoencoder, "
              f"--sample-size {WINDOW}, --num-workers {args.num_workers}; the default mode reads each file "
              f"{copies} times\n")
        print("| mode | coverage | audio s encoded | wall s | fixed s | audio s / wall s "
              "| audio s / (wall - fixed) s |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        speed = {}
        for mode, (covered, wall, fixed, length) in rows.items():
            seconds = covered / sr
            speed[mode] = (seconds / wall, seconds / max(wall - fixed, 1e-9))
            print(f"| {mode} | {100 * covered / length:.1f} % | {seconds:.0f} | {wall:.1f} | {fixed:.1f} | "
                  f"{speed[mode][0]:.1f} | {speed[mode][1]:.1f} |")
        print(f"\nthroughput ratio full-length / default: {speed['full-length'][0] / speed['default'][0]:.2f} raw, "
              f"{speed['full-length'][1] / speed['default'][1]:.2f} without the fixed cost")


if __name__ == "__main__":
    main()
