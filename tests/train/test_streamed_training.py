"""Training streams latent shards from S3 (moto's server on 127.0.0.1) and resumes mid-epoch exactly."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import lightning as L
import pytest
import torch

from preencode.train.run import TrainOptions, train
from tests.s3_server import upload_tree
from tests.train.conftest import make_latents, model_config, write_json

pytest.importorskip("transformers")


def pack_shards(loose: Path, out: Path, per_shard: int) -> Path:
    """The loose latents of ``make_latents`` as tar shards (``<rank>/shard-N.tar``) with the details file."""
    files = sorted(loose.glob("*/*.npy"))
    for n in range(0, len(files), per_shard):
        folder = out / "0"
        folder.mkdir(parents=True, exist_ok=True)
        with tarfile.open(folder / f"shard-{n // per_shard:06d}.tar", "w") as tar:
            for npy in files[n:n + per_shard]:
                for member in (npy, npy.with_suffix(".json")):
                    data = member.read_bytes()
                    info = tarfile.TarInfo(member.name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    (out / "details.json").write_bytes((loose / "details.json").read_bytes())
    return out


class Seen(L.Callback):
    """The source file of every sample of every trained batch, per step."""

    def __init__(self) -> None:
        self.steps: list[list[str]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.steps.append([info["relpath"] for info in batch.infos])


def _options(tmp_path: Path, data: Path, steps: int, **kw) -> TrainOptions:
    model = write_json(tmp_path / "model.json", model_config())
    return TrainOptions(model_config=str(model), dataset_config=str(data), save_dir=str(tmp_path / "run"),
                        batch_size=4, num_workers=0, max_steps=steps, logger="none", seed=0, **kw)


@pytest.mark.parametrize("every", [2, 3], ids=["mid-epoch", "end-of-epoch"])
def test_training_streams_shards_from_s3_and_resumes_exactly(tmp_path, s3_bucket, every):
    loose = make_latents(tmp_path / "loose", count=12)
    remote = upload_tree(pack_shards(loose, tmp_path / "shards", per_shard=5), f"s3://{s3_bucket}/enc")
    data = write_json(tmp_path / "data.json", {
        "dataset_type": "s3", "pre_encoded": True, "latent_crop_length": 16, "random_crop": False,
        "shuffle_buffer": 4, "datasets": [{"id": "enc", "s3_path": str(remote)}]})
    full = Seen()
    train(_options(tmp_path / "a", data, 5, checkpoint_every=every), callbacks=[full])
    # 12 samples, batches of 4: steps 1-3 are epoch 0 (every sample once), 4-5 begin epoch 1
    assert len(full.steps) == 5 and all(len(s) == 4 for s in full.steps)
    assert sorted(name for step in full.steps[:3] for name in step) == sorted(f"{i}.wav" for i in range(12))
    mid = tmp_path / "a" / "run" / "checkpoints" / f"step_{every:08d}.ckpt"
    saved = torch.load(mid, weights_only=False)["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    # what was trained, not what Lightning had fetched ahead
    assert (saved[0]["epoch"], saved[0]["consumed"]) == ((0, {"0": 8}) if every == 2 else (1, {}))
    resumed = Seen()
    last = train(_options(tmp_path / "b", data, 5, ckpt_path=str(mid)), callbacks=[resumed])
    assert resumed.steps == full.steps[every:]  # the rest of epoch 0 and epoch 1, as the uninterrupted run
    assert torch.load(last, weights_only=False)["global_step"] == 5


def test_a_local_folder_of_shards_is_streamed_and_an_audio_model_refuses_it(tmp_path):
    from preencode.data.config import parse_dataset_config
    from preencode.data.latent_shards import LatentShardDataset, LatentStreamLoader
    from preencode.errors import DatasetError
    from preencode.train.run import build_dataset, check_data_kind, check_data_matches_model, load_training_config
    from preencode.train.run import make_loader as make_train_loader

    shards = pack_shards(make_latents(tmp_path / "loose", count=6), tmp_path / "shards", per_shard=4)
    data = parse_dataset_config({"dataset_type": "wds", "pre_encoded": True, "latent_crop_length": 16,
                                 "datasets": [{"id": "local", "path": str(shards)}]})
    model = load_training_config(str(write_json(tmp_path / "model.json", model_config())))
    check_data_kind(model, data, "data.json")
    dataset = build_dataset(model, data, seed=0)
    check_data_matches_model(model, dataset)
    assert isinstance(dataset, LatentShardDataset) and len(dataset.shards) == 2
    loader = make_train_loader(dataset, batch_size=2, num_workers=0, shuffle=True, drop_last=True)
    assert isinstance(loader, LatentStreamLoader) and sum(len(b.infos) for b in loader) == 6
    audio_model = load_training_config(str(write_json(tmp_path / "audio.json", model_config(pre_encoded=False))))
    with pytest.raises(DatasetError, match="would encode latents again"):
        check_data_kind(audio_model, data, "data.json")
