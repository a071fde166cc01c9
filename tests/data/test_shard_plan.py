"""The epoch plan of streamed shards: every sample read exactly once over all readers, whatever the shard
count, sizes and readers; balanced by bytes; a reproducible shuffle."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from preencode.data.shard_plan import ShardTask, plan_epoch, shard_order, shuffled


def _read(plan: list[list[ShardTask]], counts: list[int]) -> Counter:
    """(shard, position) of every sample each reader keeps, counted over all readers."""
    seen: Counter = Counter()
    for tasks in plan:
        for task in tasks:
            seen.update((task.shard, p) for p in range(counts[task.shard]) if task.keeps(p))
    return seen


@settings(max_examples=200, deadline=None)
@given(counts=st.lists(st.integers(0, 30), min_size=0, max_size=25), units=st.integers(1, 12),
       seed=st.integers(0, 3), epoch=st.integers(0, 3), shuffle=st.booleans(), data=st.data())
def test_every_sample_exactly_once(counts, units, seed, epoch, shuffle, data):
    sizes = data.draw(st.lists(st.integers(1, 10**6), min_size=len(counts), max_size=len(counts)))
    plan = plan_epoch(sizes, units, seed, epoch, shuffle)
    assert len(plan) == units
    seen = _read(plan, counts)
    assert set(seen.values()) <= {1}
    assert sum(seen.values()) == sum(counts)


def test_fewer_shards_than_readers_are_split_by_position():
    plan = plan_epoch([100, 100, 100], units=4, shuffle=False)
    # Three shared shards over four readers: shard 0 goes to readers 0 and 3 (every other sample).
    assert plan == [[ShardTask(0, 2, 0)], [ShardTask(1, 1, 0)], [ShardTask(2, 1, 0)], [ShardTask(0, 2, 1)]]


def test_the_remainder_is_shared_and_the_rest_balanced_by_bytes():
    sizes = [1000] * 8 + [10]  # 9 shards, 4 readers: the small last shard is shared by all
    plan = plan_epoch(sizes, units=4, seed=1)
    loads = [sum(sizes[t.shard] / t.stride for t in tasks) for tasks in plan]
    assert max(loads) - min(loads) < 1
    assert all(ShardTask(8, 4, unit) in tasks for unit, tasks in enumerate(plan))


def test_uneven_sizes_are_balanced_largest_first():
    sizes = [900, 100, 100, 100, 100, 100, 100, 100, 100, 100]  # no remainder over 2 readers
    loads = sorted(sum(sizes[t.shard] for t in tasks) for tasks in plan_epoch(sizes, units=2))
    assert loads == [900, 900]


def test_shard_order_depends_on_seed_and_epoch_only():
    assert shard_order(50, 0, 1, True) == shard_order(50, 0, 1, True)
    assert shard_order(50, 0, 1, True) != shard_order(50, 0, 2, True)
    assert sorted(shard_order(50, 3, 1, True)) == list(range(50)) and shard_order(5, 0, 0, False) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError):
        plan_epoch([1], units=0)


@given(n=st.integers(0, 300), size=st.integers(0, 50), seed=st.integers(0, 5))
def test_the_shuffle_buffer_is_a_reproducible_permutation(n, size, seed):
    out = list(shuffled(range(n), size, np.random.default_rng(seed)))
    assert sorted(out) == list(range(n))
    assert out == list(shuffled(range(n), size, np.random.default_rng(seed)))
    if size <= 1:
        assert out == list(range(n))


def test_the_shuffle_buffer_mixes_beyond_its_size():
    out = list(shuffled(range(1000), 100, np.random.default_rng(0)))
    assert out != list(range(1000))
    assert max(abs(i - v) for i, v in enumerate(out)) > 100  # items can stay in the buffer a long time
