"""Tiny Stable Audio Open-shaped models and pre-encoded data for training tests (nothing is downloaded).

The model is ``tests/models/diffusion/tiny_diffusion.sao_like`` (t5 prompt + seconds_start/seconds_total,
a 2-block DiT, the tiny VAE with ratio 8 as pretransform, the committed 23 kB T5) with a training section.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.models.diffusion.tiny_diffusion import randomize, sao_like, small_like, with_t5  # noqa: F401
from tests.models.diffusion.tiny_t5 import TINY_T5

ROOT = Path(__file__).resolve().parents[2]

PROMPTS = ["a dog barks", "slow piano in the rain", "loud drums and bass", "chill hip hop beat"]
TRAINING: dict[str, Any] = {
    "use_ema": True, "pre_encoded": True, "cfg_dropout_prob": 0.1,
    "optimizer_configs": {"diffusion": {
        "optimizer": {"type": "AdamW", "config": {"lr": 3e-3, "betas": [0.9, 0.99], "weight_decay": 1e-3}},
        "scheduler": {"type": "InverseLR", "config": {"inv_gamma": 100000, "power": 0.5, "warmup": 0.9}}}},
}


@pytest.fixture(autouse=True)
def _index_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PREENCODE_CACHE_DIR", str(tmp_path / "index_cache"))


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread (and do not stall when other work shares the cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def model_config(**training: Any) -> dict[str, Any]:
    """sao_like with the tiny T5 and a training section (``training`` entries replace or add keys; None deletes)."""
    cfg = with_t5(sao_like())
    section = copy.deepcopy(TRAINING)
    for key, value in training.items():
        if value is None:
            section.pop(key, None)
        else:
            section[key] = value
    cfg["training"] = section
    return cfg


def local_t5(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with every t5 conditioner reading the committed tiny T5 (fixtures store the path of the
    checkout they were made in)."""
    out = copy.deepcopy(config)
    for item in out["model"]["conditioning"]["configs"]:
        if item["type"] == "t5":
            item["config"]["t5_model_name"] = str(TINY_T5)
    return out


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def make_latents(root: Path, count: int = 16, frames: int = 16, channels: int = 4, seed: int = 0,
                 with_details: bool = True) -> Path:
    """Latents a tiny model learns quickly (each channel constant at +-2), with Stable Audio Open's metadata
    (prompt, seconds_start, seconds_total) and a padding mask whose last frames are padding for some."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        lat = np.repeat(rng.choice([-2.0, 2.0], size=(channels, 1)), frames, axis=1).astype(np.float32)
        folder = root / str(i % 2)
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / f"{i:013d}.npy", lat)
        valid = frames - (i % 3)
        write_json(folder / f"{i:013d}.json", {
            "padding_mask": [1] * valid + [0] * (frames - valid), "prompt": PROMPTS[i % len(PROMPTS)],
            "seconds_start": 0.0, "seconds_total": 1.0 + i % 4, "path": f"{i}.wav", "relpath": f"{i}.wav",
            "sample_rate": 16000})
    if with_details:
        write_json(root / "details.json", {"model_config": {}, "sample_size": frames * 8, "latent": {
            "latent_dim": channels, "downsampling_ratio": 8, "sample_rate": 16000, "dtype": "float32"}})
    return root


def dataset_config(root: Path, **extra: Any) -> dict[str, Any]:
    cfg = {"dataset_type": "pre_encoded", "datasets": [{"id": "tiny", "path": str(root)}],
           "latent_crop_length": 16, "random_crop": False}
    cfg.update(extra)
    return cfg


def model_weights(path: Path, seed: int = 5, config: dict[str, Any] | None = None) -> Path:
    """An unwrapped checkpoint of the tiny model with deterministic weights (what a released model.ckpt is)."""
    from preencode.models.diffusion import build_diffusion_model

    model = randomize(build_diffusion_model(config or model_config()), seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    else:
        torch.save({"state_dict": model.state_dict()}, path)
    return path
