"""One epoch of streamed shards: which reader reads which samples, in which order.

A *reader* is one (rank, DataLoader worker) pair, ``unit = rank * workers + worker`` of ``units = world_size *
workers``. Every reader plans the epoch alone from the same inputs (shard sizes, seed, epoch), so no process
talks to another, and over all readers every sample is read exactly once:

* With ``S`` shards and ``U`` readers, ``S = q * U + r``: the ``r`` smallest shards are *shared*, the rest are
  *whole*. Shared shard ``t`` goes to the readers ``u`` with ``u % r == t``; the ``k`` of them take every
  ``k``-th sample, each from its own phase ``u // r`` (sample-level split inside the shard, by position), so a
  few shards, or a remainder that does not divide evenly, still keep every reader busy. Whole shards go to the
  reader with the fewest bytes so far, largest first (bytes stand in for samples: the sizes come from a listing,
  nothing is read to plan).
* Each reader reads its shards in the epoch's shard order (a permutation drawn from ``(seed, epoch)``), and its
  samples pass through a shuffle buffer (:func:`shuffled`, drawn from ``(seed, epoch, unit)``).

Readers get about the same number of bytes, not exactly the same number of samples: train by steps (as
stable-audio-tools does), not by "the end of the shortest rank's epoch".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

T = TypeVar("T")


@dataclass(frozen=True)
class ShardTask:
    """Read shard ``shard`` and keep the samples at positions ``phase, phase + stride, ...`` (of its latents)."""

    shard: int
    stride: int = 1
    phase: int = 0

    def keeps(self, position: int) -> bool:
        return position % self.stride == self.phase


def shard_order(count: int, seed: int, epoch: int, shuffle: bool) -> list[int]:
    """The epoch's shard order: a permutation drawn from ``(seed, epoch)``, or the listing order."""
    if not shuffle:
        return list(range(count))
    return [int(i) for i in np.random.default_rng((seed, epoch)).permutation(count)]


def plan_epoch(sizes: Sequence[int], units: int, seed: int = 0, epoch: int = 0,
               shuffle: bool = True) -> list[list[ShardTask]]:
    """For each of ``units`` readers, its shard tasks for one epoch in reading order.

    Args:
        sizes: the size in bytes of each shard (the listing's order).
        units: readers in all (ranks × workers).

    Raises:
        ValueError: ``units`` < 1.
    """
    if units < 1:
        raise ValueError(f"units must be >= 1, got {units}")
    order = shard_order(len(sizes), seed, epoch, shuffle)
    position = {shard: i for i, shard in enumerate(order)}
    shared_count = len(sizes) % units
    by_size = sorted(order, key=lambda s: (sizes[s], position[s]))
    shared, whole = by_size[:shared_count], by_size[shared_count:]
    tasks: list[list[ShardTask]] = [[] for _ in range(units)]
    load = [0.0] * units
    for unit in range(units):
        if shared:
            t = unit % len(shared)
            stride = len(range(t, units, len(shared)))
            tasks[unit].append(ShardTask(shared[t], stride, unit // len(shared)))
            load[unit] += sizes[shared[t]] / stride
    for shard in sorted(whole, key=lambda s: (-sizes[s], position[s])):
        unit = min(range(units), key=lambda u: (load[u], u))
        tasks[unit].append(ShardTask(shard))
        load[unit] += sizes[shard]
    for unit_tasks in tasks:
        unit_tasks.sort(key=lambda task: position[task.shard])
    return tasks


def shuffled(items: Iterable[T], size: int, rng: np.random.Generator) -> Iterator[T]:
    """``items`` in a random order drawn through a buffer of ``size`` items (``size`` <= 1: unchanged).

    The first ``size`` items fill the buffer; each further item takes the place of a random one, which is
    yielded; the rest is drained in random order. The draws depend only on ``rng`` and the buffer's fill, so
    the same items and seed give the same order.
    """
    if size <= 1:
        yield from items
        return
    buffer: list[T] = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        i = int(rng.integers(len(buffer)))
        out, buffer[i] = buffer[i], item
        yield out
    while buffer:
        i = int(rng.integers(len(buffer)))
        buffer[i], buffer[-1] = buffer[-1], buffer[i]
        yield buffer.pop()
