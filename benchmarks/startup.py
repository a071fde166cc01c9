"""Start-up: process wall time from command to exit for small jobs, ours beside the reference, and where our
start-up goes.

    python benchmarks/startup.py [--repeat 3] [--clips 100]
        [--reference-dir DIR --reference-python PYTHON [--reference-pythonpath PATHS]]

Model: the bundled demo autoencoder (Stable Audio Open's VAE structure, 6 base channels). Data: generated
44.1 kHz stereo FLAC clips: one of 3 s, and ``--clips`` of 0.5-8 s. Both commands get the same model weights
(the reference gets the autoencoder's tensors on their own: it would silently skip the wrapped checkpoint's
``pretransform.model.*`` names), window (``--sample-size 262144``), batch size (1 for the one clip: the
reference's loader drops an incomplete last batch, so with 4 it would encode nothing; 4 otherwise) and 2 loader
workers. Each job runs once to warm the file cache, then
``--repeat`` times; the minimum is reported (the machine is shared: watch ``uptime``). Reported: the process's
wall time from command to exit, its CPU time (user + system, loader workers included: on a machine shared with
other work it shows what the job itself costs, which the wall time of a crowded machine does not), and from
our ``--summary-json`` the time to the first encoded batch and the start-up / encoding split.

The breakdown runs each step in a fresh process (minimum of the repeats): the interpreter, ``import torch``,
``import lightning.pytorch``, building the model from its checkpoint, and compiling the fused SnakeBeta
(``torch.compile``, kernel cache warm) that ``--compile auto`` skips for jobs this small.

The reference (stable-audio-tools' ``pre_encode.py``) needs its own environment: pass the folder of its checkout
(``--reference-dir``, whose ``pre_encode.py`` is run; its Trainer must use ``accelerator="cpu"`` on a machine
without a GPU) and the Python to run it with.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from preencode.demo import DEMO_CKPT, DEMO_CONFIG

SR = 44100
COMMON = ["--sample-size", "262144", "--num-workers", "2"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

STEPS = {
    "python": "pass",
    "+ import torch": "import torch",
    "+ import lightning.pytorch": "import torch, lightning.pytorch",
}
MODEL_STEP = (
    "import time, torch, lightning.pytorch\n"
    "from preencode.models.checkpoint import load_autoencoder\n"
    "from preencode.encode.fast.encoder import compiled_snake\n"
    "t = time.monotonic(); load_autoencoder({config!r}, {ckpt!r}, device='cpu'); t1 = time.monotonic()\n"
    "compiled_snake(); t2 = time.monotonic()\n"
    "print(t1 - t, t2 - t1)\n"
)


def make_clips(folder: Path, count: int, low: float, high: float, seed: int) -> float:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    total = 0.0
    for i in range(count):
        seconds = float(rng.uniform(low, high)) if high > low else low
        t = np.arange(int(seconds * SR)) / SR
        tone = 0.2 * np.sin(2 * np.pi * rng.uniform(80, 1000) * t) + 0.01 * rng.standard_normal(t.size)
        sf.write(folder / f"{i:04d}.flac", np.stack([tone, tone[::-1]], axis=1).astype(np.float32), SR)
        total += seconds
    return total


def dataset(folder: Path) -> Path:
    path = folder.with_suffix(".dataset.json")
    path.write_text(json.dumps({"dataset_type": "audio_dir", "datasets": [{"id": "bench", "path": str(folder)}]}))
    return path


def timed(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> tuple[float, float]:
    """The command's wall time and CPU time (user + system, its child processes included), in seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:3]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def batch_args(folder: Path) -> list[str]:
    return ["--batch-size", "1" if len(list(folder.iterdir())) == 1 else "4"]


def reference_checkpoint(work: Path) -> Path:
    """The demo checkpoint's autoencoder tensors under the names a bare autoencoder has."""
    from safetensors.torch import load_file, save_file

    path = work / "reference_autoencoder.safetensors"
    if not path.exists():
        prefix = "pretransform.model."
        state = {k[len(prefix):]: v for k, v in load_file(str(DEMO_CKPT)).items() if k.startswith(prefix)}
        save_file(state, str(path))
    return path


