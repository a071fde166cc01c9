"""PreEncodedDataset and its loader against hand-built folders."""

from __future__ import annotations

import io
import json
import logging
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from preencode.data.config import parse_dataset_config
from preencode.data.loaders import build_pre_encoded_dataset, collate_latents, make_loader
from preencode.data.pre_encoded import LatentSource, PreEncodedDataset, latent_channels
from preencode.errors import DatasetError
from preencode.store import index as latent_index


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PREENCODE_CACHE_DIR", str(tmp_path / "cache"))


def write_latent(root: Path, rank: int, idx: int, latents: np.ndarray, mask=None, ext="npy", **meta) -> Path:
    folder = root / str(rank)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{idx:013d}.{ext}"
    with open(path, "wb") as f:
        np.save(f, latents)
    info = {"padding_mask": [1] * latents.shape[1] if mask is None else list(mask), "seconds_start": 0.0,
            "seconds_total": 1.0, "timestamps": [0.0, 1.0], "path": f"/a/{idx}.wav", "relpath": f"{idx}.wav",
            "sample_rate": 100}
    info.update(meta)
    (folder / f"{idx:013d}.json").write_text(json.dumps(info))
    return path


def details(root: Path, latent_dim=4, ratio=10, rate=100):
    root.mkdir(parents=True, exist_ok=True)
    (root / "details.json").write_text(json.dumps({"model_config": {}, "sample_size": 200, "latent": {
        "latent_dim": latent_dim, "downsampling_ratio": ratio, "sample_rate": rate, "dtype": "float32"}}))


def ds(root, **kw):
    src_kw = {k: kw.pop(k) for k in ("custom_metadata_module",) if k in kw}
    return PreEncodedDataset([LatentSource("d", str(root), **src_kw)], **kw)


def lat(n, c=4, value=None):
    if value is not None:
        return np.full((c, n), value, np.float32)
    return np.arange(c * n, dtype=np.float32).reshape(c, n)


def test_reads_our_layout_with_details(tmp_path):
    details(tmp_path)
    write_latent(tmp_path, 0, 0, lat(8), prompt="a dog")
    write_latent(tmp_path, 1, 1, lat(8).astype(np.float16))
    d = ds(tmp_path)
    assert len(d) == 2
    x, info = d[0]
    assert x.shape == (4, 8) and x.dtype == torch.float32
    assert info["prompt"] == "a dog" and info["padding_mask"].dtype == torch.bool
    assert d[1][0].dtype == torch.float32
    assert latent_channels(d) == (4, f"{tmp_path}/details.json")


def test_reads_reference_layout_without_details(tmp_path):
    # stable-audio-tools writes no details.json in older runs and float16 latents with extra fields
    write_latent(tmp_path, 0, 0, lat(6, c=3).astype(np.float16), extra="x")
    (tmp_path / "0" / "notes.npy").write_bytes(b"no json sibling, not a latent")
    d = ds(tmp_path)
    assert len(d) == 1
    assert latent_channels(d)[0] == 3


def test_hidden_files_folders_and_temporaries_are_not_latents(tmp_path):
    write_latent(tmp_path, 0, 0, lat(4))
    write_latent(tmp_path / ".trash", 0, 1, lat(4))
    for suffix in (".npy", ".json"):  # hidden files, as our temporaries are
        original = (tmp_path / "0" / f"0000000000000{suffix}").read_bytes()
        (tmp_path / "0" / f".0000000000002{suffix}").write_bytes(original)
    assert [r.key for r in ds(tmp_path).records] == ["0000000000000"]


def test_filelist_replaces_scan(tmp_path):
    write_latent(tmp_path, 0, 0, lat(4))
    write_latent(tmp_path, 0, 1, lat(4))
    (tmp_path / "filelist.txt").write_text("0/0000000000001.npy\n")
    d = ds(tmp_path)
    assert [Path(r.parts[".npy"].path).name for r in d.records] == ["0000000000001.npy"]


