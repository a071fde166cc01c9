"""``preencode verify <output>``: check that every latent of an output tree is complete and consistent.

Checked per latent (loose or inside a ``.tar`` shard): the ``.npy`` is readable, 2-D, finite, has the
channels and dtype the details file announces; its ``.json`` is an object whose ``padding_mask`` is a
0/1 list of the latent's length and whose ``id`` (when present) equals the file name; the name is a
13-digit id, unique across ranks and shards; no ``.npy`` lacks its ``.json`` or the reverse; an
optional ``.std.npz`` holds a finite, non-negative ``std`` of the latent's shape. Over the tree: no
leftover temporaries (names starting with "." or ending in ".tmp"), a readable details file and logs, and
every input of the manifest (pruned ones apart) has a latent, a failure or a rejection record. A copy that
the manifest says is superseded (its input changed, or was pruned, and the run replacing it was interrupted)
is not current data: it is reported as a warning and not counted (:mod:`preencode.store.manifest`).
The files are listed and read by :mod:`preencode.store.reader`, as the training loader reads them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..store.latent_info import LatentInfo
from ..store.logs import read_jsonl
from ..store.manifest import ManifestView
from ..store.names import FAILURES, LATENT, MANIFEST, META, REJECTED, SAMPLE_SUFFIXES, STD, is_id
from ..store.objects import ObjectPath, StorePath
from ..store.reader import ReadError, Record, Tree, iter_records, open_tree
from .failures import read_failure_log

log = logging.getLogger(__name__)


@dataclass
class Verification:
    """The outcome of :func:`verify_tree`.

    Attributes:
        problems: ``"<path>: <what is wrong>"`` lines; the tree is clean when empty.
        warnings: things worth knowing that do not make the tree unusable.
        latents: latents checked.
        shards: tar shards seen.
        passed: the records (``Record.where``) of the latents that passed every check.
    """

    root: StorePath
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    latents: int = 0
    shards: int = 0
    passed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_array(where: str, latent: np.ndarray, info: LatentInfo, problems: list[str]) -> None:
    if latent.ndim != 2:
        problems.append(f"{where}: expected a 2-D array [channels, frames], got shape {list(latent.shape)}")
        return
    floating = np.issubdtype(latent.dtype, np.floating)
    if floating and not np.isfinite(latent).all():
        bad = int((~np.isfinite(latent)).sum())
        problems.append(f"{where}: {bad} non-finite values (NaN or inf)")
    if info.dtype is not None and str(latent.dtype) != info.dtype:
        problems.append(f"{where}: dtype {latent.dtype}, expected {info.dtype} (from {info.source})")
    if info.is_discrete is True and floating:
        problems.append(f"{where}: float array, expected integer tokens (from {info.source})")
    if info.is_discrete is False and not floating:
        problems.append(f"{where}: integer array, expected a continuous latent (from {info.source})")
    expected = info.channels
    if expected is not None and latent.shape[0] != expected:
        what = "num_quantizers" if info.is_discrete else "latent_dim"
        problems.append(f"{where}: {latent.shape[0]} channels, expected {what} {expected} (from {info.source})")


def _check_meta(record: Record, frames: int | None, problems: list[str]) -> None:
    try:
        meta = record.load_meta()
    except ReadError as err:
        problems.append(str(err))
        return
    where = record.location(META)
    stored_id = meta.get("id")
    if stored_id is not None and str(stored_id) != record.id:
        problems.append(f"{where}: \"id\" is {stored_id!r} but the file is named {record.id}")
    if "padding_mask" not in meta:
        problems.append(f"{where}: no padding_mask")
    elif frames is not None and meta.mask(frames) is None:
        mask = meta.get("padding_mask")
        length = len(mask) if isinstance(mask, list) else "not a list"
        problems.append(f"{where}: padding_mask must be {frames} values of 0 or 1 (the latent's frames), "
                        f"got length {length}")


def _check_std(record: Record, shape: tuple[int, ...] | None, problems: list[str]) -> None:
    try:
        std = record.load_std()
    except ReadError as err:
        problems.append(str(err))
        return
    where = record.location(STD)
    if shape is not None and std.shape != shape:
        problems.append(f"{where}: std shape {list(std.shape)} differs from the latent's {list(shape)}")
    if np.issubdtype(std.dtype, np.floating) and not (np.isfinite(std).all() and (std >= 0).all()):
        problems.append(f"{where}: std has non-finite or negative values")


def _check_like_first(where: str, latent: np.ndarray, info: LatentInfo, first: dict[str, str],
                      problems: list[str]) -> None:
    """Without the details file's numbers, every latent must at least match the first one's channels and dtype."""
    if latent.ndim != 2:
        return
    if not first:
        first.update(where=where, channels=str(latent.shape[0]), dtype=str(latent.dtype))
        return
    if info.channels is None and str(latent.shape[0]) != first["channels"]:
        problems.append(f"{where}: {latent.shape[0]} channels, but {first['where']} has {first['channels']}")
    if info.dtype is None and str(latent.dtype) != first["dtype"]:
        problems.append(f"{where}: dtype {latent.dtype}, but {first['where']} has {first['dtype']}")


def check_record(record: Record, info: LatentInfo, seen: dict[str, str], first: dict[str, str],
                 result: Verification) -> None:
    """All checks of one latent; problems are appended to ``result``.

    Args:
        seen: id -> where it was first seen (updated), to find duplicates across ranks and shards.
        first: channels and dtype of the first latent read (filled on first use), for trees whose
            details file does not state them.
    """
    problems = result.problems
    before = len(problems)
    parts = set(record.parts)
    for suffix in sorted(parts - set(SAMPLE_SUFFIXES)):
        result.warnings.append(f"{record.location(suffix)}: unexpected file (not part of the output format)")
    if not parts & set(SAMPLE_SUFFIXES):
        return
    if LATENT not in parts:
        present = ", ".join(sorted(parts & {META, STD}))
        problems.append(f"{record.where}: orphan {present} without its {LATENT}")
        return
    result.latents += 1
    if META not in parts:
        problems.append(f"{record.location(LATENT)}: orphan {LATENT} without its {META}")
    if not is_id(record.id):
        problems.append(f"{record.location(LATENT)}: file name {record.id!r} is not a 13-digit id")
    if record.id in seen:
        problems.append(f"{record.location(LATENT)}: duplicate id {record.id} (also at {seen[record.id]})")
    else:
        seen[record.id] = record.location(LATENT)

    shape: tuple[int, ...] | None = None
    try:
        latent = record.load_latent()
    except ReadError as err:
        problems.append(str(err))
    else:
        _check_array(record.location(LATENT), latent, info, problems)
        _check_like_first(record.location(LATENT), latent, info, first, problems)
        shape = latent.shape
    frames = shape[1] if shape is not None and len(shape) == 2 else None
    if META in parts:
        _check_meta(record, frames, problems)
    if STD in parts:
        _check_std(record, shape, problems)
    if len(problems) == before:
        result.passed.append(record.where)


def verify_tree(root: str | Path | ObjectPath, model_config: str | Path | None = None) -> Verification:
    """Check a whole output tree, a folder or an ``s3://`` prefix (one pass, one latent in memory at a time;
    on S3 each shard is read front to back once).

    Raises:
        UserError: ``root`` is missing or not a folder.
        StorageError: S3 cannot be reached.
    """
    tree: Tree = open_tree(root, model_config)
    result = Verification(root=tree.root if tree.shard is None else Path(str(root)), shards=len(tree.shards))
    details = tree.details
    if not details.exists:
        result.warnings.append(f"{details.path}: missing; shapes and dtypes are checked for consistency only")
    elif details.is_reference:
        result.warnings.append(f"{details.path}: written by stable-audio-tools (no latent section); fewer checks")
    result.problems.extend(details.problems)
    result.warnings.extend(details.warnings)
    result.problems.extend(f"{path}: leftover temporary file (an interrupted write?)" for path in tree.temporaries)
    result.warnings.extend(f"{path}: unexpected folder in a rank folder" for path in tree.unexpected)
    result.problems.extend(f"{record.location(LATENT if LATENT in record.parts else next(iter(record.parts)))}: "
                           "a loose file in an S3 output, which holds shards only (one request per file would "
                           "make it too slow to read); not read" for record in tree.loose_in_bucket)
    if tree.shard is None:
        result.problems.extend(read_failure_log(tree.root).bad_lines)

    info = details.latent
    seen: dict[str, str] = {}
    first: dict[str, str] = {}
    view = _manifest_view(tree.root, result)
    for record in iter_records(tree, lambda err: result.problems.append(str(err))):
        why = _superseded(view, record)
        if why is not None:
            result.warnings.append(f"{record.where}: superseded, {why}; not current data (the next encode run of "
                                   "this output removes it)")
            continue
        check_record(record, info, seen, first, result)
    if tree.shard is not None:  # one shard: its members only
        if result.latents == 0:
            result.problems.append(f"{root}: no latents found")
        return result
    _check_coverage(tree.root, view, seen, result, details.encode_command(str(root)))
    if not tree.ranks:
        result.problems.append(f"{tree.root}: no rank folders (0/, 1/, ...); is this an encode output folder?")
    elif result.latents == 0:
        result.problems.append(f"{tree.root}: no latents found")
    return result


def _logged_indices(path: StorePath) -> set[int]:
    records = read_jsonl(path, [])  # malformed lines are reported by read_failure_log
    return {r["index"] for r in records if isinstance(r.get("index"), int)}


def _manifest_view(root: StorePath, result: Verification) -> ManifestView | None:
    try:
        return ManifestView.of(root)
    except UserError as err:
        result.problems.append(err.message.rstrip("."))
        return None


def _superseded(view: ManifestView | None, record: Record) -> str | None:
    if view is None or not record.is_latent() or view.entry(record.id) is None:
        return None
    try:
        return view.why_superseded(record.id, record.load_meta())
    except ReadError:
        return None  # check_record reports it


def _check_coverage(root: StorePath, view: ManifestView | None, seen: dict[str, str], result: Verification,
                    command: str | None, shown: int = 5) -> None:
    """Every input of the manifest (pruned ones apart) must have a latent, a failure record or a rejection
    record."""
    manifest = root / MANIFEST
    if view is None:
        return
    inputs = {f"{e.id:013d}": e.path for e in view.entries.values() if e.pruned is None}
    logged = _logged_indices(root / FAILURES) | _logged_indices(root / REJECTED)
    missing = [i for i in sorted(inputs) if i not in seen and int(i) not in logged]
    if missing:
        examples = ", ".join(f"{i} ({inputs[i]})" for i in missing[:shown])
        more = f" and {len(missing) - shown} more" if len(missing) > shown else ""
        finish = f"; to finish them, run: {command}" if command else "; re-run the encode command to finish them"
        result.problems.append(f"{manifest}: {len(missing)} input(s) have no latent and no failure or rejection "
                               f"record: {examples}{more}{finish}")
    unknown = sorted(set(seen) - {f"{i:013d}" for i in view.entries})
    if unknown:
        result.problems.append(f"{manifest}: {len(unknown)} latent id(s) are not in the manifest, e.g. {unknown[0]}")


def format_result(result: Verification) -> str:
    lines = [f"warning: {w}" for w in result.warnings]
    if result.ok:
        lines.append(f"OK: {result.latents:,} latents in {result.root} verified"
                     + (f" ({result.shards} tar shards)" if result.shards else "") + ", no problems.")
    else:
        lines.extend(result.problems)
        count = len(result.problems)
        lines.append(f"FAILED: {count:,} problem{'' if count == 1 else 's'} in {result.root} "
                     f"({result.latents:,} latents checked).")
    return "\n".join(lines)
