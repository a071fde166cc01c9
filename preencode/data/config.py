"""Dataset configs in stable-audio-tools' JSON format, parsed into typed objects.

The whole config is validated before any data work; every problem is reported at once with its JSON
path, and unknown keys are reported with a did-you-mean instead of being ignored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..schema import Node, Problems, load_json

log = logging.getLogger(__name__)

DATASET_TYPES = ("audio_dir", "wds", "s3", "pre_encoded")

# Keys of the reference that only matter for its training-time sampling (shards drawn with replacement,
# epochs of epoch_steps batches); accepted and recorded. Our shard epochs read every sample once.
_REFERENCE_ONLY_KEYS = ("epoch_steps", "resampled_shards")


@dataclass(frozen=True)
class DatasetEntry:
    """One entry of ``datasets[]``.

    ``latent_crop_length``, ``min_length_sec`` and ``max_length_sec`` override the top-level values
    for this entry (pre-encoded datasets only).
    """

    id: str
    path: str | None = None
    s3_path: str | None = None
    custom_metadata_module: str | None = None
    profile: str | None = None
    latent_crop_length: int | None = None
    min_length_sec: float | None = None
    max_length_sec: float | None = None


@dataclass(frozen=True)
class DatasetConfig:
    """A validated dataset config. ``dataset_type`` is normalised (``s3`` becomes ``wds``).

    Latents are stored in two forms: loose files (``dataset_type: "pre_encoded"``) and WebDataset shards
    (``"wds"``/``"s3"`` with ``"pre_encoded": true``, as stable-audio-tools reads them); :attr:`holds_latents`
    is true for both.
    """

    dataset_type: str
    datasets: tuple[DatasetEntry, ...]
    random_crop: bool = True
    drop_last: bool = True
    pre_encoded: bool = False
    # pre_encoded
    latent_crop_length: int | None = None
    min_length_sec: float | None = None
    max_length_sec: float | None = None
    latent_extension: str = "npy"
    # audio preprocessing of the reference (training-time options)
    remove_silence: bool = False
    silence_threshold: tuple[float, float] = (0.01, 0.5)
    max_silence_duration: float = 0.25
    volume_norm: bool = False
    volume_norm_param: tuple[float, float] = (-16.0, 2.0)
    # pre-encoding options (not in the reference, which always drops silence and flips phase)
    drop_silent: bool = False
    augment_phase: bool = False
    # shards of latents (ours): samples held by each reader's shuffle buffer
    shuffle_buffer: int = 1000
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def holds_latents(self) -> bool:
        """Whether the datasets are pre-encoded latents (loose files or shards), not audio."""
        return self.pre_encoded

    @property
    def latent_shards(self) -> bool:
        """Whether the datasets are shards of latents (``wds``/``s3`` with ``pre_encoded: true``)."""
        return self.pre_encoded and self.dataset_type == "wds"


def parse_dataset_config(data: Any, source: str = "dataset config") -> DatasetConfig:
    """Validate a parsed dataset config; raises :class:`ConfigError` listing every problem."""
    problems = Problems()
    root = Node(data, "", problems)
    dataset_type = root.choice("dataset_type", DATASET_TYPES, what="dataset_type")
    if dataset_type == "s3":
        dataset_type = "wds"
    latent_files = dataset_type == "pre_encoded"
    pre_encoded = root.bool("pre_encoded", latent_files)
    if latent_files and pre_encoded is False:
        root.problem("pre_encoded", "is false, but dataset_type 'pre_encoded' holds latents; remove the key")
    elif pre_encoded is True and dataset_type == "audio_dir":
        root.problem("pre_encoded", "is true, but dataset_type 'audio_dir' holds audio; for shards of latents use "
                     "dataset_type 'wds' or 's3', for folders of .npy latents 'pre_encoded'")
    shard_stream = dataset_type == "wds" and pre_encoded is True
    if root.has("shuffle_buffer") and not shard_stream:
        root.problem("shuffle_buffer", "only applies to shards of latents (dataset_type 'wds' or 's3' with "
                     "\"pre_encoded\": true)")
    entries = []
    raw_entries = root.list("datasets")
    if root.has("datasets") and isinstance(raw_entries, list) and not raw_entries:
        root.problem("datasets", "expected at least one dataset, got an empty list")
    for i, raw in enumerate(raw_entries or []):
        entries.append(_parse_entry(Node(raw, f"datasets[{i}]", problems), dataset_type))
    ids = [e.id for e in entries]
    for dup in sorted({i for i in ids if ids.count(i) > 1}):
        root.problem("datasets", f"dataset id {dup!r} is used more than once; ids must be unique")

    config = DatasetConfig(
        dataset_type=dataset_type or "audio_dir",
        datasets=tuple(entries),
        random_crop=root.bool("random_crop", not latent_files),
        drop_last=root.bool("drop_last", True),
        pre_encoded=pre_encoded is True,
        latent_crop_length=root.int("latent_crop_length", None, minimum=1),
        min_length_sec=root.number("min_length_sec", None),
        max_length_sec=root.number("max_length_sec", None),
        latent_extension=root.str("latent_extension", "npy"),
        remove_silence=root.bool("remove_silence", False),
        silence_threshold=tuple(_pair(root, "silence_threshold", [0.01, 0.5])),
        max_silence_duration=root.number("max_silence_duration", 0.25),
        volume_norm=root.bool("volume_norm", False),
        volume_norm_param=tuple(_pair(root, "volume_norm_param", [-16, 2])),
        drop_silent=root.bool("drop_silent", False),
        augment_phase=root.bool("augment_phase", False),
        shuffle_buffer=root.int("shuffle_buffer", 1000, minimum=0),
        raw=data if isinstance(data, dict) else {},
    )
    for key in _REFERENCE_ONLY_KEYS:
        root.raw(key, None)
    root.check_unknown()
    problems.raise_if_any(source)
    return config


def _pair(node: Node, key: str, default: list) -> list:
    value = node.list(key, default)
    if not (len(value) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        node.problem(key, f"expected a list of two numbers, got {value!r}")
        return default
    return [float(v) for v in value]


def _parse_entry(node: Node, dataset_type: str | None) -> DatasetEntry:
    entry = DatasetEntry(
        id=node.str("id"),
        path=node.str("path", None),
        s3_path=node.str("s3_path", None),
        custom_metadata_module=node.str("custom_metadata_module", None),
        profile=node.str("profile", None),
        latent_crop_length=node.int("latent_crop_length", None, minimum=1),
        min_length_sec=node.number("min_length_sec", None),
        max_length_sec=node.number("max_length_sec", None),
    )
    if dataset_type == "wds":
        if not entry.path and not entry.s3_path:
            node.problem(None, "a wds dataset needs 'path' (local folder of .tar shards) or 's3_path'")
    elif dataset_type is not None:
        if not entry.path:
            node.problem("path", "is required but missing")
        if entry.s3_path:
            node.problem("s3_path", f"is only supported for dataset_type 'wds', not {dataset_type!r}")
    if entry.custom_metadata_module and not entry.custom_metadata_module.endswith(".py"):
        node.problem("custom_metadata_module", f"expected a path to a .py file, got {entry.custom_metadata_module!r}")
    node.check_unknown()
    return entry


def load_dataset_config(path: str | Path) -> DatasetConfig:
    """Read and validate a dataset config file."""
    return parse_dataset_config(load_json(path, "Dataset config"), source=str(path))
