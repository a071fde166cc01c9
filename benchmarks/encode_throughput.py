"""End-to-end encode throughput: spec-equivalent full windows (--no-skip-padding) vs the default mode.

Generates (or takes) (a) a folder of 0.5-8 s clips and (b) a folder of 2-5 minute files, encodes both
with a mid-size Oobleck autoencoder (Stable Audio Open's VAE structure with ``--channels 32``, seeded
random weights) through the real CLI, once per mode, on this machine in one run, and prints audio
seconds per wall second, the realtime factor, the encoder GFLOP/s achieved next to this machine's
measured conv1d GFLOP/s, the peak memory, and the ratios.

    python benchmarks/encode_throughput.py [--clips 40] [--long 3] [--channels 32] [--batch-size 4]

Optionally ``--reference-cmd 'python /path/to/stable-audio-tools/pre_encode.py'`` runs the reference
command on the same data, model and window (it must accept the spec's flags) for a side-by-side number.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flops import encoder_gflops_per_second_of_audio, measure_conv1d_gflops

from preencode.models.config import parse_autoencoder_config
from preencode.models.factory import build_autoencoder

SR = 44100


def sao_structure(channels: int) -> dict:
    """Stable Audio Open's VAE config with ``channels`` base channels."""
    coder = {"channels": channels, "c_mults": [1, 2, 4, 8, 16], "strides": [2, 4, 4, 8, 8], "use_snake": True}
    return {
        "model_type": "autoencoder", "sample_rate": SR, "audio_channels": 2,
        "model": {
            "encoder": {"type": "oobleck", "config": {**coder, "in_channels": 2, "latent_dim": 128}},
            "decoder": {"type": "oobleck", "config": {**coder, "out_channels": 2, "latent_dim": 64,
                                                       "final_tanh": False}},
            "bottleneck": {"type": "vae"}, "latent_dim": 64, "downsampling_ratio": 2048, "io_channels": 2,
        },
    }


def music_like(seconds: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    notes = rng.uniform(80, 1200, size=4)
    sig = sum(np.sin(2 * np.pi * f * t) * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.1, 2) * t)) for f in notes)
    sig = 0.15 * sig + 0.02 * rng.standard_normal(t.size)
    return np.stack([sig, np.roll(sig, 11)], axis=1).astype(np.float32)


def make_folder(folder: Path, count: int, low: float, high: float, seed: int) -> float:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    total = 0.0
    for i in range(count):
        seconds = float(rng.uniform(low, high))
        sf.write(folder / f"{i:04d}.flac", music_like(seconds, rng), SR)
        total += seconds
    return total


def folder_seconds(folder: Path) -> float:
    return sum(sf.info(p).duration for p in folder.rglob("*") if p.suffix.lower() in (".wav", ".flac"))


def run_measured(cmd: list[str]) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in GB of the process tree's largest member, exit code)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 3):
        print(proc.stderr.read()[-2000:], file=sys.stderr)
    return wall, usage.ru_maxrss / 1e6, code


def encode(config: Path, ckpt: Path, folder: Path, out: Path, args: argparse.Namespace, extra: list[str]) -> dict:
    dataset = out.with_suffix(".dataset.json")
    dataset.write_text(json.dumps({"dataset_type": "audio_dir", "random_crop": False,
                                   "datasets": [{"id": "bench", "path": str(folder)}]}))
    summary = out.with_suffix(".summary.json")
    cmd = [sys.executable, "-m", "preencode", "encode", "--model-config", str(config), "--ckpt-path", str(ckpt),
           "--dataset-config", str(dataset), "--output-path", str(out), "--sample-size", str(args.sample_size),
           "--batch-size", str(args.batch_size), "--num-workers", str(args.workers), "--posterior", "mean",
           "--progress", "none", "--summary-json", str(summary), *extra]
    wall, peak, code = run_measured(cmd)
    result = json.loads(summary.read_text()) if summary.exists() else {}
    result.update(wall=wall, peak_gb=peak, code=code)
    return result


