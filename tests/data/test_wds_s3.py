"""WebDataset shards on S3, served by moto's real server on 127.0.0.1 and read through s3fs."""

from __future__ import annotations

import boto3
import pytest
import torch

from preencode.data import AudioWindowDataset, WindowSample, build_plan, parse_dataset_config, split_indices
from preencode.errors import DatasetError
from tests.wds_files import sample_members, write_shard

SR = 16000


def test_every_sample_read_once_from_s3(aws_env, tmp_path):
    client = boto3.client("s3", endpoint_url=aws_env, region_name="us-east-1")
    client.create_bucket(Bucket="audio")
    keys = []
    for shard_no in range(3):
        members = []
        for k in range(3):
            key = f"s{shard_no}_{k}"
            keys.append(key)
            members += sample_members(key, ("flac", "wav", "ogg")[k], {"text": f"caption {key}"})
        local = write_shard(tmp_path / f"{shard_no}.tar", members)
        client.upload_file(str(local), "audio", f"train/part/{shard_no:03d}.tar")
    client.put_object(Bucket="audio", Key="train/readme.txt", Body=b"not a shard")

    config = parse_dataset_config({"dataset_type": "s3", "datasets": [{"id": "remote", "s3_path": "s3://audio/train/"}]})
    plan = build_plan(config)
    assert plan.failures == []
    assert [i.member.key for i in plan.items] == keys
    assert [i.relpath for i in plan.items][:2] == ["part/000.tar/s0_0.flac", "part/000.tar/s0_1.wav"]
    etag = plan.items[0].fingerprint.etag
    assert etag and etag == client.head_object(Bucket="audio", Key="train/part/000.tar")["ETag"].strip('"')

    ds = AudioWindowDataset.from_config(plan.items, config, sample_rate=SR, channels=2, sample_size=SR)
    seen = []
    for rank in range(2):
        for i in split_indices(len(ds), 2, rank):
            r = ds[i]
            assert isinstance(r, WindowSample), r
            assert r.audio.shape == (2, SR) and float(r.audio.abs().max()) > 0.1
            assert r.metadata["prompt"] == f"caption {r.metadata['key']}"
            assert r.metadata["input_fingerprint"]["etag"] == plan.items[r.index].fingerprint.etag
            seen.append(r.metadata["key"])
    assert seen == keys  # every sample once, in order


def test_dataloader_workers_read_s3(aws_env, tmp_path):
    client = boto3.client("s3", endpoint_url=aws_env, region_name="us-east-1")
    client.create_bucket(Bucket="workers")
    local = write_shard(tmp_path / "x.tar", sample_members("a") + sample_members("b") + sample_members("c"))
    client.upload_file(str(local), "workers", "x.tar")
    plan = build_plan(parse_dataset_config({"dataset_type": "wds", "datasets": [{"id": "w", "s3_path": "s3://workers"}]}))
    ds = AudioWindowDataset(plan.items, SR, 1, 8000)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    assert sorted(r.index for r in loader) == [0, 1, 2]


def test_missing_bucket_is_a_user_error(aws_env):
    config = parse_dataset_config({"dataset_type": "wds", "datasets": [{"id": "x", "s3_path": "s3://no-such-bucket/p"}]})
    with pytest.raises(DatasetError, match="no-such-bucket"):
        build_plan(config)
