"""Tiny configs and data for training tests (nothing is downloaded)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = json.loads((ROOT / "configs" / "tiny_dit_cond.json").read_text())


@pytest.fixture(autouse=True)
def _index_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PREENCODE_CACHE_DIR", str(tmp_path / "index_cache"))


def model_config(**training) -> dict:
    cfg = copy.deepcopy(TINY)
    cfg["training"].update(training)
    return cfg


def write_json(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def make_latents(root: Path, count: int = 32, frames: int = 16, channels: int = 4, seed: int = 0,
                 with_details: bool = True) -> Path:
    """Structured latents a tiny model learns quickly: each channel constant at +-4 (+-2 after the
    tiny config's scale of 2)."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        lat = np.repeat(rng.choice([-4.0, 4.0], size=(channels, 1)), frames, axis=1).astype(np.float32)
        folder = root / str(i % 2)
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / f"{i:013d}.npy", lat)
        valid = frames - (i % 3)
        write_json(folder / f"{i:013d}.json", {"padding_mask": [1] * valid + [0] * (frames - valid),
                                               "seconds_start": 0.0, "seconds_total": 1.0 + i % 4,
                                               "path": f"{i}.wav", "relpath": f"{i}.wav", "sample_rate": 16000})
    if with_details:
        write_json(root / "details.json", {"model_config": {}, "sample_size": frames * 8, "latent": {
            "latent_dim": channels, "downsampling_ratio": 8, "sample_rate": 16000, "dtype": "float32"}})
    return root


def dataset_config(root: Path, **extra) -> dict:
    cfg = {"dataset_type": "pre_encoded", "datasets": [{"id": "tiny", "path": str(root)}],
           "latent_crop_length": 16, "random_crop": False}
    cfg.update(extra)
    return cfg
