"""Every writer stores the same samples with the same bytes; the one reader reads them all; ``verify`` and
the training dataset accept the same latents, whatever was damaged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from preencode.data.config import parse_dataset_config
from preencode.data.loaders import build_pre_encoded_dataset
from preencode.store.layout import clean_leftovers, done_indices
from preencode.store.names import LATENT, META, STD, temp_name
from preencode.store.reader import iter_records, open_tree
from preencode.tools.verify import verify_tree
from tests.store.trees import make_items, write_tree

LAYOUTS = [("npy", False), ("npy", True), ("wds", False), ("wds", True)]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PREENCODE_CACHE_DIR", str(tmp_path / "cache"))


def _records(root: Path) -> dict:
    return {r.id: r for r in iter_records(open_tree(root), on_shard_error=pytest.fail)}


def test_each_writer_stores_the_same_samples_and_the_reader_reads_them(tmp_path):
    parts_by_layout = {}
    for fmt, with_std in LAYOUTS:
        items = make_items(with_std=with_std)
        root = write_tree(tmp_path / f"{fmt}-{with_std}", items, shards=fmt == "wds")
        records = _records(root)
        assert sorted(records) == sorted(it.id for it in items)
        assert done_indices(root) == {int(it.id) for it in items}
        for item in items:
            record = records[item.id]
            assert record.in_shard == (fmt == "wds") and record.rank == str(item.rank)
            assert set(record.parts) == ({LATENT, META, STD} if with_std else {LATENT, META})
            latent = record.load_latent()
            np.testing.assert_array_equal(latent, item.latent)
            assert latent.dtype == item.latent.dtype
            assert record.load_meta() == item.meta()
            if with_std:
                np.testing.assert_array_equal(record.load_std(), item.std)
        parts_by_layout[fmt, with_std] = {(i, s): r.read_bytes(s) for i, r in records.items() for s in r.parts}
        assert verify_tree(root).ok
    # the files' bytes do not depend on the writer
    assert parts_by_layout["npy", False] == parts_by_layout["wds", False]
    assert parts_by_layout["npy", True] == parts_by_layout["wds", True]


def _dataset(root: Path):
    config = parse_dataset_config({"dataset_type": "pre_encoded", "datasets": [{"id": "t", "path": str(root)}]})
    return build_pre_encoded_dataset(config)


def _damaged_tree(root: Path) -> tuple[set[str], Path]:
    """A tree of loose files (ranks 0, 1) and shards (rank 2), then damaged file by file. Returns the ids
    that must stay readable, and a latent beside which a ``.std.npy`` (not part of the format) was put."""
    items = make_items(ranks=(4, 3), with_std=True)
    write_tree(root, items)
    write_tree(root / "shards", make_items(ranks=(0, 0, 3), seed=1, with_std=True), shards=True)
    shutil.move(root / "shards" / "2", root / "2")
    shutil.rmtree(root / "shards")
    r0, r1, r2 = root / "0", root / "1", root / "2"
    (r0 / "0000000000000.npy").unlink()  # an orphan .json (and its sidecar): not a latent
    (r0 / "0000000000001.json").unlink()  # an orphan .npy
    with open(r0 / "0000000000002.npy", "r+b") as f:  # truncated
        f.truncate(100)
    (r1 / "0010000000000.std.npz").write_bytes(b"not a zip")  # a damaged sidecar
    (r1 / "0010000000001.json").write_text("{not json")
    (r1 / "0010000000002.std.npz").rename(r1 / "0010000000002.std.npy")  # the wrong sidecar name
    (r1 / temp_name("0010000000009.npy")).write_bytes((r1 / "0010000000002.npy").read_bytes())
    (r1 / temp_name("0010000000009.json")).write_text("{}")  # a killed run's temporaries
    (r1 / "notes.txt").write_text("a file of the user's")
    shard = next(r2.glob("*.tar"))
    members = {r.id: r for r in _records(root).values() if r.in_shard}
    spoiled = members["0020000000001"].parts[LATENT]
    with open(shard, "r+b") as f:  # the latent member's bytes overwritten in place: not an .npy any more
        f.seek(spoiled.offset)
        f.write(b"\0" * 16)
    good = {"0000000000003", "0010000000002", "0020000000000", "0020000000002"}
    return good, r1 / "0010000000002"


def test_verify_and_the_training_dataset_accept_the_same_latents(tmp_path, caplog):
    root = tmp_path / "out"
    good, no_std = _damaged_tree(root)
    result = verify_tree(root)
    passed = set(result.passed)
    dataset = _dataset(root)
    accepted = set()
    for i, record in enumerate(dataset.records):
        sample = dataset[i]
        if sample is not None:
            accepted.add(record.where)
        if record.where == str(no_std):  # the .std.npy is not read as a posterior std
            assert torch.equal(sample[0], torch.from_numpy(record.load_latent()))
    assert passed == accepted
    assert {w.rpartition("/")[2].rpartition(":")[2] for w in accepted} == good
    assert any(w.endswith("0010000000002.std.npy: unexpected file (not part of the output format)")
               for w in result.warnings)
    assert sum("leftover temporary" in p for p in result.problems) == 2


def test_resume_keeps_exactly_what_the_readers_accept_as_complete(tmp_path):
    root = tmp_path / "out"
    _damaged_tree(root)
    clean_leftovers(root)
    names = sorted(p.name for p in (root / "0").iterdir())
    assert names == ["0000000000002.json", "0000000000002.npy", "0000000000002.std.npz",
                     "0000000000003.json", "0000000000003.npy", "0000000000003.std.npz"]
    assert not any(p.name.startswith(".") for p in (root / "1").iterdir())
    assert (root / "1" / "notes.txt").exists()  # not ours: left alone
    # files that exist are done (content checks are verify's job); the orphans are gone
    assert done_indices(root) == {2, 3, 10**10, 10**10 + 1, 10**10 + 2, 2 * 10**10, 2 * 10**10 + 1, 2 * 10**10 + 2}


def test_reference_output_is_read_by_every_reader(tmp_path):
    reference = Path(__file__).parents[1] / "data" / "fixtures" / "reference_output"
    nested = tmp_path / "data" / "deeper" / "ref"
    shutil.copytree(reference, nested)
    tree = open_tree(nested)
    assert tree.details.is_reference and not tree.details.problems
    assert verify_tree(nested).ok
    records = _records(nested)
    assert sorted(records) == ["0000000000000", "0000000000001", "0000000010000", "0000000010001",
                               "0000000020000"]
    dataset = _dataset(tmp_path / "data")  # any folder depth
    assert len(dataset) == 5 and all(dataset[i] is not None for i in range(5))
    for i, record in enumerate(dataset.records):
        meta = json.loads((Path(record.where).parent / f"{record.id}.json").read_text())
        latent, info = dataset[i]
        assert latent.shape == (4, 8) and info["relpath"] == meta["relpath"] and info["load_time"] == meta["load_time"]


@pytest.mark.parametrize("cut", [700, 1500, "in the last member"])
def test_a_shard_cut_short_is_unreadable_both_ways(tmp_path, cut):
    """tarfile reads a header cut short as the end of the archive: the reader checks for the end blocks, so a
    truncated shard is never taken for a shorter complete one (listing and streaming alike)."""
    from preencode.store.reader import ReadError, read_shard, stream_shard

    write_tree(tmp_path, make_items(ranks=(3,)), shards=True)
    shard = next((tmp_path / "0").glob("*.tar"))
    records = read_shard(shard)
    assert [r.key for r in records] == [r.key for r in stream_shard(shard)]
    if cut == "in the last member":
        last = max((part for r in records for part in r.parts.values()), key=lambda part: part.offset)
        cut = last.offset + last.size // 2
    shard.write_bytes(shard.read_bytes()[:cut])
    with pytest.raises(ReadError, match="truncated"):
        read_shard(shard)
    with pytest.raises(ReadError, match="truncated"):
        list(stream_shard(shard))
