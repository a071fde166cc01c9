"""Datasets: configs, audio sources, the pre-encoding plan and dataset, failure records.

For the encode engine::

    plan = build_plan(load_dataset_config(path))          # plan.items, plan.failures
    ds = AudioWindowDataset.from_config(plan.items, config, sample_rate=44100, channels=2,
                                      sample_size=1320960, seed=0)
    mine = split_indices(len(ds), world_size, rank)
    loader = DataLoader(Subset(ds, mine), collate_fn=collate)   # batches are WindowBatch
"""

from __future__ import annotations

from .audio_windows import AudioWindowDataset, WindowBatch, WindowSample, collate
from .config import DatasetConfig, DatasetEntry, load_dataset_config, parse_dataset_config
from .failures import Failure, Rejection
from .plan import Plan, build_plan
from .sharding import split_indices, split_list, split_range
from .sources import Fingerprint, Item, TarMember

__all__ = [
    "AudioWindowDataset", "DatasetConfig", "DatasetEntry", "Failure", "Fingerprint", "Item", "Plan", "Rejection",
    "TarMember", "WindowBatch", "WindowSample", "build_plan", "collate", "load_dataset_config",
    "parse_dataset_config", "split_indices", "split_list", "split_range",
]
