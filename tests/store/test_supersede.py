"""Removing copies that are not current: a shard rewritten without a member (the others' bytes kept), loose files
of a superseded copy deleted only once a current one exists, every copy of a pruned id deleted."""

from __future__ import annotations

import tarfile

import numpy as np

from preencode.store.manifest import ManifestEntry
from preencode.store.meta import LatentMeta
from preencode.store.reader import read_shard
from preencode.store.sample import EncodedSample
from preencode.store.supersede import drop_superseded, rewrite_shard_without
from preencode.store.writer import open_writer


def _sample(index: int, size: int) -> EncodedSample:
    meta = LatentMeta(path=f"/d/{index}.wav", input_fingerprint={"size": size})
    return EncodedSample(index, np.full((2, 4), index, np.float32), meta)


def _write(folder, fmt: str, samples: list[EncodedSample], shard_size: int = 3) -> None:
    writer = open_writer(fmt, folder, shard_size=shard_size)
    for sample in samples:
        writer.write(sample)
    writer.close()


def _members(path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def test_a_shard_is_rewritten_without_the_members_and_an_emptied_one_is_deleted(tmp_path):
    _write(tmp_path / "0", "wds", [_sample(i, 1) for i in range(4)])
    first, second = sorted((tmp_path / "0").glob("*.tar"))
    before = _members(first)
    assert rewrite_shard_without(first, {"0000000000001"}) == 4  # two samples of two files each
    after = _members(first)
    assert after == {name: data for name, data in before.items() if not name.startswith("0000000000001")}
    assert [r.key for r in read_shard(first)] == ["0000000000000", "0000000000002"]
    assert rewrite_shard_without(second, {"0000000000003"}) == 0 and not second.exists()
    assert sorted(p.name for p in (tmp_path / "0").iterdir()) == [first.name]  # no temporary left


def test_a_superseded_copy_goes_only_once_a_current_one_exists_and_a_pruned_id_always(tmp_path):
    out = tmp_path / "out"
    _write(out / "0", "npy", [_sample(0, 1), _sample(1, 1), _sample(2, 1)])
    (out / "0" / "notes.txt").write_text("mine")
    entries = [ManifestEntry(0, "/d/0.wav", {"size": 1}), ManifestEntry(1, "/d/1.wav", {"size": 2}, run=2),
               ManifestEntry(2, "/d/2.wav", {"size": 1}, pruned=2)]
    result = drop_superseded(out, entries)
    assert result.kept == {1}  # changed, no new copy yet: kept
    assert sorted(p.name for p in (out / "0").iterdir()) == ["0000000000000.json", "0000000000000.npy",
                                                               "0000000000001.json", "0000000000001.npy", "notes.txt"]
    _write(out / "1", "wds", [_sample(1, 2)])  # the new copy of id 1, in another rank's shard
    result = drop_superseded(out, entries, {1})
    assert [c.id for c in result.removed] == [1] and not result.kept
    assert not (out / "0" / "0000000000001.npy").exists() and (out / "0" / "notes.txt").read_text() == "mine"
    assert [r.key for r in read_shard(next((out / "1").glob("*.tar")))] == ["0000000000001"]