def max_latent_diff(a: Path, b: Path) -> float:
    """Largest absolute difference between the same ids' latents of two output folders."""
    left = {p.name: p for p in a.glob("*/*.npy")}
    right = {p.name: p for p in b.glob("*/*.npy")}
    if left.keys() != right.keys():
        raise SystemExit(f"{a} and {b} hold different ids")
    return max((float(np.abs(np.load(left[k]) - np.load(right[k])).max()) for k in left), default=0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=100, help="number of 0.5-8 s clips to generate")
    parser.add_argument("--long", type=int, default=3, help="number of 2-5 minute files to generate")
    parser.add_argument("--clips-dir", type=Path, help="use this folder of short clips instead")
    parser.add_argument("--long-dir", type=Path, help="use this folder of long files instead")
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--sample-size", type=int, default=1320960)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reference-cmd", help="command running the reference pre_encode.py (optional)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="preencode-bench-"))
    cfg = sao_structure(args.channels)
    config = work / "model.json"
    config.write_text(json.dumps(cfg))
    torch.manual_seed(0)
    model = build_autoencoder(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("alpha", "beta")):
                p.normal_(0, 0.2)
    ckpt = work / "model.ckpt"
    torch.save({"state_dict": model.state_dict()}, ckpt)
    gflops_per_audio_s = encoder_gflops_per_second_of_audio(parse_autoencoder_config(cfg).encoder, SR)

    datasets = {}
    if args.clips_dir:
        datasets["(a) short clips"] = (args.clips_dir, folder_seconds(args.clips_dir))
    else:
        datasets["(a) short clips"] = (work / "clips", make_folder(work / "clips", args.clips, 0.5, 8.0, 1))
    if args.long_dir:
        datasets["(b) long files"] = (args.long_dir, folder_seconds(args.long_dir))
    else:
        datasets["(b) long files"] = (work / "long", make_folder(work / "long", args.long, 120, 300, 2))

    # Warm-up: the first compile of the fused SnakeBeta is cached by torch's inductor for later runs.
    warm = work / "warm"
    make_folder(warm, 1, 1.0, 1.0, 3)
    encode(config, ckpt, warm, work / "warm_out", args, [])
    conv = measure_conv1d_gflops(channels=256, length=16384, kernel=7)
    window_s = args.sample_size / SR
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"conv1d (256 ch, k=7) {conv:.1f} GFLOP/s")
    print(f"model: SAO structure, channels {args.channels}: {gflops_per_audio_s:.2f} GFLOP per audio second; "
          f"window {args.sample_size} samples ({window_s:.1f} s), batch {args.batch_size}, {args.workers} workers\n")
    header = (f"{'data':<16} {'mode':<17} {'files':>5} {'audio s':>8} {'wall s':>7} {'audio s/s = xRT':>15} "
              f"{'enc GFLOP/s':>11} {'% conv1d':>8} {'peak GB':>7}")
    print(header)
    print("-" * len(header))
    for name, (folder, _) in datasets.items():
        rates = {}
        for mode, extra in (("--no-skip-padding", ["--no-skip-padding"]), ("default", [])):
            r = encode(config, ckpt, folder, work / f"out_{name[1]}_{mode.strip('-')}", args, extra)
            audio_s = r.get("audio_hours", 0) * 3600
            windows_s = r.get("encoded", 0) * window_s
            computed = windows_s * (1 - r.get("padding_skipped", 0.0))
            gflops = computed * gflops_per_audio_s / max(r.get("predict_seconds", r["wall"]), 1e-9)
            rate = audio_s / r["wall"]
            rates[mode] = rate
            print(f"{name:<16} {mode:<17} {r.get('encoded', 0):>5} {audio_s:>8.1f} {r['wall']:>7.1f} {rate:>15.2f} "
                  f"{gflops:>11.1f} {100 * gflops / conv:>7.0f}% {r['peak_gb']:>7.2f}")
        diff = max_latent_diff(work / f"out_{name[1]}_default", work / f"out_{name[1]}_no-skip-padding")
        print(f"{'':<16} default / --no-skip-padding: {rates['default'] / rates['--no-skip-padding']:.2f}x, "
              f"latents max |diff| {diff:.2e} (posterior mean)\n")
        if args.reference_cmd:
            dataset = work / f"out_{name[1]}_no-skip-padding.dataset.json"
            cmd = shlex.split(args.reference_cmd) + [
                "--model-config", str(config), "--ckpt-path", str(ckpt), "--dataset-config", str(dataset),
                "--output-path", str(work / f"ref_{name[1]}"), "--sample-size", str(args.sample_size),
                "--batch-size", str(args.batch_size), "--num-workers", str(max(args.workers, 1))]
            wall, peak, code = run_measured(cmd)
            ours = rates["default"]
            total = sum(min(sf.info(p).duration, window_s) for p in folder.rglob("*.flac"))
            print(f"{name:<16} reference        wall {wall:.1f} s, {total / wall:.2f} audio s/s, peak {peak:.2f} GB, "
                  f"exit {code}; ours (default) is {ours / (total / wall):.2f}x faster\n")
    print(f"(work folder: {work})")


if __name__ == "__main__":
    main()