def ours(folder: Path, work: Path, repeat: int) -> tuple[float, float, dict]:
    """Minimum process wall time, minimum CPU time, and the summary of the fastest run."""
    best: tuple[float, float, dict] = (float("inf"), float("inf"), {})
    for i in range(repeat + 1):  # the first run warms the file cache
        out, summary = work / f"ours-{folder.name}-{i}", work / f"ours-{folder.name}-{i}.json"
        wall, cpu = timed([sys.executable, "-m", "preencode", "encode", "--model-config", str(DEMO_CONFIG),
                      "--ckpt-path", str(DEMO_CKPT), "--dataset-config", str(dataset(folder)), "--output-path",
                      str(out), "--progress", "none", "--summary-json", str(summary), *COMMON, *batch_args(folder)],
                          ENV)
        if i:
            best = (min(wall, best[0]), min(cpu, best[1]),
                    json.loads(summary.read_text()) if wall < best[0] else best[2])
    return best


def reference(folder: Path, work: Path, repeat: int, args: argparse.Namespace) -> tuple[float, float]:
    """Minimum process wall time and minimum CPU time of stable-audio-tools' pre_encode.py."""
    env = {**os.environ, "PYTHONPATH": args.reference_pythonpath or str(args.reference_dir)}
    best = (float("inf"), float("inf"))
    for i in range(repeat + 1):
        out = work / f"ref-{folder.name}-{i}"
        wall, cpu = timed([args.reference_python, "pre_encode.py", "--model-config", str(DEMO_CONFIG), "--ckpt-path",
                      str(reference_checkpoint(work)), "--dataset-config", str(dataset(folder)), "--output-path",
                      str(out), *COMMON, *batch_args(folder)], env, cwd=args.reference_dir)
        if not any(out.rglob("*.npy")):
            raise SystemExit(f"the reference wrote no latent under {out}")
        if i:
            best = (min(best[0], wall), min(best[1], cpu))
    return best


def breakdown(repeat: int) -> list[tuple[str, float]]:
    rows = []
    for name, code in STEPS.items():
        rows.append((name, min(timed([sys.executable, "-c", code], ENV)[0] for _ in range(repeat + 1))))
    code = MODEL_STEP.format(config=str(DEMO_CONFIG), ckpt=str(DEMO_CKPT))
    runs = []
    for _ in range(repeat + 1):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, check=True)
        runs.append([float(v) for v in proc.stdout.split()])
    rows.append(("model build (load_autoencoder)", min(r[0] for r in runs)))
    rows.append(("compile SnakeBeta (warm cache; skipped here)", min(r[1] for r in runs[1:])))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clips", type=int, default=100)
    parser.add_argument("--reference-dir", type=Path, help="stable-audio-tools checkout whose pre_encode.py is run")
    parser.add_argument("--reference-python", default=sys.executable, help="the Python of its environment")
    parser.add_argument("--reference-pythonpath", help="PYTHONPATH for it (default: --reference-dir)")
    parser.add_argument("--no-breakdown", action="store_true", help="only the jobs, not where start-up goes")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="preencode-startup-"))
    jobs = {"1 clip of 3 s": (work / "one", make_clips(work / "one", 1, 3.0, 3.0, 1)),
            f"{args.clips} clips of 0.5-8 s": (work / "many", make_clips(work / "many", args.clips, 0.5, 8.0, 2))}
    print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs); minimum of {args.repeat} runs "
          "after a warm-up run\n")
    print("| job | audio s | ours: wall s (first batch at, start-up + encoding) | ours: CPU s | reference: wall s "
          "| reference: CPU s | wall ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, (folder, seconds) in jobs.items():
        wall, cpu, summary = ours(folder, work, args.repeat)
        detail = (f"{wall:.2f} ({summary['first_batch_seconds']:.2f}, {summary['startup_seconds']:.2f} + "
                  f"{summary['encoding_seconds']:.2f})")
        ref = reference(folder, work, args.repeat, args) if args.reference_dir else None
        ref_text = f"{ref[0]:.2f} | {ref[1]:.2f}" if ref else "- | -"
        ratio = f"{ref[0] / wall:.1f}x" if ref else "-"
        print(f"| {name} | {seconds:.1f} | {detail} | {cpu:.2f} | {ref_text} | {ratio} |", flush=True)
    if not args.no_breakdown:
        print("\n| start-up step (fresh process) | seconds |\n|---|---:|")
        for step, seconds in breakdown(args.repeat):
            print(f"| {step} | {seconds:.2f} |")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}; work folder: {work}")


if __name__ == "__main__":
    main()
