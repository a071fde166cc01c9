"""What a resume skips is checked cheaply: a damaged sample or shard is found, not trusted.

Before issue 11, resume took any ``<id>.npy`` with a ``<id>.json`` as done: a truncated latent was reported
complete, and a truncated committed shard stopped the run with an error.
"""

from __future__ import annotations

import io

import numpy as np

from preencode.store.names import LATENT
from preencode.store.reader import read_shard
from preencode.store.resume import Expected, remove_damaged, scan_done
from tests.store.trees import details, make_items, write_tree

EXPECTED = Expected.from_details(details())


def test_expected_layout_comes_from_details():
    assert Expected(channels=4, dtype="float32", frames=20, std=False) == EXPECTED
    full = details()
    full["mode"] = {"full_length": True}
    assert Expected.from_details(full).frames is None


def test_healthy_tree_is_all_done(tmp_path):
    root = write_tree(tmp_path / "out", make_items(ranks=(3, 2)))
    scan = scan_done(root, EXPECTED)
    assert scan.done == {0, 1, 2, 10**10, 10**10 + 1} and not scan.damaged  # ids "001" + 10 digits on rank 1


def test_damaged_loose_samples_are_found_and_removed(tmp_path):
    items = make_items(ranks=(5,))
    root = write_tree(tmp_path / "out", items)
    folder = root / "0"
    ids = sorted(p.name for p in folder.glob("*.npy"))
    truncated, wrong_dtype, bad_json, short_mask, good = ids
    data = (folder / truncated).read_bytes()
    (folder / truncated).write_bytes(data[:-7])
    buf = io.BytesIO()
    np.save(buf, items[1].latent.astype(np.float64))
    (folder / wrong_dtype).write_bytes(buf.getvalue())
    (folder / bad_json.replace(LATENT, ".json")).write_text("{not json")
    meta_path = folder / short_mask.replace(LATENT, ".json")
    meta_path.write_text(meta_path.read_text().replace('"padding_mask": [1, ', '"padding_mask": ['))
    (folder / "0000000000001.txt").write_text("a user's note sharing the id's name")
    scan = scan_done(root, EXPECTED)
    assert scan.done == {int(good[:-4])}
    reasons = " | ".join(scan.damaged)
    for what in ("where its header says", "dtype float64", "not valid JSON", "padding_mask has 19 values"):
        assert what in reasons
    remove_damaged(scan)
    kept = sorted(["0000000000001.txt", good, good.replace(LATENT, ".json")])
    assert sorted(p.name for p in folder.iterdir()) == kept


def test_a_shard_with_a_damaged_member_or_a_truncated_end_is_encoded_again(tmp_path):
    root = write_tree(tmp_path / "out", make_items(ranks=(3, 3)), shards=True)
    first, second = sorted(root.glob("*/shard-*.tar"))
    records = read_shard(first)
    part = records[1].parts[LATENT]
    with open(first, "r+b") as f:  # overwrite the member's npy header: its size no longer matches
        f.seek(part.offset)
        f.write(b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (4, 99), }".ljust(128))
    data = second.read_bytes()
    second.write_bytes(data[:len(data) // 2])
    scan = scan_done(root, EXPECTED)
    assert scan.done == set() and len(scan.damaged) == 2 and scan.remove == [first, second]
    assert "the 3 samples of" in scan.damaged[0]
    remove_damaged(scan)
    assert not first.exists() and not second.exists()


def test_missing_std_sidecar_is_damage_when_the_tree_stores_one(tmp_path):
    root = write_tree(tmp_path / "out", make_items(ranks=(2,), with_std=True))
    with_std = Expected(4, "float32", 20, std=True)
    assert len(scan_done(root, with_std).done) == 2
    next((root / "0").glob("*.std.npz")).unlink()
    assert len(scan_done(root, with_std).done) == 1
