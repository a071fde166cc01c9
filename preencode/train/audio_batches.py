"""Audio for the on-the-fly encoding path (``training.pre_encoded: false``), from the project's audio layer.

The same plan, decoding, resampling, channel conversion and pad/crop as pre-encoding
(:class:`~preencode.data.audio_windows.AudioWindowDataset`), so the two paths see identical windows. Random crops
are redrawn every epoch (the window seed is ``seed + epoch``). An input that fails to load, or is rejected,
yields ``None``: the collate function drops and counts it; no other file is substituted.
"""

from __future__ import annotations

from typing import Any

import torch

from ..data.audio_windows import AudioWindowDataset, WindowSample
from ..data.config import DatasetConfig
from ..data.plan import build_plan


class AudioTrainingDataset(torch.utils.data.Dataset):
    """Items ``(audio [channels, sample_size] float32, info)``, or None for a failed/rejected input."""

    def __init__(self, windows: AudioWindowDataset, seed: int = 0) -> None:
        self.windows, self.seed = windows, seed

    def __len__(self) -> int:
        return len(self.windows)

    def set_epoch(self, epoch: int) -> None:
        self.windows.seed = self.seed + epoch

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, Any]] | None:
        result = self.windows[index]
        if not isinstance(result, WindowSample):
            return None
        return result.audio, result.metadata


def build_audio_dataset(config: DatasetConfig, sample_rate: int, sample_size: int, channels: int,
                        seed: int = 0) -> AudioTrainingDataset:
    """The on-the-fly dataset of an ``audio_dir`` or ``wds`` config."""
    plan = build_plan(config)
    windows = AudioWindowDataset.from_config(plan.items, config, sample_rate=sample_rate, channels=channels,
                                           sample_size=sample_size, seed=seed)
    return AudioTrainingDataset(windows, seed)
