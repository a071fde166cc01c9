"""A minimal audio-folder dataset for the on-the-fly encoding path (``training.pre_encoded: false``).

Stand-in until the project's audio-input layer lands: it reads every audio file under the dataset
roots with soundfile, converts channels, resamples with soxr, and pads/crops to ``sample_size`` from the
start (or a random offset with ``random_crop``) as the reference's ``PadCrop_Normalized_T`` does,
giving ``padding_mask``, ``seconds_start`` and ``seconds_total``. Swap :func:`build_audio_dataset` for
the real layer when it exists.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from ..data.config import DatasetConfig
from ..errors import DatasetError

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3")


class AudioFolderDataset(torch.utils.data.Dataset):
    """Items ``(audio [channels, sample_size] float32, info)``; None for an unreadable file."""

    def __init__(self, files: list[Path], sample_rate: int, sample_size: int, channels: int,
                 random_crop: bool, seed: int = 0) -> None:
        self.files, self.sample_rate, self.sample_size = files, sample_rate, sample_size
        self.channels, self.random_crop, self.seed, self.epoch = channels, random_crop, seed, 0

    def __len__(self) -> int:
        return len(self.files)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict] | None:
        path = self.files[index]
        try:
            audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
        except (OSError, RuntimeError, sf.LibsndfileError) as err:
            log.warning("Skipping unreadable audio %s: %s", path, err)
            return None
        audio = audio.T  # [C, T]
        if rate != self.sample_rate:
            import soxr

            audio = soxr.resample(audio.T, rate, self.sample_rate).T.astype(np.float32)
        if audio.shape[0] != self.channels:
            audio = np.repeat(audio.mean(0, keepdims=True), self.channels, 0) if self.channels > 1 else audio.mean(0, keepdims=True)
        total = audio.shape[1]
        upper = max(0, total - self.sample_size)
        rng = np.random.default_rng((self.seed, self.epoch, index))
        offset = int(rng.integers(0, upper + 1)) if self.random_crop and upper else 0
        out = np.zeros((self.channels, self.sample_size), np.float32)
        piece = audio[:, offset:offset + self.sample_size]
        out[:, :piece.shape[1]] = piece
        mask = np.zeros(self.sample_size, bool)
        mask[:piece.shape[1]] = True
        info = {"path": str(path), "seconds_start": offset / self.sample_rate, "seconds_total": total / self.sample_rate,
                "padding_mask": torch.from_numpy(mask), "sample_rate": self.sample_rate}
        sidecar = path.with_suffix(".json")
        if sidecar.is_file():
            info.update(json.loads(sidecar.read_text(encoding="utf-8")))
        return torch.from_numpy(out), info


def build_audio_dataset(config: DatasetConfig, sample_rate: int, sample_size: int, channels: int,
                        seed: int = 0) -> AudioFolderDataset:
    """The on-the-fly dataset of an ``audio_dir`` config (a ``<name>.json`` beside a file adds metadata)."""
    if config.dataset_type != "audio_dir":
        raise DatasetError(f"On-the-fly training reads dataset_type 'audio_dir' here, got {config.dataset_type!r}.",
                           "Use an audio_dir dataset config (or pre-encode the data).")
    files = []
    for entry in config.datasets:
        root = Path(entry.path or "")
        if not root.is_dir():
            raise DatasetError(f"Audio dataset {entry.id!r}: folder {root} does not exist.", "Check 'path'.")
        files.extend(sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS))
    if not files:
        raise DatasetError("The audio dataset has no audio files.", "Check the dataset paths.")
    return AudioFolderDataset(files, sample_rate, sample_size, channels, config.random_crop, seed)