def test_crop_top_level_and_per_dataset(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_latent(a, 0, 0, lat(10))
    write_latent(b, 0, 0, lat(10))
    config = parse_dataset_config({"dataset_type": "pre_encoded", "latent_crop_length": 4, "datasets": [
        {"id": "a", "path": str(a)}, {"id": "b", "path": str(b), "latent_crop_length": 6}]})
    d = build_pre_encoded_dataset(config)
    assert d[0][0].shape == (4, 4) and d[1][0].shape == (4, 6)
    assert d[0][1]["latent_crop_length"] == 4 and d[1][1]["latent_crop_start"] == 0


def test_short_latent_is_padded_with_zero_mask(tmp_path):
    write_latent(tmp_path, 0, 0, lat(3))
    x, info = ds(tmp_path, latent_crop_length=5)[0]
    assert torch.equal(x[:, 3:], torch.zeros(4, 2))
    assert info["padding_mask"].tolist() == [True, True, True, False, False]


def test_random_crop_stays_in_content_and_moves_timing(tmp_path):
    details(tmp_path, ratio=10, rate=100)  # 0.1 s per frame
    mask = [1] * 12 + [0] * 8
    write_latent(tmp_path, 0, 0, lat(20), mask=mask, seconds_start=2.0, timestamps=[0.0, 1.0])
    starts = set()
    d = ds(tmp_path, latent_crop_length=4, random_crop=True)
    for epoch in range(40):
        d.set_epoch(epoch)
        x, info = d[0]
        s = info["latent_crop_start"]
        starts.add(s)
        assert 0 <= s <= 8
        assert torch.equal(x, torch.from_numpy(lat(20)[:, s:s + 4]))
        assert info["padding_mask"].all()
        assert info["seconds_start"] == pytest.approx(2.0 + 0.1 * s)
        assert info["timestamps"] == pytest.approx([s / 20, (s + 4) / 20])
    assert len(starts) > 3
    d.set_epoch(3)
    assert len({d[0][1]["latent_crop_start"] for _ in range(5)}) == 1  # reproducible within an epoch


def test_all_padding_mask_crops_at_zero(tmp_path):
    write_latent(tmp_path, 0, 0, lat(10), mask=[0] * 10)
    x, info = ds(tmp_path, latent_crop_length=4, random_crop=True)[0]
    assert info["latent_crop_start"] == 0 and not info["padding_mask"].any()
    batch = collate_latents([(x, info)])
    assert batch.padding_mask.shape == (1, 4)


def test_min_max_length_filter_at_index_time(tmp_path):
    for i, sec in enumerate([0.5, 2.0, 5.0]):
        write_latent(tmp_path, 0, i, lat(4), seconds_total=sec)
    d = ds(tmp_path, min_length_sec=1.0, max_length_sec=3.0)
    assert len(d) == 1 and d.filtered == 2
    assert d[0][1]["seconds_total"] == 2.0
    config = parse_dataset_config({"dataset_type": "pre_encoded", "min_length_sec": 1.0, "datasets": [
        {"id": "a", "path": str(tmp_path), "max_length_sec": 1.0}]})
    assert len(build_pre_encoded_dataset(config)) == 0  # the entry's max (1.0) overrides: nothing is left


def test_latent_extension(tmp_path):
    write_latent(tmp_path, 0, 0, lat(4), ext="lat")
    write_latent(tmp_path, 0, 1, lat(4))
    assert len(ds(tmp_path, latent_extension="lat")) == 1


def test_custom_metadata_reject_and_replace(tmp_path):
    write_latent(tmp_path, 0, 0, lat(4), prompt="keep")
    write_latent(tmp_path, 0, 1, lat(4), prompt="drop")
    module = tmp_path / "md.py"
    module.write_text(
        "import numpy as np\n"
        "def get_custom_metadata(info, audio):\n"
        "    if info['prompt'] == 'drop':\n"
        "        return {'__reject__': True}\n"
        "    return {'prompt': info['prompt'] + '!', '__replace__': np.ones((4, 4), np.float32)}\n")
    d = ds(tmp_path, custom_metadata_module=str(module))
    x, info = d[0]
    assert info["prompt"] == "keep!" and torch.equal(x, torch.ones(4, 4)) and "__replace__" not in info
    assert d[1] is None
    batch = collate_latents([d[0], d[1]])
    assert batch.data.shape == (1, 4, 4) and batch.skipped == 1


def test_custom_metadata_module_that_fails_to_import_is_a_dataset_error(tmp_path):
    write_latent(tmp_path, 0, 0, lat(4))
    module = tmp_path / "broken.py"
    module.write_text("import a_module_that_does_not_exist\n")
    with pytest.raises(DatasetError, match="failed to import: ModuleNotFoundError"):
        ds(tmp_path, custom_metadata_module=str(module))
    with pytest.raises(DatasetError, match="not found"):
        ds(tmp_path, custom_metadata_module=str(tmp_path / "missing.py"))


def test_unreadable_file_is_skipped_not_replaced(tmp_path, caplog):
    write_latent(tmp_path, 0, 0, lat(4))
    bad = write_latent(tmp_path, 0, 1, lat(4))
    bad.write_bytes(b"garbage")
    d = ds(tmp_path)
    with caplog.at_level(logging.WARNING):
        assert d[1] is None
    assert "Skipping unreadable latent" in caplog.text
    loader = make_loader(d, batch_size=2, num_workers=0, shuffle=False, drop_last=False)
    batch = next(iter(loader))
    assert batch.data.shape[0] == 1 and batch.skipped == 1
    assert batch.infos[0]["latent_filename"].endswith("0000000000000.npy")


def test_posterior_sample_is_fresh_per_epoch(tmp_path):
    path = write_latent(tmp_path, 0, 0, lat(50, value=1.0))
    np.savez(str(path)[:-4] + ".std.npz", std=np.full((4, 50), 0.5, np.float32))
    d = ds(tmp_path)
    d.set_epoch(0)
    a, a2 = d[0][0], d[0][0]
    d.set_epoch(1)
    b = d[0][0]
    assert torch.equal(a, a2) and not torch.equal(a, b)
    assert abs(float((b - 1).std()) - 0.5) < 0.1
    assert len(d) == 1  # the sidecar is not a latent


def test_index_is_cached_and_invalidated(tmp_path, monkeypatch):
    root = tmp_path / "data"
    write_latent(root, 0, 0, lat(4))
    assert len(ds(root)) == 1
    calls = []
    real = latent_index._scan
    monkeypatch.setattr(latent_index, "_scan", lambda *a: calls.append(a) or real(*a))
    assert len(ds(root)) == 1 and not calls  # served from the cache
    write_latent(root, 0, 1, lat(4))
    assert len(ds(root)) == 2 and len(calls) == 1  # the folder changed
    write_latent(root, 3, 0, lat(4))  # a new rank folder changes the root
    assert len(ds(root)) == 3 and len(calls) == 2


def test_webdataset_shards(tmp_path):
    shard = tmp_path / "0" / "000000.tar"
    shard.parent.mkdir(parents=True)
    with tarfile.open(shard, "w") as tar:
        for i in range(3):
            buf = io.BytesIO()
            np.save(buf, lat(5, value=float(i)))
            for name, data in ((f"{i:013d}.npy", buf.getvalue()),
                               (f"{i:013d}.json", json.dumps({"padding_mask": [1] * 5, "seconds_total": 1.0,
                                                                "seconds_start": 0, "prompt": str(i)}).encode())):
                member = tarfile.TarInfo(name)
                member.size = len(data)
                tar.addfile(member, io.BytesIO(data))
    d = ds(tmp_path)
    assert len(d) == 3
    x, info = d[2]
    assert torch.equal(x, torch.full((4, 5), 2.0)) and info["prompt"] == "2"


def test_mismatched_lengths_without_crop_is_a_clear_error(tmp_path):
    write_latent(tmp_path, 0, 0, lat(4))
    write_latent(tmp_path, 0, 1, lat(5))
    d = ds(tmp_path)
    with pytest.raises(Exception, match="latent_crop_length"):
        collate_latents([d[0], d[1]])
