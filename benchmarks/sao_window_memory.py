"""Peak memory (RSS) and wall time of encoding one 30 s window with Stable Audio Open's VAE on CPU.

Random weights, batch size 1, sample_size 1320960, torch.inference_mode. Each mode runs in its own
subprocess so that its peak RSS (getrusage maxrss) is its own. The reference needs 77 s and 5.4 GB
on a 2-core machine. CPU seconds are printed too: on a shared machine wall time depends on the
other processes, CPU time divided by the threads much less.

    python benchmarks/sao_window_memory.py [--modes plain,fast] [--seconds 30] [--content 1.0]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT.parent / "shared" / "spec" / "stable_audio_open_vae_config.json"
if not CONFIG.exists():
    CONFIG = ROOT / "shared" / "spec" / "stable_audio_open_vae_config.json"


def run_one(mode: str, samples: int, content: float) -> dict:
    sys.path.insert(0, str(ROOT))
    import torch

    from preencode.encode.fast.encoder import optimize_for_inference
    from preencode.encode.fast.padding import PaddingSkipper
    from preencode.models.factory import build_autoencoder

    if mode == "fast-heap":
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-4, 0)  # M_MMAP_MAX
        libc.mallopt(-1, 1 << 40)  # M_TRIM_THRESHOLD
    model = build_autoencoder(CONFIG).eval().requires_grad_(False).fold_weight_norm()
    if mode != "plain":
        optimize_for_inference(model, compile="auto")
    n = int(samples * content)
    audio = torch.zeros(1, 2, samples)
    audio[:, :, :n] = torch.randn(1, 2, n) * 0.1
    usage = resource.getrusage(resource.RUSAGE_SELF)
    base, faults, cpu = usage.ru_maxrss, usage.ru_minflt, usage.ru_utime + usage.ru_stime
    with torch.inference_mode():
        if mode != "plain":  # warm the compiled kernels on a short input (not timed)
            model.encode_pre_bottleneck(audio[:, :, :2048 * 16])
        start = time.perf_counter()
        if mode == "skip":
            out = PaddingSkipper(model).encode_pre_bottleneck(audio, [n])
        else:
            out = model.encode_pre_bottleneck(audio)
        wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak, faults = usage.ru_maxrss, usage.ru_minflt - faults
    cpu = usage.ru_utime + usage.ru_stime - cpu
    return {"mode": mode, "samples": samples, "content": content, "wall_s": wall,
            "peak_rss_gb": peak * 1024 / 1e9, "rss_before_encode_gb": base * 1024 / 1e9,
            "threads": torch.get_num_threads(), "frames": out.shape[-1], "page_faults": faults, "cpu_s": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="fast,plain",
                        help="comma list of plain, fast, skip, fast-heap (fast with glibc mmap disabled)")
    parser.add_argument("--samples", type=int, default=1320960)
    parser.add_argument("--content", type=float, default=1.0, help="fraction of the window that is audio")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child, args.samples, args.content)))
        return
    for mode in args.modes.split(","):
        out = subprocess.run([sys.executable, __file__, "--child", mode, "--samples", str(args.samples),
                              "--content", str(args.content)], capture_output=True, text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{mode:>9}: {result['wall_s']:.1f} s wall, {result['cpu_s']:.1f} CPU-s "
              f"(= {result['cpu_s'] / result['threads']:.1f} s on {result['threads']} idle cores), "
              f"peak RSS {result['peak_rss_gb']:.2f} GB "
              f"(model loaded: {result['rss_before_encode_gb']:.2f} GB), {result['threads']} threads, "
              f"content {args.content:.0%}, {result['page_faults'] / 1e6:.1f}M page faults")


if __name__ == "__main__":
    main()
