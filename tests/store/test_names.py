"""Names of the output format: ids, keys, shard names, temporaries."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from preencode.store.names import (
    ID_DIGITS,
    format_id,
    is_id,
    is_shard,
    is_temporary,
    shard_name,
    shard_number,
    shard_pattern,
    split_member,
    split_name,
    temp_name,
    temp_target,
)

INDICES = st.integers(0, 10**ID_DIGITS - 1)


@given(INDICES)
def test_ids_round_trip_and_sort_like_their_indices(index):
    stem = format_id(index)
    assert len(stem) == ID_DIGITS and is_id(stem) and int(stem) == index
    assert (format_id(index + 1) > stem) if index + 1 < 10**ID_DIGITS else True


@given(st.integers(max_value=-1) | st.integers(min_value=10**ID_DIGITS))
def test_ids_out_of_range_are_refused(index):
    with pytest.raises(ValueError, match="13 digits"):
        format_id(index)


@pytest.mark.parametrize("stem", ["", "123", "00000000000000", "000000000000a", "０００００００００００００"])
def test_what_is_not_an_id(stem):
    assert not is_id(stem)


@pytest.mark.parametrize("name, key, suffix", [
    ("0000000000001.npy", "0000000000001", ".npy"),
    ("0000000000001.std.npz", "0000000000001", ".std.npz"),
    ("0000000000001.std.npy", "0000000000001", ".std.npy"),  # not part of the format: an unknown suffix
    ("notes", "notes", ""),
    ("a/b/0000000000001.json", "a/b/0000000000001", ".json"),  # a tar member keeps its folder in the key
])
def test_split_name_keys_files_up_to_the_first_dot(name, key, suffix):
    assert split_name(name) == (key, suffix)


@given(st.integers(0, 10**8))
def test_shard_names_round_trip_and_sort_like_their_numbers(number):
    name = shard_name(number)
    assert is_shard(name) and shard_number(name) == number and not is_shard(temp_name(name))
    assert name == f"shard-{number:06d}.tar" and shard_name(number + 1) > name if number < 999_999 else True


def test_shard_numbers_of_other_names():
    assert shard_number(f"shard-{format_id(1000)}.tar") == 1000  # named after the first id by earlier versions
    assert shard_number("shard-x.tar") is None and shard_number("0000000000001.npy") is None


@pytest.mark.parametrize("numbers, pattern", [
    ([0], "shard-000000.tar"),
    ([0, 1, 2, 3], "shard-{000000..000003}.tar"),
    ([3, 0, 1], "shard-{{000000..000001},000003}.tar"),
])
def test_shard_patterns_expand_to_the_shards(numbers, pattern):
    import braceexpand

    assert shard_pattern(numbers) == pattern
    assert sorted(braceexpand.braceexpand(pattern)) == [shard_name(n) for n in sorted(numbers)]


@pytest.mark.parametrize("text, split", [
    ("out/0/shard-000000.tar:0000000000001", ("out/0/shard-000000.tar", "0000000000001")),
    ("out/0/shard-000000.tar", ("out/0/shard-000000.tar", None)),
    ("out/0/0000000000001.npy", ("out/0/0000000000001.npy", None)),
    ("C:/x.tar:/y/shard-000001.tar:5", ("C:/x.tar:/y/shard-000001.tar", "5")),
    ("out/0/shard-000000.tar:", ("out/0/shard-000000.tar:", None)),
])
def test_member_references(text, split):
    assert split_member(text) == split


@given(st.text(st.characters(blacklist_characters="/\0"), min_size=1, max_size=40))
def test_temporary_names_are_ours_hidden_and_recognised(name):
    tmp = temp_name(name)
    assert tmp.startswith(".") and tmp.endswith(".tmp") and is_temporary(tmp)
    assert temp_target(tmp) == name
    assert split_name(tmp)[0] == ""  # never grouped with the final file's key


def test_foreign_temporaries_are_temporaries_but_not_ours():
    for name in (".0000000000001.npy.tmp", "x.tmp", ".hidden"):
        assert is_temporary(name) and temp_target(name) is None
    assert not is_temporary("0000000000001.npy")
