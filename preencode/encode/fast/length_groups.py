"""Length-aware batching: items of similar content length share a batch.

With padding skipped (:mod:`.padding`) a batch costs as much as its longest item, so grouping
similar lengths saves the compute a short clip would otherwise spend next to a long one. Batches
only decide what is encoded together; ids and outputs never depend on them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from torch.utils.data import Sampler

DEFAULT_POOL_BATCHES = 64


def length_grouped_batches(lengths: Sequence[int], batch_size: int,
                           pool_batches: int | None = DEFAULT_POOL_BATCHES) -> list[list[int]]:
    """Group item indices into batches of at most ``batch_size`` items of similar length.

    Indices are taken in order in pools of ``pool_batches * batch_size`` items (all at once when
    ``pool_batches`` is None); each pool is sorted by length, longest first (ties by index), and cut
    into batches. The look-ahead is bounded so that a streamed dataset's order is roughly kept.
    Deterministic; every index appears in exactly one batch.

    Args:
        lengths: content length (samples) of item ``i`` at position ``i``.
        batch_size: at least 1.
        pool_batches: look-ahead in batches, at least 1, or None for one pool over everything.

    Raises:
        ValueError: ``batch_size`` or ``pool_batches`` below 1.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if pool_batches is not None and pool_batches < 1:
        raise ValueError(f"pool_batches must be at least 1 or None, got {pool_batches}")
    pool = len(lengths) if pool_batches is None else pool_batches * batch_size
    pool = max(pool, 1)
    batches: list[list[int]] = []
    for start in range(0, len(lengths), pool):
        indices = sorted(range(start, min(start + pool, len(lengths))), key=lambda i: (-lengths[i], i))
        batches += [indices[i:i + batch_size] for i in range(0, len(indices), batch_size)]
    return batches


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """A ``batch_sampler`` for :class:`torch.utils.data.DataLoader` over :func:`length_grouped_batches`.

    Example: ``DataLoader(dataset, batch_sampler=LengthGroupedBatchSampler(lengths, 8))``.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int,
                 pool_batches: int | None = DEFAULT_POOL_BATCHES) -> None:
        self.batches = length_grouped_batches(lengths, batch_size, pool_batches)

    def __iter__(self) -> Iterator[list[int]]:
        return iter([list(b) for b in self.batches])

    def __len__(self) -> int:
        return len(self.batches)


def length_batcher(length_of: Callable[[int], int], pool_batches: int | None = DEFAULT_POOL_BATCHES
                   ) -> Callable[[list[int], int], list[list[int]]]:
    """A ``make_batches(order, batch_size)`` that groups the given item ids by content length.

    Args:
        length_of: content length (samples after crop, before padding) of an item id.
        pool_batches: see :func:`length_grouped_batches`.

    Returns:
        A function mapping item ids in their order to batches of item ids.
    """
    def make_batches(order: list[int], batch_size: int) -> list[list[int]]:
        positions = length_grouped_batches([length_of(i) for i in order], batch_size, pool_batches)
        return [[order[p] for p in batch] for batch in positions]
    return make_batches
