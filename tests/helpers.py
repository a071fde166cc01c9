"""Tiny model configs and checkpoints for tests (nothing is downloaded)."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import torch


def _find_spec() -> Path:
    """The read-only reference material: ``$PREENCODE_SPEC_DIR``, or ``shared/spec`` beside the checkout."""
    candidates = [os.environ.get("PREENCODE_SPEC_DIR", ""), Path(__file__).resolve().parents[2] / "shared" / "spec",
                  Path(__file__).resolve().parents[1] / "shared" / "spec", Path("/work/shared/spec")]
    for candidate in candidates:
        if candidate and (Path(candidate) / "sao_vae_state_dict_keys.json").exists():
            return Path(candidate)
    return Path(candidates[1])


SPEC = _find_spec()


def tiny_config(channels: int = 2, bottleneck: dict | None = None, latent_dim: int = 4,
                use_snake: bool = True, sample_rate: int = 16000) -> dict[str, Any]:
    """An Oobleck autoencoder with Stable Audio Open's structure, scaled down (ratio 8)."""
    bottleneck = {"type": "vae"} if bottleneck is None else bottleneck
    enc_dim = 2 * latent_dim if bottleneck.get("type") == "vae" else latent_dim
    return {
        "model_type": "autoencoder",
        "sample_rate": sample_rate,
        "audio_channels": channels,
        "model": {
            "encoder": {"type": "oobleck", "config": {
                "in_channels": channels, "channels": 4, "c_mults": [1, 2], "strides": [2, 4],
                "latent_dim": enc_dim, "use_snake": use_snake}},
            "decoder": {"type": "oobleck", "config": {
                "out_channels": channels, "channels": 4, "c_mults": [1, 2], "strides": [2, 4],
                "latent_dim": latent_dim, "use_snake": use_snake, "final_tanh": False}},
            "bottleneck": bottleneck,
            "latent_dim": latent_dim,
            "downsampling_ratio": 8,
            "io_channels": channels,
        },
        "training": {"learning_rate": 1e-4},
    }


def randomized(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter deterministic, non-trivial values (SnakeBeta starts at exactly 0)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            p.copy_(torch.randn(p.shape, generator=gen) * (0.3 if name.endswith(("alpha", "beta")) else 0.5))
            if name.endswith("weight_g"):
                p.abs_().add_(0.5)
    return model


def save_ckpt(model: torch.nn.Module, path: Path) -> Path:
    torch.save({"state_dict": model.state_dict()}, path)
    return path


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data))
    return path


def with_change(config: dict, path: str, value: Any) -> dict:
    """A deep copy of ``config`` with the dotted ``path`` set to ``value`` (``...`` deletes it)."""
    out = copy.deepcopy(config)
    node = out
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[key]
    if value is ...:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return out
