"""load_diffusion_model: round trips, strictness, training-checkpoint unwrapping, T5 availability."""

from __future__ import annotations

import argparse
import json
import logging
import shutil

import pytest
import torch
from safetensors.torch import save_file

from preencode import load_diffusion_model
from preencode.errors import CheckpointError, UserError
from preencode.models.diffusion import build_diffusion_model
from tests.models.diffusion.tiny_diffusion import randomize, small_like, with_t5
from tests.models.diffusion.tiny_t5 import TINY_T5

pytest.importorskip("transformers")

METADATA = [{"prompt": "a dog barks", "seconds_total": 10}, {"prompt": "slow piano", "seconds_total": 200}]


@pytest.fixture(scope="module")
def trained():
    """A small_like model with deterministic weights, its config and its reference outputs."""
    config = with_t5(small_like())
    model = randomize(build_diffusion_model(config), seed=7).eval()
    x = torch.randn(2, 4, 8, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([0.2, 0.9])
    with torch.no_grad():
        cond = model.conditioner(METADATA, "cpu")
        out = model(x, t, cond, cfg_scale=4.0)
    return config, model, (x, t, out)


def _outputs(model, inputs):
    x, t, _ = inputs
    with torch.no_grad():
        return model(x, t, model.conditioner(METADATA, "cpu"), cfg_scale=4.0)


@pytest.mark.parametrize("fmt", ["ckpt", "plain_ckpt", "safetensors"])
def test_round_trip_gives_equal_outputs(trained, tmp_path, fmt):
    config, model, inputs = trained
    state = model.state_dict()
    path = tmp_path / f"model.{'safetensors' if fmt == 'safetensors' else 'ckpt'}"
    if fmt == "safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save({"state_dict": state} if fmt == "ckpt" else state, path)
    config_path = tmp_path / "model_config.json"
    config_path.write_text(json.dumps(config))
    loaded = load_diffusion_model(config_path if fmt == "ckpt" else config, path)
    assert not loaded.training
    assert {k: v.shape for k, v in loaded.state_dict().items()} == {k: v.shape for k, v in state.items()}
    assert torch.equal(_outputs(loaded, inputs), inputs[2])


def test_weight_norm_parametrization_names_are_accepted(trained, tmp_path):
    config, model, inputs = trained
    state = {k.replace(".weight_g", ".parametrizations.weight.original0")
             .replace(".weight_v", ".parametrizations.weight.original1"): v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state}, tmp_path / "m.ckpt")
    assert torch.equal(_outputs(load_diffusion_model(config, tmp_path / "m.ckpt"), inputs), inputs[2])


@pytest.mark.parametrize("change, listed", [
    ("drop", "missing: model.model.transformer.layers.1.ff_norm.gamma"),
    ("rename", "unexpected: model.model.transformer.layers.1.ff_norm.gama"),
    ("reshape", "with another shape: model.model.transformer.layers.1.ff_norm.gamma (checkpoint [3], model [64])"),
])
def test_mismatched_checkpoint_lists_the_keys(trained, tmp_path, change, listed):
    config, model, _ = trained
    state = dict(model.state_dict())
    key = "model.model.transformer.layers.1.ff_norm.gamma"
    value = state.pop(key)
    if change == "rename":
        state[key.replace("gamma", "gama")] = value
    elif change == "reshape":
        state[key] = torch.zeros(3)
    torch.save({"state_dict": state}, tmp_path / "bad.ckpt")
    with pytest.raises(CheckpointError, match="does not match the model config") as err:
        load_diffusion_model(config, tmp_path / "bad.ckpt")
    assert listed in str(err.value)
    assert "Pass the model config this checkpoint was trained with" in str(err.value)


def _training_checkpoint(model, ema_shift: float) -> dict:
    """stable-audio-tools' DiffusionCondTrainingWrapper layout: diffusion.* and the EMA of diffusion.model."""
    state = {f"diffusion.{k}": v for k, v in model.state_dict().items()}
    for k, v in model.model.state_dict().items():
        state[f"diffusion_ema.ema_model.{k}"] = v + ema_shift if v.is_floating_point() else v
    state["diffusion_ema.initted"] = torch.tensor(True)
    state["diffusion_ema.step"] = torch.tensor(12)
    return {"state_dict": state, "optimizer_states": [], "global_step": 12, "epoch": 0}


