"""Splitting over any world size x worker count yields every item exactly once."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from preencode.data.sharding import split_indices, split_list, split_range


@settings(max_examples=300, deadline=None)
@given(n=st.integers(0, 500), world=st.integers(1, 17), workers=st.integers(1, 9))
def test_every_index_exactly_once(n, world, workers):
    seen = []
    for rank in range(world):
        for worker in range(workers):
            seen.extend(split_indices(n, world, rank, workers, worker))
    assert sorted(seen) == list(range(n))
    assert len(seen) == len(set(seen))


@settings(max_examples=100, deadline=None)
@given(n=st.integers(0, 1000), parts=st.integers(1, 64))
def test_parts_are_balanced_and_ordered(n, parts):
    pieces = [split_range(n, parts, p) for p in range(parts)]
    sizes = [len(p) for p in pieces]
    assert max(sizes) - min(sizes) <= 1
    assert [i for p in pieces for i in p] == list(range(n))


def test_items_split_over_a_plan():
    items = [f"item{i}" for i in range(10)]
    shares = [[items[i] for i in split_indices(len(items), 2, r, 2, w)] for r in range(2) for w in range(2)]
    assert shares == [items[0:2], items[2:5], items[5:7], items[7:10]]


@settings(max_examples=100, deadline=None)
@given(pending=st.lists(st.integers(0, 10**6), unique=True, max_size=200).map(sorted), world=st.integers(1, 9))
def test_split_list_gives_each_rank_a_contiguous_share_of_the_pending_ids(pending, world):
    """The engine splits the pending ids over ranks with the same rule as the workers split items."""
    shares = [split_list(pending, world, rank) for rank in range(world)]
    assert [i for share in shares for i in share] == pending
    assert all(share == [pending[i] for i in split_range(len(pending), world, rank)] for rank, share in
               enumerate(shares))
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


@pytest.mark.parametrize("args", [(5, 0, 0), (5, 2, 2), (-1, 1, 0), (5, 2, -1)])
def test_bad_arguments_raise(args):
    with pytest.raises(ValueError):
        split_range(*args)
