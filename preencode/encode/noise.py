"""Per-sample random draws that depend only on the seed and the sample's index.

Batching, rank and device never change a sample's noise: it is drawn on the CPU from a generator
seeded with ``(seed, index, stream)``.
"""

from __future__ import annotations

import numpy as np
import torch


def sample_generator(seed: int, index: int, stream: int = 0) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, index, stream])))


def posterior_noise(seed: int, index: int, shape: tuple[int, ...]) -> torch.Tensor:
    """Standard normal noise ``shape`` (float32) for the posterior sample of input ``index``."""
    return torch.from_numpy(sample_generator(seed, index, 1).standard_normal(shape, dtype=np.float32))