def test_reference_training_checkpoint_prefers_ema(trained, tmp_path, caplog):
    config, model, inputs = trained
    torch.save(_training_checkpoint(model, ema_shift=0.01), tmp_path / "epoch=0-step=12.ckpt")
    with caplog.at_level(logging.WARNING, logger="preencode"):
        ema = load_diffusion_model(config, tmp_path / "epoch=0-step=12.ckpt")
    assert "stable-audio-tools training checkpoint (EMA weights)" in caplog.text
    expected = model.model.model.to_timestep_embed[0].weight + 0.01
    assert torch.equal(ema.model.model.to_timestep_embed[0].weight, expected)
    assert torch.equal(ema.conditioner.state_dict()["conditioners.seconds_total.embedder.embedding.0.weights"],
                       model.conditioner.state_dict()["conditioners.seconds_total.embedder.embedding.0.weights"])
    online = load_diffusion_model(config, tmp_path / "epoch=0-step=12.ckpt", prefer_ema=False)
    assert torch.equal(_outputs(online, inputs), inputs[2])


def test_reference_training_checkpoint_without_ema(trained, tmp_path, caplog):
    config, model, inputs = trained
    state = {f"diffusion.{k}": v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state}, tmp_path / "last.ckpt")
    with caplog.at_level(logging.WARNING, logger="preencode"):
        loaded = load_diffusion_model(config, tmp_path / "last.ckpt")
    assert "a stable-audio-tools training checkpoint:" in caplog.text
    assert torch.equal(_outputs(loaded, inputs), inputs[2])


def test_training_checkpoint_extras_are_ignored(trained, tmp_path, caplog):
    """preencode train writes the reference's layout (diffusion.*, diffusion_ema.*); other entries of a
    training module (the reference's loss-weight buffer) are not model tensors."""
    config, model, inputs = trained
    ckpt = _training_checkpoint(model, ema_shift=0.0)
    ckpt["state_dict"]["losses.losses.0.weight"] = torch.tensor(1.0)
    ckpt.update(lr_schedulers=[], model_config=config)
    torch.save(ckpt, tmp_path / "train.ckpt")
    with caplog.at_level(logging.WARNING, logger="preencode"):
        loaded = load_diffusion_model(config, tmp_path / "train.ckpt")
    assert "stable-audio-tools training checkpoint (EMA weights)" in caplog.text
    assert torch.equal(_outputs(loaded, inputs), inputs[2])


def test_unreadable_checkpoints_are_user_errors(trained, tmp_path):
    config, _, _ = trained
    with pytest.raises(CheckpointError, match="Checkpoint not found"):
        load_diffusion_model(config, tmp_path / "missing.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="is not a PyTorch checkpoint"):
        load_diffusion_model(config, tmp_path / "junk.ckpt")
    torch.save({"state_dict": {"a": torch.zeros(1)}, "args": argparse.Namespace(lr=1)}, tmp_path / "objects.ckpt")
    with pytest.raises(CheckpointError, match="holds Python objects that a weights-only load refuses"):
        load_diffusion_model(config, tmp_path / "objects.ckpt")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_diffusion_model(config, tmp_path / "junk.safetensors")


def test_no_checkpoint_keeps_fresh_weights_with_a_notice(trained, caplog):
    config, _, _ = trained
    with caplog.at_level(logging.WARNING, logger="preencode"):
        model = load_diffusion_model(config)
    assert "fresh (random) initialisation" in caplog.text
    assert not any(k.startswith("conditioner.conditioners.prompt") for k in model.state_dict())


def test_t5_missing_from_the_local_cache_is_a_one_line_user_error(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty_cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    config = small_like()
    config["model"]["conditioning"]["configs"][0]["config"]["t5_model_name"] = "t5-base"
    config["model"]["conditioning"]["cond_dim"] = 768
    config["model"]["diffusion"]["config"].update(cond_token_dim=768, global_cond_dim=768)
    with pytest.raises(UserError) as err:
        load_diffusion_model(config)
    message = str(err.value)
    assert "'t5-base' is neither a local folder nor in the local Hugging Face cache" in message
    assert "nothing is downloaded" in message and "\n" not in message


def test_t5_is_found_in_the_hugging_face_cache_by_name(tmp_path, monkeypatch):
    """A cache laid out as the hub writes it (models--t5-base/snapshots/<rev>/): found offline; the
    tiny T5 there is 32 wide where t5-base is 768, which is reported."""
    import huggingface_hub.constants

    snapshot = tmp_path / "hub" / "models--t5-base" / "snapshots" / "0123abc"
    shutil.copytree(TINY_T5, snapshot)
    (tmp_path / "hub" / "models--t5-base" / "refs").mkdir()
    (tmp_path / "hub" / "models--t5-base" / "refs" / "main").write_text("0123abc")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    config = small_like()
    config["model"]["conditioning"]["configs"][0]["config"]["t5_model_name"] = "t5-base"
    config["model"]["conditioning"]["cond_dim"] = 768
    config["model"]["diffusion"]["config"].update(cond_token_dim=768, global_cond_dim=768)
    with pytest.raises(UserError, match="'t5-base' is 32 wide, expected 768"):
        load_diffusion_model(config)
