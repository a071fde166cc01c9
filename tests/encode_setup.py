"""Fixtures for encode tests: real audio files, a tiny autoencoder checkpoint, and a deeper tiny model (hop 32)
whose receptive field spans many frames."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from preencode.models.factory import build_autoencoder
from tests.helpers import randomized, save_ckpt, tiny_config, with_change, write_json

SR = 16000
SAMPLE_SIZE = 256  # 32 latent frames of the tiny model (ratio 8)


def write_clips(folder: Path, lengths: list[int], channels: list[int] | None = None, sr: int = SR) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i, n in enumerate(lengths):
        ch = channels[i] if channels else 2
        data = (0.3 * rng.standard_normal((n, ch))).astype(np.float32)
        path = folder / f"clip_{i:03d}.wav"
        sf.write(path, data, sr, subtype="FLOAT")
        paths.append(path)
    return paths


@pytest.fixture
def model_files(tmp_path):
    """(config path, checkpoint path, model) of a tiny stereo VAE at 16 kHz."""
    model = randomized(build_autoencoder(tiny_config(sample_rate=SR)), seed=3)
    return (write_json(tmp_path / "vae_config.json", tiny_config(sample_rate=SR)),
            save_ckpt(model, tmp_path / "vae_model.ckpt"), model)


def dataset_config(tmp_path: Path, folder: Path, **extra) -> Path:
    cfg = {"dataset_type": "audio_dir", "datasets": [{"id": "clips", "path": str(folder)}],
           "random_crop": False, "drop_last": False, **extra}
    return write_json(tmp_path / "dataset.json", cfg)


@pytest.fixture
def clips(tmp_path):
    """Seven clips, shorter, equal to and longer than the window, mono and stereo."""
    lengths = [100, 256, 400, 37, 1000, 255, 180]
    channels = [2, 1, 2, 2, 1, 2, 2]
    folder = tmp_path / "audio"
    write_clips(folder, lengths, channels)
    return folder, dataset_config(tmp_path, folder)


def encode_args(model_files, dataset_cfg: Path, out: Path, *extra: str) -> list[str]:
    config, ckpt, _ = model_files
    return ["encode", "--model-config", str(config), "--ckpt-path", str(ckpt), "--dataset-config", str(dataset_cfg),
            "--output-path", str(out), "--sample-size", str(SAMPLE_SIZE), "--num-workers", "0",
            "--accelerator", "cpu", "--progress", "none", "--compile", "off", *extra]


def read_output(out: Path) -> dict[str, tuple[np.ndarray, dict]]:
    """{id: (latent, metadata)} over every rank folder."""
    result = {}
    for npy in sorted(out.glob("*/*.npy")):
        assert npy.stem not in result, f"duplicate id {npy.stem}"
        result[npy.stem] = (np.load(npy), json.loads(npy.with_suffix(".json").read_text()))
    return result


def deep_tiny_config(channels: int = 2) -> dict:
    """Strides [2, 4, 4] (hop 32), 4 base channels: receptive field (485, 516) samples."""
    cfg = tiny_config(channels=channels)
    for part in ("encoder", "decoder"):
        cfg = with_change(cfg, f"model.{part}.config.strides", [2, 4, 4])
        cfg = with_change(cfg, f"model.{part}.config.c_mults", [1, 2, 2])
    return with_change(cfg, "model.downsampling_ratio", 32)


@pytest.fixture
def make_deep_model():
    """Folded, eval-mode deep tiny model with random weights.

    ``gain`` scales every conv's weight norm. At 0.5 activations stay of order one, as in a trained
    model; at 1.0 they grow to ~50 and float32 rounding (~1e-4) swamps what the tests check.
    """
    def make(channels: int = 2, seed: int = 0, gain: float = 0.5):
        model = randomized(build_autoencoder(deep_tiny_config(channels)), seed=seed)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith("weight_g"):
                    p.mul_(gain)
        return model.eval().fold_weight_norm()
    return make


@pytest.fixture(scope="session")
def wds_output(tmp_path_factory):
    """A real local encode run in WebDataset shards, made once per session (read-only for the tests): the
    seven ``clips`` through the tiny VAE, ``--output-format wds --shard-size 3 --store-std``."""
    from preencode.cli import main

    tmp = tmp_path_factory.mktemp("wds_output")
    model = randomized(build_autoencoder(tiny_config(sample_rate=SR)), seed=3)
    files = (write_json(tmp / "vae_config.json", tiny_config(sample_rate=SR)), save_ckpt(model, tmp / "vae.ckpt"),
             model)
    folder = tmp / "audio"
    write_clips(folder, [100, 256, 400, 37, 1000, 255, 180], [2, 1, 2, 2, 1, 2, 2])
    out = tmp / "out"
    argv = encode_args(files, dataset_config(tmp, folder), out, "--output-format", "wds", "--shard-size", "3",
                       "--store-std")
    assert main(argv) == 0
    return out
