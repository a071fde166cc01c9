"""One streaming pass over an output tree: counts, audio duration, shapes, per-channel statistics.

Statistics count only valid frames (``padding_mask == 1``) unless ``include_padding`` is set:
padding frames are the encoding of silence appended to short files and would pull the mean and
std toward it. Latents without a usable ``padding_mask`` count all their frames (and are counted).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..store.latent_info import LatentInfo
from ..store.manifest import ManifestView, reader_view
from ..store.meta import LatentMeta
from ..store.names import DETAILS, LATENT, META, STD
from ..store.objects import ObjectPath, StorePath
from ..store.reader import ReadError, Record, Tree, iter_records, open_tree
from .failures import FailureLog, read_failure_log
from .stats import ChannelMoments, Reservoir

log = logging.getLogger(__name__)


@dataclass
class Summary:
    """What ``preencode inspect`` reports about one output tree.

    Attributes:
        latents: latents whose array was read and used.
        per_rank: latents per rank folder.
        shapes, dtypes: counts of ``"CxN"`` shapes and dtype names.
        frames_total, frames_valid: latent frames, and those with ``padding_mask == 1``.
        seconds: audio seconds covered by valid frames (``None`` when unknown).
        seconds_source: how ``seconds`` was obtained.
        moments: per-channel statistics (``None`` when nothing was read).
        discrete: whether the arrays are integer tokens (mean/std/scale are then not meaningful).
        notes: latents with something odd (unreadable, left out of the statistics...), by cause.
        reservoir: a uniform sample of the counted values (only when asked for, e.g. for a plot).
        std_values, std_square_sum: counted values that have a stored posterior std (``<id>.std.npz``), and
            the sum of its squares over them.
    """

    root: StorePath
    format: str
    latent: LatentInfo
    include_padding: bool
    latents: int = 0
    per_rank: Counter[str] = field(default_factory=Counter)
    shards: int = 0
    shapes: Counter[str] = field(default_factory=Counter)
    dtypes: Counter[str] = field(default_factory=Counter)
    frames_total: int = 0
    frames_valid: int = 0
    seconds: float | None = None
    seconds_source: str = "unknown"
    moments: ChannelMoments | None = None
    discrete: bool = False
    notes: Counter[str] = field(default_factory=Counter)
    failures: FailureLog = field(default_factory=FailureLog)
    problems: list[str] = field(default_factory=list)
    reservoir: Reservoir | None = None
    std_values: int = 0
    std_square_sum: float = 0.0

    @property
    def hours(self) -> float | None:
        return None if self.seconds is None else self.seconds / 3600

    @property
    def stored_std_rms(self) -> float | None:
        """The root mean square of the stored posterior std over the counted values (0 where a latent has
        none), or None when no latent has one."""
        if not self.std_values or self.moments is None or not self.moments.count:
            return None
        return math.sqrt(self.std_square_sum / (self.moments.count * self.moments.channels))

    @property
    def suggested_scale(self) -> float | None:
        """The std of what a loader feeds a model, so that dividing by it gives unit variance: the stored
        values' std, or, with a stored posterior std, the std of ``mean + std * noise``, i.e.
        ``sqrt(var(mean) + mean(std²))`` over the counted values."""
        if self.moments is None or self.moments.count == 0 or self.discrete:
            return None
        rms = self.stored_std_rms
        if rms is None:
            return self.moments.overall_std
        return math.sqrt(self.moments.overall_std ** 2 + rms ** 2)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready rendering (NaN and infinities become ``null``)."""
        stats = None
        m = self.moments
        if m is not None and m.count:
            stats = {"frames_counted": "all" if self.include_padding else "valid", "values_per_channel": m.count,
                     "mean": m.mean.tolist(), "std": m.std.tolist(), "min": m.minimum.tolist(),
                     "max": m.maximum.tolist(), "overall_mean": m.overall_mean, "overall_std": m.overall_std}
        return _finite({
            "root": str(self.root), "format": self.format, "latent": vars(self.latent),
            "latents": self.latents, "per_rank": dict(self.per_rank), "shards": self.shards,
            "shapes": dict(self.shapes), "dtypes": dict(self.dtypes), "discrete": self.discrete,
            "frames": {"total": self.frames_total, "valid": self.frames_valid},
            "audio_hours": self.hours, "hours_source": self.seconds_source,
            "statistics": stats, "suggested_scale": self.suggested_scale, "stored_std_rms": self.stored_std_rms,
            "notes": dict(self.notes),
            "failures": {"count": self.failures.failures, "groups": [g.as_dict() for g in self.failures.groups]},
            "rejected": self.failures.rejected, "problems": self.problems,
        })


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _tree_format(tree: Tree) -> str:
    details = tree.details
    if not details.exists:
        return f"no {DETAILS}"
    if details.is_reference:
        return "reference (stable-audio-tools)"
    return f"preencode format {details.format_version}"


