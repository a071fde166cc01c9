"""Training throughput and peak memory: pre-encoded latents vs encoding audio on the fly (same model, same data).

    PYTHONPATH=. python3 benchmarks/train_throughput.py [--steps 30] [--clips 32] [--seconds 6] [--batch-size 4]
        [--vae-channels 32] [--embed-dim 256] [--depth 4] [--num-workers 2] [--summary-json out.json]

A small Stable Audio Open-shaped model (the bundled demo model's layout: 44.1 kHz stereo, the Oobleck VAE
with ratio 2048 as pretransform, t5 prompt + seconds conditioning, a DiT; widths from the flags, seeded random
weights) is fine-tuned from its weights with ``preencode train``'s code, once on latents pre-encoded
beforehand (posterior mean) and once with ``pre_encoded: false`` (the same windows encoded in every step).
Each mode runs in its own process, so its peak RSS is its own; timing starts after a few warm-up steps.
The one-off pre-encoding time is reported too.
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
import torch

ROOT = Path(__file__).resolve().parents[1]
WARMUP = 3


def model_config(vae_channels: int, embed_dim: int, depth: int, sample_size: int, pre_encoded: bool) -> dict:
    from preencode.demo.finetune import demo_model_config

    cfg = demo_model_config()
    cfg["sample_size"] = sample_size
    for part in ("encoder", "decoder"):
        cfg["model"]["pretransform"]["config"][part]["config"]["channels"] = vae_channels
    dit = cfg["model"]["diffusion"]["config"]
    dit.update(embed_dim=embed_dim, depth=depth, num_heads=max(embed_dim // 32, 1))  # 32-wide heads, like the T5
    cfg["training"]["pre_encoded"] = pre_encoded
    return cfg


def run_mode(work: Path, mode: str, steps: int, batch_size: int, num_workers: int) -> dict:
    """One training run in this process; returns steps/s and peak RSS."""
    import lightning as L

    from preencode.train.run import TrainOptions, train

    class StepTimer(L.Callback):
        def __init__(self) -> None:
            self.start, self.end, self.steps = 0.0, 0.0, 0

        def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
            if trainer.global_step == WARMUP:
                self.start = time.perf_counter()
            elif trainer.global_step > WARMUP:
                self.end, self.steps = time.perf_counter(), trainer.global_step - WARMUP

    timer = StepTimer()
    train(TrainOptions(model_config=str(work / f"model_{mode}.json"), dataset_config=str(work / f"data_{mode}.json"),
                       save_dir=str(work / f"run_{mode}"), pretrained_ckpt_path=str(work / "model.safetensors"),
                       batch_size=batch_size, num_workers=num_workers, max_steps=steps + WARMUP, logger="none",
                       checkpoint_every=10 ** 9), callbacks=[timer])
    return {"steps_per_s": timer.steps / (timer.end - timer.start),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def prepare(work: Path, args: argparse.Namespace) -> dict:
    """Audio, model files, latents and configs; returns facts for the summary."""
    from safetensors.torch import save_file

    from preencode.models.diffusion import build_diffusion_model

    rate, ratio = 44100, 2048
    sample_size = int(args.seconds * rate) // ratio * ratio
    pre_cfg = model_config(args.vae_channels, args.embed_dim, args.depth, sample_size, True)
    otf_cfg = model_config(args.vae_channels, args.embed_dim, args.depth, sample_size, False)
    (work / "model_pre.json").write_text(json.dumps(pre_cfg))
    (work / "model_otf.json").write_text(json.dumps(otf_cfg))
    torch.manual_seed(0)
    model = build_diffusion_model(pre_cfg)
    pretransform = model.pretransform
    if pretransform is None:
        raise SystemExit("the benchmark model needs a pretransform")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(work / "model.safetensors"))
    audio_dir, latent_dir = work / "audio", work / "latents" / "0"
    audio_dir.mkdir()
    latent_dir.mkdir(parents=True)
    rng = np.random.default_rng(0)
    t = np.arange(sample_size) / rate
    encode_seconds = 0.0
    for i in range(args.clips):
        clip = 0.3 * np.sin(2 * np.pi * rng.uniform(80, 2000) * t)[:, None] * np.array([1.0, 0.7])
        clip = (clip + 0.02 * rng.standard_normal(clip.shape)).astype(np.float32)
        sf.write(audio_dir / f"{i:05d}.wav", clip, rate, subtype="FLOAT")
        start = time.perf_counter()
        with torch.no_grad():
            latent = pretransform.model.encode(torch.from_numpy(clip.T.copy())[None], posterior="mean")[0]
        encode_seconds += time.perf_counter() - start
        np.save(latent_dir / f"{i:013d}.npy", latent.numpy())
        (latent_dir / f"{i:013d}.json").write_text(json.dumps({
            "padding_mask": [1] * latent.shape[-1], "seconds_start": 0.0, "seconds_total": args.seconds,
            "prompt": "a warm major chord on a soft synth pad", "relpath": f"{i:05d}.wav"}))
    frames = sample_size // ratio
    prompts = ROOT / "preencode" / "demo" / "prompts.py"
    (work / "data_pre.json").write_text(json.dumps({
        "dataset_type": "pre_encoded", "datasets": [{"id": "l", "path": str(work / "latents")}],
        "latent_crop_length": frames, "drop_last": True}))
    (work / "data_otf.json").write_text(json.dumps({
        "dataset_type": "audio_dir", "random_crop": False, "drop_last": True,
        "datasets": [{"id": "a", "path": str(audio_dir), "custom_metadata_module": str(prompts)}]}))
    params = sum(p.numel() for p in model.model.parameters())
    vae_params = sum(p.numel() for p in pretransform.parameters())
    return {"sample_size": sample_size, "frames": frames, "dit_params": params, "vae_params": vae_params,
            "pre_encoding_s_per_clip": encode_seconds / args.clips}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--clips", type=int, default=32)
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--vae-channels", type=int, default=32, help="Oobleck base channels (Stable Audio Open: 128)")
    p.add_argument("--embed-dim", type=int, default=256, help="DiT width (Stable Audio Open: 1536)")
    p.add_argument("--depth", type=int, default=4, help="DiT blocks (Stable Audio Open: 24)")
    p.add_argument("--num-workers", type=int, default=2)
    p.add_argument("--modes", default="pre,otf", help="which runs: pre (pre-encoded), otf (on the fly)")
    p.add_argument("--summary-json", default=None)
    p.add_argument("--run-mode", choices=["pre", "otf"], help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.run_mode:  # a child process: one mode
        print(json.dumps(run_mode(Path(args.work), args.run_mode, args.steps, args.batch_size, args.num_workers)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        facts = prepare(work, args)
        results = {}
        for mode in args.modes.split(","):
            cmd = [sys.executable, __file__, "--run-mode", mode, "--work", str(work), "--steps", str(args.steps),
                   "--batch-size", str(args.batch_size), "--num-workers", str(args.num_workers)]
            env = dict(os.environ, PYTHONPATH=str(ROOT))
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
            if proc.returncode:
                sys.exit(proc.stderr[-3000:])
            results[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    summary = {"device": f"cpu ({torch.get_num_threads()} threads)", "batch_size": args.batch_size,
               "timed_steps": args.steps, **facts, **results}
    if "pre" in results and "otf" in results:
        summary["speedup"] = results["pre"]["steps_per_s"] / results["otf"]["steps_per_s"]
    print(f"model: DiT {facts['dit_params'] / 1e6:.2f} M params (embed {args.embed_dim}, depth {args.depth}), "
          f"VAE {facts['vae_params'] / 1e6:.2f} M params (channels {args.vae_channels}); batch {args.batch_size} x "
          f"{facts['sample_size']} samples ({facts['frames']} latent frames); {args.steps} timed steps")
    for mode, name in (("pre", "pre-encoded"), ("otf", "on the fly")):
        if mode in results:
            r = results[mode]
            print(f"{name:12s}: {r['steps_per_s']:7.3f} steps/s   peak RSS {r['peak_rss_mb']:7.0f} MB")
    if "speedup" in summary:
        print(f"speed-up (pre-encoded / on the fly): {summary['speedup']:.2f}x")
    print(f"pre-encoding cost, once: {facts['pre_encoding_s_per_clip']:.2f} s per clip")
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
