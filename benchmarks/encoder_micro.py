"""Encoder micro-benchmark: conv1d throughput of this machine, encoder efficiency, padding-skip speedup.

Uses Stable Audio Open's VAE structure scaled to ``--channels`` (32: mid-size) with random weights.

    python benchmarks/encoder_micro.py [--channels 32] [--seconds 4] [--window-seconds 10]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flops import (
    encoder_gflops_per_second_of_audio,
    measure_conv1d_gflops,
)

from preencode.encode.fast.encoder import optimize_for_inference, set_cpu_threads
from preencode.encode.fast.padding import PaddingSkipper
from preencode.models.factory import build_autoencoder

CONFIG = ROOT.parent / "shared" / "spec" / "stable_audio_open_vae_config.json"
if not CONFIG.exists():
    CONFIG = ROOT / "shared" / "spec" / "stable_audio_open_vae_config.json"


def sao_structure(channels: int) -> dict:
    cfg = json.loads(CONFIG.read_text())
    for part in ("encoder", "decoder"):
        cfg["model"][part]["config"]["channels"] = channels
    return cfg


def timed(fn, repeats: int) -> float:
    """Best of ``repeats`` wall times (the least disturbed by other processes)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=4.0, help="audio length for the efficiency runs")
    parser.add_argument("--window-seconds", type=float, default=10.0, help="window for the padding-skip runs")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    torch.manual_seed(0)
    threads = set_cpu_threads()
    print(f"threads: {threads}, load average: {os.getloadavg()[0]:.1f} (other processes skew the numbers)")
    shapes = ((128, 7), (256, 7), (512, 7))
    conv = {f"{c}ch k={k}": measure_conv1d_gflops(channels=c, kernel=k) for c, k in shapes}
    conv_cl = {f"{c}ch k={k}": measure_conv1d_gflops(channels=c, kernel=k, channels_last=True) for c, k in shapes}
    peak_conv = max(conv.values())
    print("conv1d GFLOP/s (fp32, F.conv1d):              " + ", ".join(f"{k} {v:.1f}" for k, v in conv.items()))
    print("same convs as channels-last conv2d, GFLOP/s:  " + ", ".join(f"{k} {v:.1f}" for k, v in conv_cl.items()))
    print(f"efficiency below = achieved / best F.conv1d ({peak_conv:.1f} GFLOP/s)")

    plain = build_autoencoder(sao_structure(args.channels)).eval().requires_grad_(False).fold_weight_norm()
    rate, hop = plain.sample_rate, plain.downsampling_ratio
    per_second = encoder_gflops_per_second_of_audio(plain.config.encoder, rate)
    variants = {"plain": plain,
                "fast (eager)": optimize_for_inference(copy.deepcopy(plain), compile=False),
                "fast (compiled)": optimize_for_inference(copy.deepcopy(plain), compile="auto")}
    samples = max(hop, round(args.seconds * rate / hop) * hop)
    audio = torch.randn(1, 2, samples) * 0.1
    gflop = per_second * samples / rate
    print(f"\nencoder (SAO structure, channels {args.channels}): {per_second:.2f} GFLOP per audio second; "
          f"{samples / rate:.2f} s of stereo audio")
    times = {}
    with torch.inference_mode():
        for name, model in variants.items():
            model.encode_pre_bottleneck(audio[:, :, :hop * 32])  # warm-up (compilation)
            times[name] = timed(lambda m=model: m.encode_pre_bottleneck(audio), args.repeats)
            achieved = gflop / times[name]
            print(f"  {name:16s} {times[name]:7.3f} s  {achieved:6.1f} GFLOP/s  "
                  f"efficiency {achieved / peak_conv:5.1%}  "
                  f"speedup {times['plain'] / times[name]:4.2f}x  realtime x{samples / rate / times[name]:.1f}")

    fast = variants["fast (compiled)"]
    window = max(hop, round(args.window_seconds * rate / hop) * hop)
    skipper = PaddingSkipper(fast)
    print(f"\npadding skip (fast compiled encoder, window {window / rate:.1f} s, batch 1):")
    with torch.inference_mode():
        full = timed(lambda: fast.encode_pre_bottleneck(torch.zeros(1, 2, window)), args.repeats)
        skipper.zero_window(window, fast.dtype, torch.device("cpu"))
        for fraction in (0.05, 0.5, 0.95):
            n = int(window * fraction)
            batch = torch.zeros(1, 2, window)
            batch[:, :, :n] = torch.randn(1, 2, n) * 0.1
            skipper.encode_pre_bottleneck(batch, [n])  # warm-up (a new input length)
            t = timed(lambda b=batch, n=n: skipper.encode_pre_bottleneck(b, [n]), args.repeats)
            encoded = skipper.encode_length(n, window)
            print(f"  content {fraction:4.0%}: {t:6.3f} s vs full window {full:6.3f} s -> {full / t:4.2f}x "
                  f"(encodes {encoded / window:.0%} of the window)")


if __name__ == "__main__":
    main()
