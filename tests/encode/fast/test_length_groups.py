"""Length-grouped batching: a partition of the indices, deterministic, similar lengths together."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from preencode.encode.fast.length_groups import (
    LengthGroupedBatchSampler,
    length_batcher,
    length_grouped_batches,
)


@settings(max_examples=100, deadline=None)
@given(lengths=st.lists(st.integers(0, 10_000), max_size=300), batch_size=st.integers(1, 17),
       pool=st.one_of(st.none(), st.integers(1, 6)))
def test_batches_cover_every_index_exactly_once(lengths, batch_size, pool):
    batches = length_grouped_batches(lengths, batch_size, pool)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert all(1 <= len(b) <= batch_size for b in batches)
    assert batches == length_grouped_batches(list(lengths), batch_size, pool)


@settings(max_examples=100, deadline=None)
@given(lengths=st.lists(st.integers(0, 1000), min_size=1, max_size=100), batch_size=st.integers(1, 8))
def test_full_sort_orders_batches_by_length(lengths, batch_size):
    batches = length_grouped_batches(lengths, batch_size, pool_batches=None)
    ordered = [lengths[i] for b in batches for i in b]
    assert ordered == sorted(lengths, reverse=True)


def test_pool_bounds_the_look_ahead():
    lengths = list(range(40))  # ascending: a full sort would move the last items first
    batches = length_grouped_batches(lengths, batch_size=4, pool_batches=2)
    for k, batch in enumerate(batches):
        pool = k // 2
        assert all(8 * pool <= i < 8 * (pool + 1) for i in batch)
    assert batches[0] == [7, 6, 5, 4]


def test_grouping_reduces_padding_compared_with_input_order():
    lengths = [1000 if i % 2 else 10 for i in range(64)]
    grouped = length_grouped_batches(lengths, 8)
    cost = sum(max(lengths[i] for i in b) * len(b) for b in grouped)
    naive = sum(max(lengths[i:i + 8]) * 8 for i in range(0, 64, 8))
    assert cost < 0.6 * naive


def test_invalid_arguments():
    with pytest.raises(ValueError):
        length_grouped_batches([1, 2], 0)
    with pytest.raises(ValueError):
        length_grouped_batches([1, 2], 2, pool_batches=0)


def test_sampler_drives_a_dataloader():
    lengths = [5, 1, 9, 3, 7]
    data = torch.arange(5)
    sampler = LengthGroupedBatchSampler(lengths, batch_size=2)
    got = [b.tolist() for b in DataLoader(data, batch_sampler=sampler)]
    assert len(sampler) == 3
    assert got == [[2, 4], [0, 3], [1]]


def test_length_batcher_maps_item_ids():
    lengths = {10: 5, 20: 100, 30: 7, 40: 90}
    make_batches = length_batcher(lengths.__getitem__)
    assert make_batches([10, 20, 30, 40], 2) == [[20, 40], [30, 10]]
    assert make_batches([], 2) == []