class _Duration:
    """Audio seconds of valid frames: exact from ratio and rate, else estimated from ``seconds_total``.

    The estimate takes latents whose file ended inside them (some padding) and divides their
    ``seconds_total - seconds_start`` by their valid frames, giving seconds per frame.
    """

    def __init__(self, latent: LatentInfo) -> None:
        self.latent = latent
        self.exact = 0.0
        self.exact_frames = 0
        self.unknown_frames = 0
        self.est_seconds = 0.0
        self.est_frames = 0

    def add(self, meta: LatentMeta, valid: int, padded: bool) -> None:
        rate = self.latent.sample_rate or _positive(meta.sample_rate)
        if self.latent.downsampling_ratio and rate:
            self.exact += valid * self.latent.downsampling_ratio / rate
            self.exact_frames += valid
            return
        self.unknown_frames += valid
        total = _positive(meta.seconds_total)
        start = meta.seconds_start if "seconds_start" in meta else 0
        if padded and total and start is not None and valid:
            self.est_seconds += max(total - start, 0)
            self.est_frames += valid

    def result(self) -> tuple[float | None, str]:
        if not self.unknown_frames:
            if not self.exact_frames:
                return 0.0, "no frames"
            return self.exact, "valid frames × downsampling_ratio / sample_rate"
        if self.est_frames:
            estimate = self.exact + self.unknown_frames * self.est_seconds / self.est_frames
            return estimate, "estimated from seconds_total of padded latents (downsampling ratio unknown)"
        return None, "unknown: pass --model-config to give the sample rate and downsampling ratio"


def _positive(value: Any) -> float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else None


def summarise(root: str | Path | ObjectPath, include_padding: bool = False, model_config: str | Path | None = None,
              sample_size: int = 0, seed: int = 0) -> Summary:
    """Read every latent of an output tree once and summarise it (memory bounded by channels + sample).

    Args:
        root: the output tree (a folder or an ``s3://`` prefix), or one local shard of it, or one member
            (``<shard>.tar:<id>``).
        include_padding: count padding frames in the statistics too.
        model_config: an autoencoder config to use where the details file says too little.
        sample_size: keep a uniform sample of this many counted values (0: none).
        seed: for the sample.

    Raises:
        UserError: ``root`` or ``model_config`` is unusable.
        StorageError: S3 cannot be reached.
    """
    tree = open_tree(root, model_config)
    summary = Summary(root=tree.root if tree.shard is None else Path(str(root)), format=_tree_format(tree),
                      latent=tree.details.latent, include_padding=include_padding, shards=len(tree.shards),
                      problems=list(tree.details.problems))
    if tree.shard is None:  # the logs are the whole output's
        summary.failures = read_failure_log(tree.root)
    if tree.loose_in_bucket:
        summary.notes["loose files in an S3 output (shards only there; not read)"] += len(tree.loose_in_bucket)
    if sample_size:
        summary.reservoir = Reservoir(sample_size, seed)
    duration = _Duration(tree.details.latent)
    records = iter_records(tree, lambda err: summary.problems.append(str(err)))
    view = reader_view(tree.root)
    for record in records:
        if view is not None and record.is_latent() and _superseded(view, record):
            summary.notes["superseded copies (an interrupted --update or prune; not counted)"] += 1
            continue
        _add(summary, duration, record)
    summary.seconds, summary.seconds_source = duration.result()
    return summary


def _superseded(view: ManifestView, record: Record) -> bool:
    try:
        return view.why_superseded(record.id, record.load_meta()) is not None
    except ReadError:
        return False  # _add reports it


def _add(summary: Summary, duration: _Duration, record: Record) -> None:
    if LATENT not in record.parts:
        return
    try:
        latent = record.load_latent()
        meta = record.load_meta() if META in record.parts else LatentMeta()
    except ReadError as err:
        log.debug("%s", err)
        summary.notes["unreadable"] += 1
        return
    if latent.ndim != 2:
        summary.notes["not 2-D"] += 1
        return
    channels, frames = latent.shape
    mask = meta.mask(frames)
    if mask is None:
        summary.notes["no usable padding_mask (all frames counted)"] += 1
        mask = np.ones(frames, dtype=bool)
    valid = int(mask.sum())
    summary.latents += 1
    summary.per_rank[record.rank] += 1
    summary.shapes[f"{channels}x{frames}"] += 1
    summary.dtypes[str(latent.dtype)] += 1
    summary.frames_total += frames
    summary.frames_valid += valid
    duration.add(meta, valid, padded=valid < frames)

    if summary.moments is None:
        summary.moments = ChannelMoments(channels)
        summary.discrete = bool(summary.latent.is_discrete) or not np.issubdtype(latent.dtype, np.floating)
    if channels != summary.moments.channels:
        summary.notes["other channel count (left out of statistics)"] += 1
        return
    block = latent if summary.include_padding else latent[:, mask]
    if np.issubdtype(block.dtype, np.floating) and not np.isfinite(block).all():
        summary.notes["non-finite values (left out of statistics)"] += 1
        return
    summary.moments.update(block)
    if summary.reservoir is not None:
        summary.reservoir.update(block)
    if STD in record.parts:
        _add_std(summary, record, latent.shape, None if summary.include_padding else mask)


def _add_std(summary: Summary, record: Record, shape: tuple[int, ...], mask: np.ndarray | None) -> None:
    try:
        std = record.load_std()
    except ReadError as err:
        log.debug("%s", err)
        summary.notes["unreadable std sidecar (suggested scale without it)"] += 1
        return
    if std.shape != shape or not np.issubdtype(std.dtype, np.floating) or not np.isfinite(std).all():
        summary.notes["std sidecar of another shape or not finite (suggested scale without it)"] += 1
        return
    block = std if mask is None else std[:, mask]
    summary.std_values += block.size
    summary.std_square_sum += float(np.square(block, dtype=np.float64).sum())
