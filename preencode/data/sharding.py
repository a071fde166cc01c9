"""Splitting a list of items over ranks and dataloader workers, every item exactly once.

Splits are contiguous and balanced (sizes differ by at most one), so that neighbouring items (files
of one folder, members of one tar shard) stay with one worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def split_range(n: int, parts: int, part: int) -> range:
    """The ``part``-th of ``parts`` contiguous, balanced pieces of ``range(n)``.

    Raises:
        ValueError: ``n`` < 0, ``parts`` < 1 or ``part`` outside ``[0, parts)``.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if parts < 1:
        raise ValueError(f"parts must be >= 1, got {parts}")
    if not 0 <= part < parts:
        raise ValueError(f"part must be in [0, {parts}), got {part}")
    return range(part * n // parts, (part + 1) * n // parts)


def split_list(items: Sequence[T], parts: int, part: int) -> list[T]:
    """The ``part``-th of ``parts`` contiguous, balanced pieces of ``items`` (see :func:`split_range`)."""
    share = split_range(len(items), parts, part)
    return list(items[share.start:share.stop])


def split_indices(n: int, world_size: int, rank: int, num_workers: int = 1, worker_id: int = 0) -> range:
    """Indices of ``range(n)`` for one (rank, worker): first split over ranks, then the rank's
    share over its workers. Over all ranks and workers every index appears exactly once.

    Raises:
        ValueError: a count < 1 or an id out of range.
    """
    ranks = split_range(n, world_size, rank)
    mine = split_range(len(ranks), num_workers, worker_id)
    return ranks[mine.start:mine.stop]
