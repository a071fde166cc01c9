"""Streaming statistics with bounded memory: per-channel moments (Chan's merge) and a uniform sample.

Moments are kept in float64 as (count, mean, M2) per channel; each latent's block of frames is
summarised exactly and merged with Chan et al.'s parallel update, which is numerically stable for
any number of latents. Memory is O(channels) whatever the dataset size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class ChannelMoments:
    """Running count, mean, M2 (sum of squared deviations), min and max per channel.

    Attributes:
        count: values seen per channel (the same for every channel).
        mean: ``[C]`` float64.
        m2: ``[C]`` float64.
        minimum, maximum: ``[C]`` float64.
    """

    channels: int
    count: int = 0
    mean: np.ndarray = field(init=False)
    m2: np.ndarray = field(init=False)
    minimum: np.ndarray = field(init=False)
    maximum: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.mean = np.zeros(self.channels)
        self.m2 = np.zeros(self.channels)
        self.minimum = np.full(self.channels, np.inf)
        self.maximum = np.full(self.channels, -np.inf)

    def update(self, block: np.ndarray) -> None:
        """Merge a block of frames ``[C, n]`` (n may be 0)."""
        if block.ndim != 2 or block.shape[0] != self.channels:
            raise ValueError(f"expected a block [{self.channels}, n], got {list(block.shape)}")
        n = block.shape[1]
        if n == 0:
            return
        block = block.astype(np.float64, copy=False)
        mean_b = block.mean(axis=1)
        m2_b = ((block - mean_b[:, None]) ** 2).sum(axis=1)
        total = self.count + n
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2_b + delta**2 * (self.count * n / total)
        self.count = total
        self.minimum = np.minimum(self.minimum, block.min(axis=1))
        self.maximum = np.maximum(self.maximum, block.max(axis=1))

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation per channel ``[C]`` (NaN before any value)."""
        if self.count == 0:
            return np.full(self.channels, np.nan)
        return np.sqrt(self.m2 / self.count)

    @property
    def overall_mean(self) -> float:
        return float(self.mean.mean()) if self.count else float("nan")

    @property
    def overall_std(self) -> float:
        """Population std of all values pooled over channels (each channel has the same count)."""
        if self.count == 0:
            return float("nan")
        pooled_m2 = self.m2.sum() + self.count * ((self.mean - self.mean.mean()) ** 2).sum()
        return float(np.sqrt(pooled_m2 / (self.count * self.channels)))


class Reservoir:
    """A uniform random sample of at most ``size`` values from a stream (bottom-k by random keys).

    Every value gets a uniform random key; the ``size`` values with the smallest keys are kept,
    which is a uniform sample without replacement of everything seen. Deterministic for a seed.
    """

    def __init__(self, size: int = 100_000, seed: int = 0) -> None:
        self.size = size
        self.rng = np.random.default_rng(seed)
        self.values = np.empty(0)
        self.keys = np.empty(0)

    def update(self, values: np.ndarray) -> None:
        """Offer every value of ``values`` (any shape)."""
        flat = values.astype(np.float64, copy=False).ravel()
        keys = self.rng.random(flat.size)
        if self.keys.size >= self.size:
            keep = keys < self.keys.max()
            flat, keys = flat[keep], keys[keep]
        if flat.size == 0:
            return
        values_all = np.concatenate([self.values, flat])
        keys_all = np.concatenate([self.keys, keys])
        if keys_all.size > self.size:
            chosen = np.argpartition(keys_all, self.size - 1)[: self.size]
            values_all, keys_all = values_all[chosen], keys_all[chosen]
        self.values, self.keys = values_all, keys_all
