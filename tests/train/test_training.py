"""Training runs on tiny pre-encoded latents (CPU): loss, resume, weights, precision, checkpointing, demos."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import soundfile as sf
import torch

from preencode.demo.finetune import read_losses
from preencode.errors import CheckpointError, DatasetError, UserError
from preencode.models.diffusion import build_diffusion_model, load_diffusion_config
from preencode.train.module import DiffusionTrainingModule
from preencode.train.run import TrainOptions, train
from tests.train.conftest import (
    dataset_config,
    make_latents,
    model_config,
    model_weights,
    write_json,
)

pytest.importorskip("transformers")

REF_UNWRAP = np.load(Path(__file__).parent / "data" / "reference_unwrap.npz")


def options(tmp_path: Path, steps: int, **kw) -> TrainOptions:
    model = write_json(tmp_path / "model.json", kw.pop("model", model_config()))
    data = write_json(tmp_path / "data.json", kw.pop("data", dataset_config(make_latents(tmp_path / "lat"))))
    base = {"model_config": str(model), "dataset_config": str(data), "save_dir": str(tmp_path / "run"), "batch_size": 8,
                "num_workers": 0, "max_steps": steps, "logger": "none", "seed": 0}
    base.update(kw)
    return TrainOptions(**base)


def test_loss_falls_on_a_fixed_set(tmp_path):
    opts = options(tmp_path, 30, logger="csv", model=model_config(cfg_dropout_prob=0.0))
    last = train(opts)
    assert last.is_file()
    values = read_losses(opts.save_dir)
    assert len(values) == 30 and np.isfinite(values).all()
    first, final = np.mean(values[:8]), np.mean(values[-8:])
    assert final < 0.8 * first, (first, final)


def test_resume_restores_step_optimizer_scheduler_ema_and_sampler(tmp_path):
    opts = options(tmp_path, 4, checkpoint_every=2)
    full = torch.load(train(opts), weights_only=True)
    mid = Path(opts.save_dir) / "checkpoints" / "step_00000002.ckpt"
    assert torch.load(mid, weights_only=True)["state_dict"]["diffusion_ema.step"].item() == 2
    data = json.loads(Path(opts.dataset_config).read_text())
    resumed_opts = options(tmp_path / "b", 4, ckpt_path=str(mid), data=data)
    resumed = torch.load(train(resumed_opts), weights_only=True)
    for ckpt in (full, resumed):
        assert ckpt["global_step"] == 4
        assert ckpt["state_dict"]["diffusion_ema.step"].item() == 4  # EMA restored at 2, then 2 more updates
        assert ckpt["lr_schedulers"][0]["last_epoch"] == 4
        assert {int(s["step"]) for s in ckpt["optimizer_states"][0]["state"].values()} == {4}
        assert ckpt["preencode"]["timestep_sampler"]["sobol_drawn"] == 4 * 8
        assert ckpt["model_config"]["model_type"] == "diffusion_cond"
    assert resumed["lr_schedulers"][0]["_last_lr"] == full["lr_schedulers"][0]["_last_lr"]


def test_resume_with_another_config_lists_the_keys(tmp_path):
    opts = options(tmp_path, 1)
    last = train(opts)
    with pytest.raises(CheckpointError, match=r"use_ema differs.*unexpected: diffusion_ema"):
        train(options(tmp_path / "b", 2, ckpt_path=str(last), model=model_config(use_ema=False)))


def test_our_training_checkpoint_has_the_reference_wrappers_keys():
    """Key for key (minus the reference's loss-weight buffer) what stable-audio-tools' training wrapper holds
    for the same config, so each project resumes and unwraps the other's checkpoints."""
    config = load_diffusion_config(model_config())
    module = DiffusionTrainingModule(build_diffusion_model(config), config.training)
    ours = {k: [str(v.dtype), list(v.shape)] for k, v in module.state_dict().items()}
    theirs = json.loads(str(REF_UNWRAP["wrapper_keys"]))
    assert {k: v for k, v in theirs.items() if not k.startswith("losses.")} == ours


def test_pretrained_weights_are_loaded_into_model_and_ema(tmp_path):
    weights = model_weights(tmp_path / "pretrained.safetensors")
    seen = {}

    class Grab(L.Callback):
        def on_fit_start(self, trainer, module):
            seen["model"] = {k: v.clone() for k, v in module.diffusion.state_dict().items()}
            seen["ema"] = {k: v.clone() for k, v in module.diffusion_ema.ema_model.state_dict().items()}

    train(options(tmp_path, 1, pretrained_ckpt_path=str(weights)), callbacks=[Grab()])
    from safetensors.torch import load_file

    expected = load_file(str(weights))
    assert all(torch.equal(seen["model"][k], v) for k, v in expected.items())
    assert all(torch.equal(seen["ema"][k], expected[f"model.{k}"]) for k in seen["ema"])


def test_a_mismatched_pretrained_checkpoint_is_refused_with_its_keys(tmp_path):
    weights = model_weights(tmp_path / "pretrained.ckpt")
    state = torch.load(weights, weights_only=True)["state_dict"]
    state.pop("model.model.transformer.layers.0.ff_norm.gamma")
    state["conditioner.conditioners.extra.weight"] = torch.zeros(3)
    torch.save({"state_dict": state}, weights)
    with pytest.raises(CheckpointError, match=r"missing: model\.model\.transformer\.layers\.0\.ff_norm\.gamma.*"
                                              r"unexpected: conditioner\.conditioners\.extra\.weight"):
        train(options(tmp_path, 1, pretrained_ckpt_path=str(weights)))
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_pretransform_checkpoint_fills_a_pretrained_checkpoint_without_one(tmp_path):
    weights = model_weights(tmp_path / "pretrained.ckpt")
    state = torch.load(weights, weights_only=True)["state_dict"]
    autoencoder = {k[len("pretransform.model."):]: v for k, v in state.items() if k.startswith("pretransform.model.")}
    torch.save({"state_dict": {k: v for k, v in state.items() if not k.startswith("pretransform.")}}, weights)
    with pytest.raises(CheckpointError, match=r"missing: pretransform\.model"):
        train(options(tmp_path, 1, pretrained_ckpt_path=str(weights)))
    torch.save({"state_dict": autoencoder}, tmp_path / "vae.ckpt")
    last = train(options(tmp_path, 1, pretrained_ckpt_path=str(weights),
                         pretransform_ckpt_path=str(tmp_path / "vae.ckpt")))
    trained = torch.load(last, weights_only=True)["state_dict"]
    assert all(torch.equal(trained[f"diffusion.pretransform.model.{k}"], v) for k, v in autoencoder.items())


def test_bf16_mixed_precision_trains_on_cpu(tmp_path):
    last = train(options(tmp_path, 2, precision="bf16-mixed", logger="csv"))
    assert np.isfinite(read_losses(tmp_path / "run")).all()
    state = torch.load(last, weights_only=True)["state_dict"]
    assert state["diffusion.model.model.transformer.project_in.weight"].dtype == torch.float32  # fp32 master weights


@pytest.mark.skipif(torch.cuda.is_available(), reason="16-mixed runs on CUDA")
def test_16_mixed_without_cuda_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match=r"16-mixed needs a CUDA GPU.*bf16-mixed"):
        train(options(tmp_path, 1, precision="16-mixed"))


