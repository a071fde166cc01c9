"""Write small output trees in the encode engine's format (or the reference's) with a known set of latents."""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

RATIO = 8
SAMPLE_RATE = 16000


@dataclass
class Item:
    rank: int
    id: str
    latent: np.ndarray  # [C, N]
    mask: np.ndarray  # [N] of 0/1

    def meta(self) -> dict[str, Any]:
        valid = int(self.mask.sum())
        return {"path": f"/audio/{self.id}.wav", "relpath": f"{self.id}.wav", "timestamps": [0.0, 1.0],
                "seconds_start": 0, "seconds_total": valid * RATIO / SAMPLE_RATE,
                "padding_mask": self.mask.astype(int).tolist(), "sample_rate": SAMPLE_RATE, "id": self.id}


def make_items(ranks: tuple[int, ...] = (3, 2), latent_dim: int = 4, frames: int = 20, seed: int = 0,
               dtype: str = "float32") -> list[Item]:
    """A known set: per-channel offsets and scales, about half the latents padded at the end."""
    rng = np.random.default_rng(seed)
    items = []
    for rank, count in enumerate(ranks):
        for i in range(count):
            latent = rng.normal(size=(latent_dim, frames)) * np.arange(1, latent_dim + 1)[:, None]
            latent += np.linspace(-1, 1, latent_dim)[:, None]
            mask = np.ones(frames, dtype=int)
            if (rank + i) % 2:
                mask[rng.integers(frames // 4, frames):] = 0
            items.append(Item(rank, f"{rank:03d}{i:010d}", latent.astype(dtype), mask))
    return items


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def details(latent_dim: int = 4, dtype: str = "float32") -> dict[str, Any]:
    return {"format_version": 1, "preencode_version": "0.1.0", "model_config": {}, "dataset_config": {},
            "sample_size": 160, "args": {}, "checkpoint_sha256": "0" * 64,
            "latent": {"latent_dim": latent_dim, "downsampling_ratio": RATIO, "sample_rate": SAMPLE_RATE,
                       "dtype": dtype, "is_discrete": False, "num_quantizers": None, "posterior": "sample"}}


def write_tree(root: Path, items: list[Item], shards: bool = False, details_json: dict | None = None,
               failures: list[dict] | None = None, rejected: int = 0) -> Path:
    """Write ``items`` under ``root`` (loose files, or one .tar shard per rank)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "details.json").write_text(json.dumps(details_json if details_json is not None else details()))
    by_rank: dict[int, list[Item]] = {}
    for item in items:
        by_rank.setdefault(item.rank, []).append(item)
    for rank, group in by_rank.items():
        folder = root / str(rank)
        folder.mkdir(exist_ok=True)
        if shards:
            with tarfile.open(folder / "shard-000000.tar", "w") as tar:
                for item in group:
                    for name, data in ((f"{item.id}.npy", npy_bytes(item.latent)),
                                       (f"{item.id}.json", json.dumps(item.meta()).encode())):
                        info = tarfile.TarInfo(name)
                        info.size = len(data)
                        tar.addfile(info, io.BytesIO(data))
        else:
            for item in group:
                np.save(folder / f"{item.id}.npy", item.latent)
                (folder / f"{item.id}.json").write_text(json.dumps(item.meta()))
    if failures:
        (root / "failures.jsonl").write_text("".join(json.dumps(f) + "\n" for f in failures))
    if rejected:
        (root / "rejected.jsonl").write_text("".join(json.dumps({"path": f"/r{i}"}) + "\n" for i in range(rejected)))
    return root


def valid_values(items: list[Item], include_padding: bool = False) -> np.ndarray:
    """All counted frames of the set, ``[C, total]`` in float64."""
    blocks = [it.latent if include_padding else it.latent[:, it.mask.astype(bool)] for it in items]
    return np.concatenate(blocks, axis=1).astype(np.float64)
