"""The pre-encoding dataset: one fixed-size window per input item, or a record of why not.

Map-style, so the engine splits indices over ranks and workers itself (see
:func:`preencode.data.sharding.split_indices`). ``__getitem__`` never raises for bad input and
never returns another item instead: it returns a :class:`WindowSample`, a :class:`Failure` or a
:class:`Rejection`; :func:`collate` makes a :class:`WindowBatch` of them for the encoder.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from ..audio import AudioLoadError, is_silent, load_window
from ..audio.windows import choose_window, pad_crop, window_rng
from ..errors import DatasetError
from .config import DatasetConfig
from .failures import Failure, Rejection
from .metadata import load_custom_metadata_fn
from .sources import Item, read_range

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class WindowSample:
    """One input's window.

    Attributes:
        index: the input's id (its position in the plan).
        audio: ``[C, sample_size]`` float32 in [-1, 1], zero-padded.
        metadata: what goes into the sample's JSON (``padding_mask``, a float tensor ``[sample_size]``,
            included), custom metadata merged in.
    """

    index: int
    audio: torch.Tensor
    metadata: dict[str, Any]


Result = WindowSample | Failure | Rejection


def item_metadata(item: Item, extra: dict[str, Any], sample_rate: int) -> dict[str, Any]:
    """The per-sample fields that do not depend on the window: ``extra`` (a WebDataset sample's ``.json``)
    plus ``path``, ``relpath``, ``sample_rate``, ``dataset_id``, ``input_fingerprint`` (and ``shard``/``key``
    for tar members); ``text`` is also copied to ``prompt``, as the reference does."""
    info: dict[str, Any] = dict(extra)
    info.update(path=item.path, relpath=item.relpath, sample_rate=sample_rate, dataset_id=item.dataset_id,
                input_fingerprint=item.input_fingerprint())
    if item.member is not None:
        info.update(shard=item.member.shard, key=item.member.key)
    if "text" in extra:
        info["prompt"] = extra["text"]
    return info


class AudioWindowDataset(torch.utils.data.Dataset):
    """Windows of ``sample_size`` samples at ``sample_rate`` with ``channels`` channels.

    Args:
        items: the inputs (usually ``build_plan(config).items``); ``i`` indexes this sequence,
            the returned ``"index"`` is ``items[i].index``.
        sample_rate: the model's sample rate.
        channels: the model's channel count (1: mean of all channels; 2: mono duplicated, first
            two of more).
        sample_size: window length in samples (the reference's ``--sample-size``).
        random_crop: a random window of longer files (else the start), as the reference.
        seed: with the item's index, fixes every random choice, so re-runs give the same windows.
        drop_silent: reject windows whose peak is below -60 dBFS (the reference always does;
            default keeps them).
        augment_phase: invert the polarity of half the windows, chosen per item (the reference's
            PhaseFlipper; off by default because it changes the stored latents). Recorded in
            the metadata as ``phase_inverted``.
        seek: decode only the window of long files whose header gives an exact length.
    """

    def __init__(self, items: Sequence[Item], sample_rate: int, channels: int, sample_size: int,
                 random_crop: bool = True, seed: int = 0, drop_silent: bool = False,
                 augment_phase: bool = False, seek: bool = True) -> None:
        if sample_rate < 1 or channels < 1 or sample_size < 1:
            raise ValueError(f"sample_rate, channels and sample_size must be >= 1, "
                             f"got {sample_rate}, {channels}, {sample_size}")
        self.items = list(items)
        self.sample_rate = sample_rate
        self.channels = channels
        self.sample_size = sample_size
        self.random_crop = random_crop
        self.seed = seed
        self.drop_silent = drop_silent
        self.augment_phase = augment_phase
        self.seek = seek

    @classmethod
    def from_config(cls, items: Sequence[Item], config: DatasetConfig, *, sample_rate: int, channels: int,
                    sample_size: int, seed: int = 0, seek: bool = True) -> AudioWindowDataset:
        """Take ``random_crop``, ``drop_silent`` and ``augment_phase`` from the dataset config."""
        return cls(items, sample_rate, channels, sample_size, random_crop=config.random_crop, seed=seed,
                   drop_silent=config.drop_silent, augment_phase=config.augment_phase, seek=seek)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Result:
        item = self.items[i]
        try:
            return self._load(item)
        except _ItemFailed as failed:
            log.warning("Skipping %s (%s): %s", item.path, failed.stage, failed.reason)
            return Failure(item.path, failed.stage, failed.reason, item.index, item.dataset_id)
        except Exception as err:  # last resort: one odd file must not stop a multi-hour run
            log.exception("Unexpected error on %s", item.path)
            return Failure(item.path, "decode", f"unexpected {type(err).__name__}: {err}", item.index,
                           item.dataset_id)

    def _load(self, item: Item) -> Result:
        rng = window_rng(self.seed, item.index)
        source, extra = self._read_source(item)
        try:
            got = load_window(source, sample_rate=self.sample_rate, channels=self.channels,
                              sample_size=self.sample_size, random_crop=self.random_crop, rng=rng,
                              seek=self.seek, name=item.path)
        except AudioLoadError as err:
            raise _ItemFailed("decode", err.reason) from err
        audio = got.audio
        info = item_metadata(item, extra, self.sample_rate)
        info.update(got.window.metadata(self.sample_rate))
        if self.augment_phase:
            flip = bool(rng.random() < 0.5)
            audio = -audio if flip else audio
            info["phase_inverted"] = flip
        if self.drop_silent and is_silent(audio):
            return Rejection(item.path, "silent: the window's peak is below -60 dBFS", item.index, item.dataset_id)
        if item.custom_metadata_module:
            info = self._custom_metadata(item, info, audio)
            if info.get("__reject__"):
                return Rejection(item.path, f"rejected by custom metadata module {item.custom_metadata_module}",
                                 item.index, item.dataset_id)
        return WindowSample(item.index, audio, info)

    def _read_source(self, item: Item) -> tuple[str | bytes, dict[str, Any]]:
        member = item.member
        if member is None:
            return item.path, {}
        try:
            data = read_range(member.shard, member.offset, member.size, item.profile)
            raw = None
            if member.json_name is not None and member.json_offset is not None and member.json_size is not None:
                raw = read_range(member.shard, member.json_offset, member.json_size, item.profile)
        except OSError as err:
            raise _ItemFailed("decode", f"cannot read the member from its shard ({err})") from err
        extra: dict[str, Any] = {}
        if raw is not None:
            try:
                extra = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as err:
                raise _ItemFailed("metadata", f"{member.json_name} is not valid JSON ({err})") from err
            if not isinstance(extra, dict):
                raise _ItemFailed("metadata", f"{member.json_name} holds {type(extra).__name__}, expected an object")
        return data, extra

    def _custom_metadata(self, item: Item, info: dict[str, Any], audio: torch.Tensor) -> dict[str, Any]:
        module = item.custom_metadata_module
        if module is None:
            return info
        try:
            fn = load_custom_metadata_fn(module)
        except DatasetError as err:
            raise _ItemFailed("custom_metadata", err.message) from err
        try:
            custom = fn(info, audio)
        except Exception as err:  # user code: report the error with the file it happened on
            raise _ItemFailed("custom_metadata", f"get_custom_metadata in {module} raised "
                                                 f"{type(err).__name__}: {err}") from err
        if not isinstance(custom, dict):
            raise _ItemFailed("custom_metadata", f"get_custom_metadata in {module} returned "
                                                 f"{type(custom).__name__}, expected a dict")
        info.update(custom)
        extra_audio = info.pop("__audio__", None)
        if extra_audio is not None:
            if not isinstance(extra_audio, dict):
                raise _ItemFailed("custom_metadata", f"__audio__ from {module} must be a dict of name -> tensor")
            for name, value in extra_audio.items():
                info[name] = self._window_extra(item, module, name, value)
        return info

    def _window_extra(self, item: Item, module: str, name: str, value: Any) -> torch.Tensor:
        """An ``__audio__`` entry cut like the reference does: its own pad/crop (offset drawn for this
        entry, deterministic per item and name), then clamped. Channels are kept as given."""
        if not isinstance(value, (torch.Tensor, np.ndarray)) or value.ndim not in (1, 2):
            raise _ItemFailed("custom_metadata", f"__audio__[{name!r}] from {module} must be a tensor [C, T] or [T]")
        arr = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr[None]
        window = choose_window(arr.shape[1], self.sample_size, self.random_crop,
                               window_rng(self.seed, item.index, f"__audio__/{name}"))
        return torch.from_numpy(np.clip(pad_crop(arr, window), -1.0, 1.0))


class _ItemFailed(Exception):
    def __init__(self, stage: str, reason: str) -> None:
        super().__init__(reason)
        self.stage = stage
        self.reason = reason


@dataclass
class WindowBatch:
    """What :func:`collate` makes of a list of results: the samples stacked, the records listed.

    Lightning moves it to the device with :meth:`to` and the DataLoader pins it with
    :meth:`pin_memory`; both concern ``audio`` only, the rest is bookkeeping on the CPU.

    Attributes:
        indices: the samples' ids, in batch order.
        audio: ``[B, C, sample_size]``; None when the batch holds no sample.
        lengths: ``[B]`` int64, samples of real audio per window (the rest is padding); None with ``audio``.
        padding_masks: per sample, ``[sample_size]`` int8 (1 for audio, 0 for padding).
        metadata: per sample, its metadata without ``padding_mask``.
        failures, rejections: the inputs of this batch that gave no sample.
    """

    indices: list[int]
    audio: torch.Tensor | None
    lengths: torch.Tensor | None
    padding_masks: list[torch.Tensor]
    metadata: list[dict[str, Any]]
    failures: list[Failure] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def audio_samples(self) -> int:
        """Samples of real audio in the batch (padding excluded)."""
        return 0 if self.lengths is None else int(self.lengths.sum())

    def to(self, device: torch.device | str, non_blocking: bool = False) -> WindowBatch:
        if self.audio is None:
            return self
        return replace(self, audio=self.audio.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> WindowBatch:
        return self if self.audio is None else replace(self, audio=self.audio.pin_memory())


def collate(results: Sequence[Result]) -> WindowBatch:
    """A DataLoader ``collate_fn`` for :class:`AudioWindowDataset`."""
    samples = [r for r in results if isinstance(r, WindowSample)]
    masks, metadata = [], []
    for sample in samples:
        meta = dict(sample.metadata)
        masks.append(torch.as_tensor(np.asarray(meta.pop("padding_mask")), dtype=torch.int8))
        metadata.append(meta)
    return WindowBatch(
        indices=[int(s.index) for s in samples],
        audio=torch.stack([torch.as_tensor(s.audio) for s in samples]) if samples else None,
        lengths=torch.tensor([int(m.sum()) for m in masks]) if samples else None,
        padding_masks=masks,
        metadata=metadata,
        failures=[r for r in results if isinstance(r, Failure)],
        rejections=[r for r in results if isinstance(r, Rejection)],
    )
