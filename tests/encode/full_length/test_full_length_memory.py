"""``--full-length`` on a 20-minute file: peak memory stays far below the whole file's activations."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from preencode.encode.full_length.chunks import chunk_margin
from preencode.models.config import parse_autoencoder_config
from preencode.models.factory import build_autoencoder
from tests.helpers import randomized, save_ckpt, tiny_config, write_json

SR = 8000
MINUTES = 20
CHUNK = 256 * 938  # --sample-size: 30 s (rounded to the ratio)

_ENCODE = """
import json, resource, sys
import lightning.pytorch, torch, soxr, soundfile  # imported before the baseline is taken
import preencode.encode.engine.run, preencode.encode.full_length.stream, preencode.data.plan
from preencode.cli import main
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
code = main(sys.argv[1:])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"code": code, "baseline_kib": before, "peak_kib": after}))
"""


def _model_config() -> dict:
    """Mono, ratio 256, 4 channels at the audio rate: cheap enough for a 20-minute file on a CPU."""
    cfg = tiny_config(channels=1, latent_dim=8, sample_rate=SR, use_snake=False)
    for part in ("encoder", "decoder"):
        cfg["model"][part]["config"].update(channels=4, c_mults=[1, 2, 4], strides=[4, 8, 8])
    cfg["model"]["downsampling_ratio"] = 256
    return cfg


def whole_file_activation_bytes(model: torch.nn.Module, samples: int) -> int:
    """Sum over the encoder's layers of channels x length x 4 bytes, for one pass over ``samples``
    (measured on a short input with forward hooks and scaled: every length is proportional)."""
    probe_len = 256 * 64
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        total += output.numel()

    leaves = [m for m in model.encoder.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    with torch.inference_mode():
        model.encode_pre_bottleneck(torch.zeros(1, 1, probe_len))
    for h in handles:
        h.remove()
    return total * 4 * samples // probe_len


def _write_long_file(path: Path, samples: int) -> None:
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", SR, 1, subtype="PCM_16") as f:
        for start in range(0, samples, SR * 60):
            t = np.arange(start, min(samples, start + SR * 60)) / SR
            f.write((0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32))


def test_twenty_minute_file_streams_in_bounded_memory(tmp_path):
    cfg = _model_config()
    model = randomized(build_autoencoder(cfg), seed=1)
    audio = tmp_path / "audio"
    audio.mkdir()
    samples = MINUTES * 60 * SR
    _write_long_file(audio / "long.wav", samples)
    argv = ["encode", "--model-config", str(write_json(tmp_path / "c.json", cfg)),
            "--ckpt-path", str(save_ckpt(model, tmp_path / "m.ckpt")),
            "--dataset-config", str(write_json(tmp_path / "d.json", {
                "dataset_type": "audio_dir", "datasets": [{"id": "a", "path": str(audio)}], "random_crop": False})),
            "--output-path", str(tmp_path / "out"), "--sample-size", str(CHUNK), "--num-workers", "0",
            "--accelerator", "cpu", "--progress", "none", "--full-length", "--posterior", "mean"]
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run([sys.executable, "-c", _ENCODE, *argv], capture_output=True, text=True, cwd=root,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    stats = json.loads(done.stdout.strip().splitlines()[-1])
    assert stats["code"] == 0, done.stderr[-3000:]
    latent = np.load(tmp_path / "out" / "0" / "0000000000000.npy")
    assert latent.shape == (8, samples // 256)
    grown = (stats["peak_kib"] - stats["baseline_kib"]) * 1024
    whole = whole_file_activation_bytes(model, samples)
    chunk = whole * (CHUNK + 2 * chunk_margin(parse_autoencoder_config(cfg))) // samples
    print(f"\n20-min file: whole-file activations {whole / 2**20:.0f} MiB, one chunk's {chunk / 2**20:.0f} MiB; "
          f"encode grew peak RSS by {grown / 2**20:.0f} MiB (baseline {stats['baseline_kib'] / 1024:.0f} MiB, "
          f"peak {stats['peak_kib'] / 1024:.0f} MiB); {done.stderr.strip().splitlines()[-1]}")
    assert grown < whole / 10
    assert grown < chunk + 100 * 2**20  # one chunk's activations plus the model, trainer and buffers
