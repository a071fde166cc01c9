"""Small output trees with a known set of latents, written by the store's own writers.

Tests that need a broken tree damage the files these writers produce.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from preencode.store.details import build_details, write_details
from preencode.store.logs import write_jsonl
from preencode.store.meta import LatentMeta
from preencode.store.names import FAILURES, REJECTED
from preencode.store.sample import EncodedSample
from preencode.store.writer import open_writer

RATIO = 8
SAMPLE_RATE = 16000


@dataclass
class Item:
    rank: int
    id: str
    latent: np.ndarray  # [C, N]
    mask: np.ndarray  # [N] of 0/1
    std: np.ndarray | None = None

    def meta(self) -> LatentMeta:
        """What the encoder writes for a window of a file that holds ``mask.sum()`` frames of audio."""
        valid = int(self.mask.sum())
        return LatentMeta(path=f"/audio/{self.id}.wav", relpath=f"{self.id}.wav", sample_rate=SAMPLE_RATE,
                          dataset_id="audio", input_fingerprint={"size": 1000 + int(self.id), "mtime_ns": 1},
                          timestamps=[0.0, 1.0], seconds_start=0, seconds_total=valid * RATIO / SAMPLE_RATE,
                          padding_mask=self.mask.astype(int).tolist())

    def sample(self) -> EncodedSample:
        return EncodedSample(int(self.id), self.latent, self.meta(), self.std)


def make_items(ranks: tuple[int, ...] = (3, 2), latent_dim: int = 4, frames: int = 20, seed: int = 0,
               dtype: str = "float32", with_std: bool = False) -> list[Item]:
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
            std = rng.uniform(0.1, 1.0, size=(latent_dim, frames)).astype(dtype) if with_std else None
            items.append(Item(rank, f"{rank:03d}{i:010d}", latent.astype(dtype), mask, std))
    return items


def details(latent_dim: int = 4, dtype: str = "float32") -> dict[str, Any]:
    latent = {"latent_dim": latent_dim, "downsampling_ratio": RATIO, "sample_rate": SAMPLE_RATE, "dtype": dtype,
              "is_discrete": False, "num_quantizers": None, "posterior": "sample"}
    return build_details(model_config={}, dataset_config={}, sample_size=160, args={},
                         checkpoint_sha256="0" * 64, latent=latent, mode={})


def write_tree(root: Path, items: list[Item], shards: bool = False, details_json: dict | None = None,
               failures: list[dict] | None = None, rejected: int = 0) -> Path:
    """Write ``items`` under ``root`` with the encoder's writers: loose files, or one shard per rank."""
    root.mkdir(parents=True, exist_ok=True)
    write_details(root, details_json if details_json is not None else details())
    for rank in sorted({item.rank for item in items}):
        writer = open_writer("wds" if shards else "npy", root / str(rank), shard_size=10**6)
        for item in items:
            if item.rank == rank:
                writer.write(item.sample())
        writer.close()
    if failures:
        write_jsonl(root / FAILURES, failures)
    if rejected:
        write_jsonl(root / REJECTED, [{"path": f"/r{i}"} for i in range(rejected)])
    return root


def valid_values(items: list[Item], include_padding: bool = False) -> np.ndarray:
    """All counted frames of the set, ``[C, total]`` in float64."""
    blocks = [it.latent if include_padding else it.latent[:, it.mask.astype(bool)] for it in items]
    return np.concatenate(blocks, axis=1).astype(np.float64)
