"""Every name of the output format, in one place.

::

    <output>/details.json                 what made the tree (see :mod:`preencode.store.details`)
    <output>/manifest.jsonl               the inputs the ids refer to (see :mod:`preencode.store.manifest`)
    <output>/failures.jsonl, rejected.jsonl
    <output>/preencode.lock               held by the run writing the tree (see :mod:`preencode.store.lock`)
    <output>/<rank>/<id>.npy              latent [latent_dim, N] (tokens [n_q, N] when discrete)
    <output>/<rank>/<id>.json             its metadata (see :class:`preencode.store.meta.LatentMeta`)
    <output>/<rank>/<id>.std.npz          optional posterior std (array ``std``, the latent's shape)
    <output>/<rank>/shard-000000.tar      --output-format wds: the same files as tar members; shards are
                                          numbered per rank from 000000, in the order they were written
    <output>/shards.txt                   --output-format wds: every shard, one relative path per line
    <shard>.tar:<id>                      how a command line names one latent inside a shard

Files that belong together share a *key*: the name up to its first dot, as WebDataset groups tar
members. ``<id>.std.npy`` is not part of the format: a loader that takes every ``.npy`` (as
stable-audio-tools' does) would mistake it for a latent, so the sidecar is an ``.npz``.

Every file is written under a temporary name first (:func:`temp_name`): a leading dot, so that
loaders skip it, and a ``.preencode-<pid>.tmp`` ending that says who wrote it.
"""

from __future__ import annotations

import os
import re

ID_DIGITS = 13

DETAILS = "details.json"
MANIFEST = "manifest.jsonl"
FAILURES = "failures.jsonl"
REJECTED = "rejected.jsonl"
#: The list of an output's tar shards (``--output-format wds``), one path relative to the output per line.
SHARD_LIST = "shards.txt"
#: Files at the root of an output tree, besides the rank folders.
ROOT_FILES = (DETAILS, MANIFEST, FAILURES, REJECTED, SHARD_LIST)
#: The lock file of the run writing a tree: no part of a finished tree (removed when the run ends).
LOCK = "preencode.lock"
#: A list of latent paths at a dataset root that replaces the folder scan (stable-audio-tools' convention).
FILELIST = "filelist.txt"

LATENT = ".npy"
META = ".json"
STD = ".std.npz"
#: The suffixes of one sample's files, in the order a shard holds them.
SAMPLE_SUFFIXES = (LATENT, META, STD)

SHARD_PREFIX = "shard-"
SHARD_SUFFIX = ".tar"
SHARD_DIGITS = 6
#: Separates a shard's path from a member's key on the command line: ``out/0/shard-000000.tar:<id>``.
MEMBER_SEPARATOR = ":"

_TEMP_MARK = ".preencode-"
_TEMP_SUFFIX = ".tmp"
_OWN_TEMP = re.compile(r"\.(?P<name>.+)\.preencode-[0-9]+\.tmp", re.DOTALL)
_EARLIER_TEMP = re.compile(r"\.(?P<name>.+)\.tmp", re.DOTALL)  # what versions before 0.1 wrote


def format_id(index: int) -> str:
    """The file name stem of input ``index``: its position in the sorted input list, 13 digits.

    Raises:
        ValueError: ``index`` is negative or does not fit in 13 digits.
    """
    if not 0 <= index < 10**ID_DIGITS:
        raise ValueError(f"index {index} does not fit in {ID_DIGITS} digits")
    return f"{index:0{ID_DIGITS}d}"


def is_id(key: str) -> bool:
    """Whether ``key`` is a 13-digit id as :func:`format_id` writes it."""
    return len(key) == ID_DIGITS and key.isascii() and key.isdigit()


def is_rank_dir(name: str) -> bool:
    """Rank folders are named by the global rank that wrote them: ``0``, ``1``, ..."""
    return name.isascii() and name.isdigit()


def split_name(name: str) -> tuple[str, str]:
    """``"0000000000001.std.npz"`` -> ``("0000000000001", ".std.npz")``: the key up to the first dot of the
    base name (a member's folder stays in the key, as WebDataset does)."""
    directory, _, base = name.rpartition("/")
    stem, dot, rest = base.partition(".")
    key = f"{directory}/{stem}" if directory else stem
    return key, dot + rest


