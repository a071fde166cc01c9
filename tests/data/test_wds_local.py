"""WebDataset shards in a local folder: key grouping, deterministic order, json metadata, failures."""

from __future__ import annotations

import os

import pytest
import torch

from preencode.data import AudioWindowDataset, Failure, WindowSample, build_plan, parse_dataset_config
from preencode.data.sources import split_key
from tests.wds_files import sample_members, write_shard

SR = 16000


@pytest.mark.parametrize("name,expected", [
    ("abc.flac", ("abc", "flac")), ("dir/abc.audio.flac", ("dir/abc", "audio.flac")),
    ("a/b/c.json", ("a/b/c", "json")), ("noext", ("noext", "")),
])
def test_split_key_follows_the_webdataset_convention(name, expected):
    assert split_key(name) == expected


def _plan(root):
    config = parse_dataset_config({"dataset_type": "wds", "datasets": [{"id": "w", "path": str(root)}]})
    return config, build_plan(config)


def test_local_shards_indexed_in_order_with_metadata(tmp_path):
    write_shard(tmp_path / "b" / "shard-1.tar", sample_members("s/k3", "wav") + sample_members("s/k4", "mp3"))
    write_shard(tmp_path / "a.tar", sample_members("k1", "flac", {"text": "a dog barks", "bpm": 120})
                + sample_members("k2", "ogg", {"title": "x"}))
    write_shard(tmp_path / "c.tar",
                [("lonely.json", b"{}"), ("t.txt", b"hello")] + sample_members("k5", "opus", sr=48000))
    (tmp_path / "d.tar").write_bytes(b"this is not a tar file at all" * 40)
    config, plan = _plan(tmp_path)
    assert [(i.index, i.relpath) for i in plan.items] == [
        (0, "a.tar/k1.flac"), (1, "a.tar/k2.ogg"), (2, "b/shard-1.tar/s/k3.wav"), (3, "b/shard-1.tar/s/k4.mp3"),
        (4, "c.tar/k5.opus")]
    reasons = {os.path.basename(f.path): f.reason for f in plan.failures}
    assert "no audio member" in reasons["c.tar#lonely"] and "no audio member" in reasons["c.tar#t"]
    assert "corrupt or truncated" in reasons["d.tar"]

    ds = AudioWindowDataset.from_config(plan.items, config, sample_rate=SR, channels=2, sample_size=SR)
    results = [ds[i] for i in range(len(ds))]
    assert all(isinstance(r, WindowSample) for r in results), [r for r in results if not isinstance(r, WindowSample)]
    first = results[0].metadata
    assert first["text"] == "a dog barks" and first["prompt"] == "a dog barks" and first["bpm"] == 120
    assert first["key"] == "k1" and first["path"].endswith("a.tar#k1.flac")
    assert first["input_fingerprint"]["member"] == "k1.flac" and first["input_fingerprint"]["size"] > 0
    assert first["timestamps"] == (0.0, 1.0) and int(first["padding_mask"].sum()) == SR // 2
    assert "prompt" not in results[1].metadata
    for r in results:
        assert r.audio.shape == (2, SR) and float(r.audio.abs().max()) > 0.1


def test_bad_member_json_and_bad_audio_member_are_failures(tmp_path):
    write_shard(tmp_path / "x.tar", [("a.flac", b"garbage" * 100), ("b.json", b"{not json")]
                + sample_members("b") + sample_members("c"))
    _, plan = _plan(tmp_path)
    # b.json comes before b.flac: both members still group under key b
    ds = AudioWindowDataset(plan.items, SR, 1, 8000)
    results = [ds[i] for i in range(len(ds))]
    assert [type(r).__name__ for r in results] == ["Failure", "Failure", "WindowSample"]
    assert results[0].stage == "decode" and "not a readable audio file" in results[0].reason
    assert results[1].stage == "metadata" and "not valid JSON" in results[1].reason
    assert isinstance(results[2].audio, torch.Tensor)


def test_truncated_shard_keeps_the_samples_before_the_damage(tmp_path):
    shard = write_shard(tmp_path / "full.tar", sample_members("a") + sample_members("b") + sample_members("c"))
    data = shard.read_bytes()
    shard.unlink()
    (tmp_path / "cut.tar").write_bytes(data[: int(len(data) * 0.8)])
    _, plan = _plan(tmp_path)
    assert [i.member.key for i in plan.items] == ["a", "b", "c"]
    results = [AudioWindowDataset(plan.items, SR, 1, 8000)[i] for i in range(3)]
    assert isinstance(results[0], WindowSample) and isinstance(results[1], WindowSample)
    assert isinstance(results[2], Failure)  # its data runs past the end of the file
