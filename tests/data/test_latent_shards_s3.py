"""Training streams latent shards from S3 (moto's real server on 127.0.0.1), with DataLoader workers."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from preencode.data.config import parse_dataset_config
from preencode.data.latent_sample import LatentSource
from preencode.data.latent_shards import LatentShardDataset, LatentStreamLoader, shard_latent_channels
from preencode.data.loaders import build_latent_dataset, make_latent_loader
from preencode.errors import StorageError
from preencode.store.reader import iter_records, open_tree
from tests.data.test_latent_shards import ids_of, write_shards
from tests.s3_server import reset_clients, upload_tree
from tests.store.trees import make_items


def test_training_streams_steps_from_an_encode_run_in_s3(wds_output, s3_bucket):
    remote = upload_tree(wds_output, f"s3://{s3_bucket}/runs/encoded")
    stored = {r.id: (r.load_latent(), r.load_std())
              for r in iter_records(open_tree(wds_output), on_shard_error=pytest.fail)}
    config = parse_dataset_config({"dataset_type": "s3", "pre_encoded": True, "latent_crop_length": 16,
                                   "random_crop": False, "datasets": [{"id": "enc", "s3_path": str(remote)}]})
    dataset = build_latent_dataset(config, seed=1)
    assert isinstance(dataset, LatentShardDataset)
    assert shard_latent_channels(dataset) == (4, f"{remote}/details.json")
    loader = make_latent_loader(dataset, batch_size=2, num_workers=2, shuffle=True, drop_last=True)
    steps = []
    while len(steps) < 6:  # 7 samples in 3 shards, 2 workers, drop_last: 3 batches per epoch, so 2 epochs
        for batch in loader:
            assert batch.data.shape == (2, 4, 16) and batch.data.dtype == torch.float32
            for x, info in zip(batch.data, batch.infos, strict=True):
                key = info["latent_filename"].rsplit(":", 1)[1].split(".")[0]
                assert info["latent_filename"].startswith(f"{remote}/0/") and info["padding_mask"].shape == (16,)
                mean, std = (torch.from_numpy(a[:, :16]).float() for a in stored[key])
                z = (x - mean) / std  # the std sidecar draws mean + std * noise
                assert z.abs().max() < 6 and z.std() > 0.5
            steps.append(batch)
            if len(steps) == 6:
                break
    assert dataset.epoch == 1 and loader.state_dict()["consumed"] == {"0": 4, "1": 2}


def test_one_epoch_over_two_ranks_and_two_workers_from_s3_sees_every_sample_once(tmp_path, s3_bucket):
    items = make_items(ranks=(6, 5), frames=20)
    remote = upload_tree(write_shards(tmp_path / "local", items, shard_size=2), f"s3://{s3_bucket}/six")
    seen = []
    for rank in range(2):
        dataset = LatentShardDataset([LatentSource("d", str(remote))], rank=rank, world_size=2, shuffle_buffer=3)
        seen += ids_of(LatentStreamLoader(dataset, batch_size=2, num_workers=2))
    assert Counter(seen) == Counter(it.id for it in items)


def test_an_unknown_profile_is_one_line(s3_bucket, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    reset_clients()
    with pytest.raises(StorageError, match="no-such-profile"):
        LatentShardDataset([LatentSource("d", f"s3://{s3_bucket}/x", profile="no-such-profile")])