def shard_name(number: int) -> str:
    """The file name of a rank's shard ``number`` (0, 1, ... in the order the rank wrote them): ``shard-000000.tar``.

    Raises:
        ValueError: ``number`` is negative.
    """
    if number < 0:
        raise ValueError(f"shard number {number} is negative")
    return f"{SHARD_PREFIX}{number:0{SHARD_DIGITS}d}{SHARD_SUFFIX}"


def is_shard(name: str) -> bool:
    """A committed shard's file name (its temporary starts with a dot)."""
    return name.startswith(SHARD_PREFIX) and name.endswith(SHARD_SUFFIX)


def shard_number(name: str) -> int | None:
    """The number of a shard named by :func:`shard_name` (or by earlier versions, after their first id), else None."""
    digits = name[len(SHARD_PREFIX):-len(SHARD_SUFFIX)] if is_shard(name) else ""
    return int(digits) if digits.isascii() and digits.isdigit() else None


def shard_pattern(numbers: list[int]) -> str:
    """The brace pattern (as WebDataset and ``braceexpand`` expand it) of a rank's shards, e.g.
    ``shard-{000000..000009}.tar``; runs of numbers become ranges, gaps a comma list."""
    if not numbers:
        raise ValueError("no shards")
    ordered = sorted(set(numbers))
    runs: list[tuple[int, int]] = []
    for n in ordered:
        if runs and n == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    width = SHARD_DIGITS

    def text(run: tuple[int, int]) -> str:
        low, high = run
        return f"{low:0{width}d}" if low == high else f"{{{low:0{width}d}..{high:0{width}d}}}"

    if len(runs) == 1:
        return f"{SHARD_PREFIX}{text(runs[0])}{SHARD_SUFFIX}"
    return f"{SHARD_PREFIX}{{{','.join(text(r) for r in runs)}}}{SHARD_SUFFIX}"


def split_member(text: str) -> tuple[str, str | None]:
    """``"out/0/shard-000000.tar:0000000000001"`` -> ``("out/0/shard-000000.tar", "0000000000001")``; any other
    path -> ``(text, None)``."""
    marker = SHARD_SUFFIX + MEMBER_SEPARATOR
    path, found, key = text.rpartition(marker)
    if not found or not key:
        return text, None
    return path + SHARD_SUFFIX, key


def temp_name(name: str) -> str:
    """The temporary name under which ``name`` is written before it is renamed into place."""
    return f".{name}{_TEMP_MARK}{os.getpid()}{_TEMP_SUFFIX}"


def temp_target(name: str) -> str | None:
    """The final name a temporary of ours stands for (``None`` when ``name`` is not one)."""
    match = _OWN_TEMP.fullmatch(name)
    return match.group("name") if match else None


def is_temporary(name: str) -> bool:
    """Names that are never part of a finished tree: a leading dot or a ``.tmp`` ending (ours, and those of
    earlier versions and other tools)."""
    return name.startswith(".") or name.endswith(_TEMP_SUFFIX)


def is_sample_file(name: str) -> bool:
    """A sample's file as a writer names it: ``<13-digit id>`` plus one of :data:`SAMPLE_SUFFIXES`."""
    key, suffix = split_name(name)
    return "/" not in key and is_id(key) and suffix in SAMPLE_SUFFIXES


def _own_temp_target(name: str) -> str | None:
    """The final name of a temporary written by this or an earlier version (``.<name>.tmp``)."""
    match = _OWN_TEMP.fullmatch(name) or _EARLIER_TEMP.fullmatch(name)
    return match.group("name") if match else None


def is_own_rank_file(name: str) -> bool:
    """Whether a file in a rank folder has a name that preencode writes there: a sample's file, a shard,
    or the temporary of either. Nothing else in a rank folder is ever deleted."""
    target = _own_temp_target(name)
    if target is not None:
        return is_sample_file(target) or is_shard(target)
    return is_sample_file(name) or is_shard(name)


def is_own_root_file(name: str) -> bool:
    """Whether a file at the root of an output has a name that preencode writes there: a root file, the
    lock, or the temporary of a root file."""
    target = _own_temp_target(name)
    if target is not None:
        return target in ROOT_FILES
    return name in ROOT_FILES or name == LOCK


def is_own_temporary(name: str) -> bool:
    """A temporary of one of our files (rank or root), left by a killed run of this or an earlier version."""
    return _own_temp_target(name) is not None and (is_own_rank_file(name) or is_own_root_file(name))
