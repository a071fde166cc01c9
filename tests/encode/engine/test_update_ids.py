"""The ids of an update: a pure function of the old manifest and the new sorted input list."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from preencode.encode.engine.update import assign_ids, unchanged

NAMES = [f"/d/{c}.wav" for c in "abcdefghij"]


def _inputs(names: list[str], version: dict[str, int]) -> list[tuple[str, dict]]:
    return [(name, {"size": version.get(name, 0)}) for name in sorted(names)]


def test_a_first_run_numbers_the_sorted_inputs_from_zero():
    result = assign_ids(None, _inputs(NAMES[:4], {}))
    assert result.ids == [0, 1, 2, 3] and result.added == [0, 1, 2, 3] and [e.run for e in result.entries] == [1] * 4


def test_new_inputs_follow_the_largest_id_and_changed_ones_keep_theirs():
    first = assign_ids(None, _inputs(["/d/b.wav", "/d/d.wav", "/d/f.wav"], {}))
    second = assign_ids(first.entries, _inputs(["/d/a.wav", "/d/b.wav", "/d/c.wav", "/d/f.wav"], {"/d/f.wav": 1}),
                        run=2)
    assert second.ids == [3, 0, 4, 2]  # a and c are new (sorted), b unchanged, f changed
    assert (second.added, second.changed) == ([3, 4], [2])
    assert [(e.id, e.vanished) for e in second.vanished] == [(1, 2)]
    assert {e.id: e.run for e in second.entries} == {0: 1, 1: 1, 2: 2, 3: 2, 4: 2}
    third = assign_ids(second.entries, _inputs(["/d/a.wav", "/d/b.wav", "/d/c.wav", "/d/f.wav"], {"/d/f.wav": 1}),
                       run=3, prune=True)
    assert [(e.id, e.pruned, e.vanished) for e in third.pruned] == [(1, 3, None)]
    back = assign_ids(third.entries, _inputs(["/d/d.wav"], {}), run=4)
    assert back.ids == [5]  # a pruned id is never given again: d comes back as a new input


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sets(st.sampled_from(NAMES)), st.dictionaries(st.sampled_from(NAMES), st.integers(0, 2)),
                          st.booleans()), min_size=1, max_size=5))
def test_ids_stay_unique_and_stable_and_a_second_application_changes_nothing(runs):
    entries = None
    given_ids: dict[str, int] = {}
    pruned: set[int] = set()
    for number, (names, version, prune) in enumerate(runs, start=1):
        inputs = _inputs(sorted(names), version)
        result = assign_ids(entries, inputs, run=number, prune=prune)
        assert len(result.ids) == len(inputs) and len(set(result.ids)) == len(result.ids)
        assert len({e.id for e in result.entries}) == len(result.entries)
        assert not set(result.ids) & pruned  # never a pruned id again
        for (name, _), id_ in zip(inputs, result.ids, strict=True):
            if name in given_ids and given_ids[name] not in pruned:
                assert id_ == given_ids[name]  # an input keeps its id
            given_ids[name] = id_
        pruned |= {e.id for e in result.entries if e.pruned is not None}
        again = assign_ids(result.entries, inputs, run=number + 1, prune=prune)  # a re-run after a kill
        assert again.ids == result.ids and unchanged(result.entries, again.entries)
        assert not (again.added or again.changed or again.vanished or again.pruned)
        entries = result.entries


def test_a_manifest_of_before_runs_were_recorded_reads_as_run_one_and_resumes_unchanged(tmp_path):
    from preencode.store.logs import write_manifest
    from preencode.store.manifest import read_entries

    write_manifest(tmp_path, ['{"fingerprint": {"size": 0}, "id": "0000000000000", "path": "/d/a.wav"}',
                              '{"fingerprint": {"size": 0}, "id": "0000000000001", "path": "/d/b.wav"}'])
    old = read_entries(tmp_path)
    assert [(e.id, e.run, e.present) for e in old or []] == [(0, 1, True), (1, 1, True)]
    assert unchanged(old, assign_ids(old, _inputs(NAMES[:2], {}), run=2).entries)  # no --update needed


def test_a_damaged_manifest_is_one_line_with_the_fix(tmp_path):
    import pytest

    from preencode.errors import UserError
    from preencode.store.logs import write_manifest
    from preencode.store.manifest import read_entries

    write_manifest(tmp_path, ['{"fingerprint": {}, "id": "12", "path": "/d/a.wav"}'])
    with pytest.raises(UserError, match=r"manifest.jsonl:1: 'id' must be a 13-digit string.*damaged"):
        read_entries(tmp_path)