def test_gradient_checkpointing_gives_the_same_gradients(tmp_path):
    config = load_diffusion_config(model_config(cfg_dropout_prob=0.0))
    model = build_diffusion_model(config)
    model.conditioner.load()
    module = DiffusionTrainingModule(model, config.training).train()
    meta = [{"prompt": "a dog barks", "seconds_start": 0, "seconds_total": 3}] * 2
    x0, noise = torch.randn(2, 4, 16, generator=torch.Generator().manual_seed(0)), torch.randn(2, 4, 16)
    t = torch.tensor([0.3, 0.7])
    grads = []
    for flag in (False, True):
        model.model.model.transformer.gradient_checkpointing = flag
        model.zero_grad()
        cond = model.conditioner(meta, "cpu")
        module.objective.loss(lambda x, tt, c=cond: model(x, tt, c), x0, noise, t).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 30
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, rtol=1e-5, atol=1e-7)
    seen = []

    class Flag(L.Callback):
        def on_train_start(self, trainer, module):
            seen.append(module.diffusion.model.model.transformer.gradient_checkpointing)

    train(options(tmp_path, 1, gradient_checkpointing=True), callbacks=[Flag()])
    assert seen == [True]


def test_demos_are_written(tmp_path):
    demo = {"demo_every": 2, "demo_steps": 2, "num_demos": 2, "demo_cfg_scales": [1, 3], "demo_cond": [
        {"prompt": "a dog barks", "seconds_start": 0, "seconds_total": 1},
        {"prompt": "slow piano", "seconds_start": 0, "seconds_total": 2}]}
    train(options(tmp_path, 3, model=model_config(demo=demo)))
    wavs = sorted((tmp_path / "run" / "demos").rglob("*.wav"))
    assert [w.relative_to(tmp_path / "run" / "demos").as_posix() for w in wavs] == [
        f"step_{s:08d}/cfg_{c}_{i}.wav" for s in (1, 3) for c in (1, 3) for i in (0, 1)]
    audio, rate = sf.read(wavs[0])
    assert rate == 16000 and audio.shape == (128, 2)  # sample_size, stereo


