"""End-to-end training on tiny pre-encoded latents (CPU)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from preencode.errors import DatasetError
from preencode.train.run import TrainOptions, build_module, train
from preencode.train.unwrap import unwrap_checkpoint
from tests.train.conftest import ROOT, dataset_config, make_latents, model_config, write_json


def losses(save_dir: Path) -> list[float]:
    (metrics,) = (save_dir / "csv").rglob("metrics.csv")
    with open(metrics) as f:
        return [float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")]


def options(tmp_path: Path, steps: int, **kw) -> TrainOptions:
    model = write_json(tmp_path / "model.json", kw.pop("model", model_config()))
    data = write_json(tmp_path / "data.json", kw.pop("data", dataset_config(make_latents(tmp_path / "lat"))))
    base = dict(model_config=str(model), dataset_config=str(data), save_dir=str(tmp_path / "run"), batch_size=8,
                num_workers=0, max_steps=steps, logger="csv", seed=0)
    base.update(kw)
    return TrainOptions(**base)


def test_tiny_dit_loss_falls_in_100_steps(tmp_path):
    opts = options(tmp_path, 100, model=model_config(demo=None, use_ema=False))
    last = train(opts)
    assert last.is_file()
    values = losses(Path(opts.save_dir))
    assert len(values) == 100
    first, final = np.mean(values[:10]), np.mean(values[-10:])
    assert final < 0.7 * first, (first, final)


def test_resume_continues_from_same_step_with_optimizer_and_ema(tmp_path):
    opts = options(tmp_path, 6, model=model_config(demo=None), checkpoint_every=3, logger="none")
    last = train(opts)
    ckpt = torch.load(last, weights_only=True)
    assert ckpt["global_step"] == 6 and (Path(opts.save_dir) / "checkpoints" / "step_00000003.ckpt").is_file()
    module = build_module(opts, __import__("preencode.train.config", fromlist=["x"]).load_model_config(opts.model_config))
    module.load_state_dict(ckpt["state_dict"])
    assert int(module.ema.steps) == 6
    resumed = TrainOptions(**{**opts.__dict__, "ckpt_path": str(last), "max_steps": 9,
                              "save_dir": str(tmp_path / "run2")})
    seen = {}

    import lightning as L

    class Probe(L.Callback):
        def on_train_start(self, trainer, pl_module):
            seen["step"] = trainer.global_step
            seen["ema_steps"] = int(pl_module.ema.steps)
            seen["adam_step"] = float(next(iter(trainer.optimizers[0].state.values()))["step"])

    from preencode.train import run

    original = run.L.Trainer

    def trainer_with_probe(*a, **kw):
        kw["callbacks"] = [*kw["callbacks"], Probe()]
        return original(*a, **kw)

    run.L.Trainer = trainer_with_probe
    try:
        last2 = train(resumed)
    finally:
        run.L.Trainer = original
    assert seen == {"step": 6, "ema_steps": 6, "adam_step": 6.0}
    assert torch.load(last2, weights_only=True)["global_step"] == 9


def test_unwrap_writes_state_dict_safetensors_and_config(tmp_path):
    opts = options(tmp_path, 2, model=model_config(demo=None), logger="none")
    last = train(opts)
    ckpt_path, st_path, cfg_path = unwrap_checkpoint(last, tmp_path / "out" / "model")
    state = torch.load(ckpt_path, weights_only=True)["state_dict"]
    assert any(k.startswith("pretransform.model.") for k in state) and any(k.startswith("model.") for k in state)
    wrapped = torch.load(last, weights_only=True)["state_dict"]
    key = next(k for k in state if k.startswith("model."))
    assert torch.equal(state[key], wrapped["ema.shadow." + key[len("model."):]])
    from safetensors.torch import load_file

    assert set(load_file(str(st_path))) == set(state)
    assert "model_type" in cfg_path.read_text()


def test_pretrained_and_pretransform_weights_load_strictly(tmp_path):
    from preencode.errors import CheckpointError
    from preencode.train.config import load_model_config

    opts = options(tmp_path, 1, model=model_config(demo=None))
    config = load_model_config(opts.model_config)
    source = build_module(opts, config)
    with torch.no_grad():
        for p in source.model.parameters():
            p.normal_()
    state = source.model.state_dict()
    torch.save({"state_dict": state}, tmp_path / "full.ckpt")
    torch.save({"state_dict": {k: v for k, v in state.items() if not k.startswith("pretransform.")}},
               tmp_path / "dit.ckpt")
    torch.save({"state_dict": {k[len("pretransform.model."):]: v for k, v in state.items()
                               if k.startswith("pretransform.model.")}}, tmp_path / "vae.ckpt")
    for kw in ({"pretrained_ckpt_path": str(tmp_path / "full.ckpt")},
               {"pretrained_ckpt_path": str(tmp_path / "dit.ckpt"), "pretransform_ckpt_path": str(tmp_path / "vae.ckpt")}):
        loaded = build_module(TrainOptions(**{**opts.__dict__, **kw}), config)
        assert all(torch.equal(v, loaded.model.state_dict()[k]) for k, v in state.items())
    with pytest.raises(CheckpointError, match="missing: pretransform"):  # its weights must come from somewhere
        build_module(TrainOptions(**{**opts.__dict__, "pretrained_ckpt_path": str(tmp_path / "dit.ckpt")}), config)


def test_demos_are_written(tmp_path):
    cfg = model_config()
    cfg["training"]["demo"].update(demo_every=2, demo_steps=2)
    opts = options(tmp_path, 2, model=cfg, logger="none")
    train(opts)
    wavs = sorted((Path(opts.save_dir) / "demos").rglob("*.wav"))
    assert len(wavs) == 4  # 2 demos x 2 cfg scales
    audio, rate = sf.read(wavs[0])
    assert rate == 16000 and len(audio) == 128  # sample_size


def test_pre_encoded_with_audio_dataset_is_an_error(tmp_path):
    (tmp_path / "audio").mkdir()
    data = {"dataset_type": "audio_dir", "datasets": [{"id": "a", "path": str(tmp_path / "audio")}]}
    sf.write(tmp_path / "audio" / "a.wav", np.zeros(200, np.float32), 16000)
    with pytest.raises(DatasetError, match="pre_encoded: true but .* 'audio_dir'"):
        train(options(tmp_path, 1, data=data))


def test_audio_model_with_pre_encoded_dataset_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match="is pre_encoded but the model config sets training.pre_encoded: false"):
        train(options(tmp_path, 1, model=model_config(pre_encoded=False)))


@pytest.mark.parametrize("with_details", [True, False])
def test_latent_channel_mismatch_names_both_sides(tmp_path, with_details):
    root = make_latents(tmp_path / "lat8", channels=8, with_details=with_details)
    with pytest.raises(DatasetError, match=r"have 8 channels \(.*\) but the model's io_channels is 4"):
        train(options(tmp_path, 1, data=dataset_config(root)))


def test_train_py_cli_finishes_and_loss_falls(tmp_path):
    model = write_json(tmp_path / "model.json", model_config(demo=None))
    data = write_json(tmp_path / "data.json", dataset_config(make_latents(tmp_path / "lat")))
    save = tmp_path / "run"
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), "--model-config", str(model), "--dataset-config",
                           str(data), "--max-steps", "60", "--logger", "csv", "--save-dir", str(save),
                           "--batch-size", "8", "--num-workers", "0"], capture_output=True, text=True, cwd=ROOT,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (save / "checkpoints" / "last.ckpt").is_file()
    values = losses(save)
    assert len(values) == 60 and np.mean(values[-10:]) < np.mean(values[:10])


def test_cli_user_error_exits_2_without_traceback(tmp_path, capsys):
    model = write_json(tmp_path / "model.json", model_config(pre_encoded=False))
    data = write_json(tmp_path / "data.json", dataset_config(make_latents(tmp_path / "lat")))
    from preencode.cli import main

    assert main(["train", "--model-config", str(model), "--dataset-config", str(data), "--save-dir",
                 str(tmp_path / "r"), "--logger", "none"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("preencode train: error: ") and "pre_encoded" in err and "Traceback" not in err
