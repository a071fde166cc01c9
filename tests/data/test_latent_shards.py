"""Training on streamed latent shards (local folders): the loose-file dataset's options, every sample exactly
once per epoch over ranks × DataLoader workers, a shuffle that changes per epoch, and resuming mid-epoch."""

from __future__ import annotations

import json
import logging
from collections import Counter

import numpy as np
import pytest
import torch

from preencode.data.config import parse_dataset_config
from preencode.data.latent_sample import LatentSource
from preencode.data.latent_shards import (
    POSITION_KEY,
    LatentShardDataset,
    LatentStreamLoader,
    shard_latent_channels,
)
from preencode.data.loaders import build_latent_dataset, make_latent_loader
from preencode.data.plan import build_plan
from preencode.data.pre_encoded import PreEncodedDataset
from preencode.errors import ConfigError, DatasetError
from preencode.store.writer import open_writer
from tests.store.trees import details, make_items, write_tree

ITEMS = 11


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PREENCODE_CACHE_DIR", str(tmp_path / "cache"))


def write_shards(root, items, shard_size=3):
    """Items of every rank into shards of ``shard_size`` samples, under ``root/<rank>/``, with a details file."""
    write_tree(root, [], details_json=details())
    for rank in sorted({it.rank for it in items}):
        writer = open_writer("wds", root / str(rank), shard_size=shard_size)
        for item in items:
            if item.rank == rank:
                writer.write(item.sample())
        writer.close()
    return root


def ids_of(batches) -> list[str]:
    return [info["latent_filename"].rsplit(":", 1)[1].split(".")[0] for b in batches for info in b.infos]


def shard_set(root, **kw) -> LatentShardDataset:
    return LatentShardDataset([LatentSource("d", str(root))], **kw)


@pytest.fixture
def eleven(tmp_path):
    items = make_items(ranks=(6, 5), frames=20)
    return write_shards(tmp_path / "shards", items), items


def test_samples_equal_the_loose_file_datasets(tmp_path):
    """Same stored latents, same options: the same tensors and metadata as PreEncodedDataset."""
    items = make_items(ranks=(3, 2), frames=20)
    loose = write_tree(tmp_path / "loose", items)
    shards = write_shards(tmp_path / "shards", items, shard_size=2)
    module = tmp_path / "md.py"
    module.write_text("def get_custom_metadata(info, audio):\n"
                      "    if info['relpath'] == '0010000000001.wav':\n"
                      "        return {'__reject__': True}\n"
                      "    return {'prompt': 'p ' + info['relpath']}\n")
    for options in ({}, {"latent_crop_length": 8, "random_crop": False}, {"latent_crop_length": 30}):
        a = PreEncodedDataset([LatentSource("d", str(loose), custom_metadata_module=str(module))], **options)
        b = LatentShardDataset([LatentSource("d", str(shards), custom_metadata_module=str(module))], shuffle=False,
                               **options)
        expected = {}
        for i in range(len(a)):
            sample = a[i]
            if sample is not None:
                expected[sample[1]["relpath"]] = sample
        got = {info["relpath"]: (x, info) for x, info in b}
        assert sorted(got) == sorted(expected) and len(got) == len(items) - 1
        for key, (x, info) in got.items():
            assert torch.equal(x, expected[key][0])
            assert torch.equal(info.pop("padding_mask"), expected[key][1].pop("padding_mask"))
            assert info.pop(POSITION_KEY)[0] == 0
            assert info.pop("latent_filename").endswith(".npy") and expected[key][1].pop("latent_filename")
            assert info == expected[key][1]


def test_random_crops_move_seconds_start_and_std_sidecars_draw_per_epoch(tmp_path):
    items = make_items(ranks=(4,), frames=20, with_std=True)
    root = write_shards(tmp_path, items)
    stored = {it.id: it for it in items}
    ds = shard_set(root, latent_crop_length=5, random_crop=True, shuffle=False, seconds_per_frame=0.5)
    draws = []
    for epoch in range(3):
        ds.set_epoch(epoch)
        for x, info in ds:
            item = stored[info["latent_filename"].rsplit(":", 1)[1].split(".")[0]]
            start = info["latent_crop_start"]
            assert start + 5 <= max(int(item.mask.sum()), 5)  # within the content
            assert info["seconds_start"] == pytest.approx(start * 8 / 16000)  # details.json: 8 / 16 kHz per frame
            mean = item.latent[:, start:start + 5]
            assert not np.allclose(x.numpy(), mean)  # mean + std * noise
            assert np.abs(x.numpy() - mean).max() < 8 * item.std.max()
            draws.append(x.numpy())
    assert not np.allclose(draws[0], draws[4])  # another epoch, another draw


def _epoch(root, world, workers, batch_size=2, epoch=0, **kw):
    seen = []
    for rank in range(world):
        ds = shard_set(root, rank=rank, world_size=world, **kw)
        ds.set_epoch(epoch)
        seen += ids_of(LatentStreamLoader(ds, batch_size=batch_size, num_workers=workers))
    return seen


@pytest.mark.parametrize("shard_size", [3, 2])  # 4 shards for 4 readers; 6, two of them shared
def test_one_epoch_over_two_ranks_and_two_workers_sees_every_sample_once(tmp_path, shard_size):
    items = make_items(ranks=(6, 5), frames=20)
    root = write_shards(tmp_path, items, shard_size=shard_size)
    first = _epoch(root, world=2, workers=2, shuffle_buffer=4)
    assert Counter(first) == Counter(it.id for it in items)
    second = _epoch(root, world=2, workers=2, shuffle_buffer=4, epoch=1)
    assert Counter(second) == Counter(first) and second != first  # reshuffled