def test_pre_encoded_model_with_an_audio_dataset_is_an_error(tmp_path):
    (tmp_path / "audio").mkdir()
    sf.write(tmp_path / "audio" / "a.wav", np.zeros(200, np.float32), 16000)
    data = {"dataset_type": "audio_dir", "datasets": [{"id": "a", "path": str(tmp_path / "audio")}]}
    with pytest.raises(DatasetError, match=r"pre_encoded: true but .* 'audio_dir'"):
        train(options(tmp_path, 1, data=data))


def test_audio_model_with_a_pre_encoded_dataset_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match=r"is pre_encoded but the model config sets training\.pre_encoded: false"):
        train(options(tmp_path, 1, model=model_config(pre_encoded=False)))


@pytest.mark.parametrize("with_details", [True, False])
def test_latent_channel_mismatch_names_both_sides(tmp_path, with_details):
    root = make_latents(tmp_path / "lat8", channels=8, with_details=with_details)
    with pytest.raises(DatasetError, match=r"have 8 channels \(.*\) but the model's io_channels is 4"):
        train(options(tmp_path, 1, data=dataset_config(root)))


@pytest.mark.parametrize("change, message", [
    ({"ckpt_path": "x.ckpt", "pretrained_ckpt_path": "y.ckpt"}, "exclude each other"),
    ({"pretrained_ckpt_path": "missing.safetensors"}, "does not exist"),
    ({"precision": "64-true"}, "valid: 32-true, 32, bf16-mixed, 16-mixed"),
    ({"batch_size": 0}, "--batch-size must be at least 1"),
])
def test_option_errors_come_before_any_work(tmp_path, change, message):
    with pytest.raises(UserError, match=message):
        train(options(tmp_path, 1, **change))


def test_cli_user_error_exits_2_without_traceback(tmp_path, capsys, caplog):
    model = write_json(tmp_path / "model.json", model_config(pre_encoded=False))
    data = write_json(tmp_path / "data.json", dataset_config(make_latents(tmp_path / "lat")))
    from preencode.cli import main as cli

    assert cli(["train", "--model-config", str(model), "--dataset-config", str(data), "--save-dir",
                       str(tmp_path / "r"), "--logger", "none", "--gradient-checkpointing"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("preencode train: error: ") and "Traceback" not in err
    assert not any("Loaded T5" in r.getMessage() for r in caplog.records)  # refused before any model work


def test_validation_logs_the_references_fixed_time_losses(tmp_path):
    opts = options(tmp_path, 2, logger="csv")
    opts.val_dataset_config = opts.dataset_config
    train(opts)
    import csv

    (metrics,) = (tmp_path / "run" / "csv").rglob("metrics.csv")
    with open(metrics) as f:
        rows = [r for r in csv.DictReader(f) if r.get("val/avg_loss")]
    assert rows and all(np.isfinite(float(rows[-1][f"val/loss_{t}"])) for t in ("0.1", "0.3", "0.5", "0.7", "0.9"))