@pytest.mark.parametrize("world,workers", [(1, 0), (3, 1), (5, 1), (4, 2)])
def test_exactly_once_for_other_layouts(eleven, world, workers):
    root, items = eleven
    assert Counter(_epoch(root, world, workers, batch_size=3)) == Counter(it.id for it in items)


def test_epochs_follow_each_other_and_resume_mid_epoch_exactly(eleven):
    root, items = eleven
    everything = Counter(it.id for it in items)
    loader = LatentStreamLoader(shard_set(root, shuffle_buffer=3), batch_size=2, num_workers=2)
    assert Counter(ids_of(loader)) == everything and loader.state_dict()["epoch"] == 1
    before = []
    for i, batch in enumerate(loader):
        before += ids_of([batch])
        if i == 2:
            break
    state = json.loads(json.dumps(loader.state_dict()))  # checkpoints can hold it as JSON
    assert state["epoch"] == 1 and sum(state["consumed"].values()) == len(before) == 6
    resumed = LatentStreamLoader(shard_set(root, shuffle_buffer=3), batch_size=2, num_workers=2)
    resumed.load_state_dict(state)
    after = ids_of(resumed)
    assert Counter(before + after) == everything
    # The same epoch read without interruption gives the same samples in the same order per reader.
    fresh = shard_set(root, shuffle_buffer=3)
    fresh.set_epoch(1)
    uninterrupted = ids_of(LatentStreamLoader(fresh, batch_size=2, num_workers=2))
    assert uninterrupted[:6] == before and sorted(uninterrupted[6:]) == sorted(after)
    assert resumed.state_dict()["epoch"] == 2 and resumed.state_dict()["consumed"] == {}


def test_a_position_saved_with_other_workers_restarts_the_epoch(eleven, caplog):
    root, items = eleven
    loader = LatentStreamLoader(shard_set(root), batch_size=2, num_workers=2)
    next(iter(loader))
    state = loader.state_dict()
    other = LatentStreamLoader(shard_set(root), batch_size=2, num_workers=1)
    other.load_state_dict(state)
    with caplog.at_level(logging.WARNING):
        assert Counter(ids_of(other)) == Counter(it.id for it in items)
    assert "starts over" in caplog.text
    with pytest.raises(DatasetError, match="Not a saved position"):
        other.load_state_dict({"epoch": 1})


def test_a_damaged_shard_loses_only_what_follows_the_damage(eleven, caplog):
    root, items = eleven
    shard = sorted((root / "0").glob("*.tar"))[0]
    shard.write_bytes(shard.read_bytes()[:3000])  # the first sample is complete, then the shard ends
    with caplog.at_level(logging.WARNING):
        seen = _epoch(root, world=1, workers=0, shuffle=False)
    assert "truncated" in caplog.text
    assert sorted(seen) == sorted(it.id for it in items if it.id not in (items[1].id, items[2].id))


def test_config_forms_of_stable_audio_tools_build_the_stream(eleven):
    root, _ = eleven
    config = parse_dataset_config({"dataset_type": "wds", "pre_encoded": True, "latent_crop_length": 16,
                                   "random_crop": False, "shuffle_buffer": 5,
                                   "datasets": [{"id": "mine", "path": str(root)}]})
    assert config.holds_latents and config.latent_shards and config.shuffle_buffer == 5
    ds = build_latent_dataset(config, seed=3)
    assert isinstance(ds, LatentShardDataset) and ds.shuffle_buffer == 5 and ds.seed == 3
    loader = make_latent_loader(ds, batch_size=4, num_workers=0, shuffle=True, drop_last=True)
    batches = list(loader)
    assert isinstance(loader, LatentStreamLoader) and [b.data.shape for b in batches] == [(4, 4, 16)] * 2
    assert all(POSITION_KEY not in info for b in batches for info in b.infos)
    assert batches[0].infos[0]["dataset_id"] == "mine" and shard_latent_channels(ds)[0] == 4
    with pytest.raises(DatasetError, match="pre_encoded"):
        build_plan(config)  # latents are not audio to encode


def test_config_problems_have_json_paths():
    with pytest.raises(ConfigError) as info:
        parse_dataset_config({"dataset_type": "audio_dir", "pre_encoded": True, "shuffle_buffer": 3,
                              "datasets": [{"id": "a", "path": "x"}]})
    text = str(info.value)
    assert "pre_encoded: is true, but dataset_type 'audio_dir' holds audio" in text
    assert "shuffle_buffer: only applies to shards of latents" in text
    with pytest.raises(ConfigError, match="pre_encoded: is false, but dataset_type 'pre_encoded'"):
        parse_dataset_config({"dataset_type": "pre_encoded", "pre_encoded": False, "datasets": [{"id": "a",
                                                                                                "path": "x"}]})
    with pytest.raises(ConfigError, match=r"shuffle_buffer: expected an integer >= 0"):
        parse_dataset_config({"dataset_type": "s3", "pre_encoded": True, "shuffle_buffer": -1,
                              "datasets": [{"id": "a", "s3_path": "s3://b/p"}]})
    s3 = parse_dataset_config({"dataset_type": "s3", "pre_encoded": True, "datasets": [
        {"id": "a", "s3_path": "s3://b/p", "profile": "prod", "latent_crop_length": 8}]})
    assert s3.dataset_type == "wds" and s3.random_crop is True and s3.datasets[0].profile == "prod"


def test_a_root_without_shards_is_a_dataset_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"no \.tar shards"):
        shard_set(tmp_path / "empty")
    with pytest.raises(DatasetError, match="does not exist"):
        shard_set(tmp_path / "missing")
