"""``preencode unwrap``: the reference loads what it writes (stored outcome of the real stable-audio-tools),
and our own loader gives the same outputs.

``data/reference_unwrap.npz`` (see ``data/README.md``): stable-audio-tools (commit 50049e3) built its model
with ``create_model_from_config`` from the ``.json`` that :func:`unwrap_checkpoint` wrote for
:func:`synthetic_checkpoint` below, loaded the ``.ckpt`` and the ``.safetensors`` with
``load_state_dict(strict=True)`` (all keys matched, EMA and ``--no-ema`` exports alike), and stored its state
dict's keys and shapes and its outputs ``model(x, t, cond, cfg_scale=1 | 3.5)``. It also ran its own
``unwrap_model.py`` path (``DiffusionCondTrainingWrapper.load_from_checkpoint`` + ``export_model``) on a
real ``preencode train`` checkpoint: the tensors it exported equalled ours (all 205).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from preencode import load_diffusion_model
from preencode.cli import main as cli
from preencode.errors import CheckpointError
from preencode.models.diffusion import build_diffusion_model, load_diffusion_config
from preencode.train.module import DiffusionTrainingModule
from preencode.train.run import TrainOptions, train
from preencode.train.unwrap import unwrap_checkpoint
from tests.train.conftest import (
    dataset_config,
    make_latents,
    model_config,
    randomize,
    write_json,
)

pytest.importorskip("transformers")

REF = np.load(Path(__file__).parent / "data" / "reference_unwrap.npz")


def synthetic_checkpoint(path: Path) -> dict:
    """A training checkpoint with distinct deterministic online and EMA weights; returns its state dict."""
    cfg = model_config()
    network = randomize(build_diffusion_model(cfg), seed=31)
    module = DiffusionTrainingModule(network, load_diffusion_config(cfg).training)
    randomize(module.diffusion_ema.ema_model, seed=32)
    module.diffusion_ema.step.fill_(40)
    module.diffusion_ema.initted.fill_(1.0)
    torch.save({"state_dict": module.state_dict(), "model_config": cfg, "global_step": 40}, path)
    return module.state_dict()


def outputs(model) -> tuple[torch.Tensor, torch.Tensor]:
    x, t = torch.from_numpy(REF["x"]), torch.from_numpy(REF["t"])
    with torch.no_grad():
        cond = model.conditioner(json.loads(str(REF["metadata"])), "cpu")
        return model(x, t, cond, cfg_scale=1.0), model(x, t, cond, cfg_scale=3.5)


@pytest.mark.parametrize("use_ema, name", [(True, "synthetic_unwrapped"), (False, "synthetic_unwrapped_online")])
def test_unwrapped_files_load_in_the_reference_and_give_its_outputs(tmp_path, use_ema, name):
    state = synthetic_checkpoint(tmp_path / "train.ckpt")
    ckpt, safetensors, config = unwrap_checkpoint(tmp_path / "train.ckpt", tmp_path / "out" / "model", use_ema=use_ema)
    assert [p.name for p in (ckpt, safetensors, config)] == ["model.ckpt", "model.safetensors", "model.json"]
    unwrapped = torch.load(ckpt, weights_only=True)
    assert list(unwrapped) == ["state_dict"]
    reference_keys = json.loads(str(REF[f"{name}/keys"]))
    assert {k: list(v.shape) for k, v in unwrapped["state_dict"].items()} == reference_keys  # strict=True accepts it
    from_safetensors = load_file(str(safetensors))
    assert all(torch.equal(from_safetensors[k], v) for k, v in unwrapped["state_dict"].items())
    network = "diffusion_ema.ema_model." if use_ema else "diffusion.model."
    for key, value in unwrapped["state_dict"].items():  # EMA network, online conditioner and pretransform
        source = network + key[len("model."):] if key.startswith("model.") else "diffusion." + key
        assert torch.equal(value, state[source]), key
    for path in (ckpt, safetensors):
        cfg1, cfg3 = outputs(load_diffusion_model(config, path))
        for ours, ref in ((cfg1, REF[f"{name}/out_cfg1"]), (cfg3, REF[f"{name}/out_cfg3"])):
            assert np.abs(ours.numpy() - ref).max() <= 1e-5 * np.abs(ref).max()


def test_reference_unwrap_of_our_training_checkpoint_was_identical():
    assert bool(REF["reference_unwrap_of_our_training_ckpt_equal"]) and int(REF["reference_unwrap_tensor_count"]) == 205


def test_a_real_run_round_trips_through_our_loader(tmp_path):
    model = write_json(tmp_path / "model.json", model_config())
    data = write_json(tmp_path / "data.json", dataset_config(make_latents(tmp_path / "lat")))
    last = train(TrainOptions(model_config=str(model), dataset_config=str(data), save_dir=str(tmp_path / "run"),
                              batch_size=8, num_workers=0, max_steps=3, logger="none", seed=0))
    assert cli(["unwrap", "--ckpt-path", str(last), "--output", str(tmp_path / "exported" / "model")]) == 0
    exported = load_diffusion_model(tmp_path / "exported" / "model.json", tmp_path / "exported" / "model.safetensors")
    direct = load_diffusion_model(model, last)  # the training checkpoint itself (EMA network)
    for a, b in zip(outputs(exported), outputs(direct), strict=True):
        assert torch.equal(a, b)
    online = load_diffusion_model(model, last, prefer_ema=False)
    assert not torch.equal(outputs(online)[0], outputs(exported)[0])  # the EMA lags the online weights


def test_unwrap_errors_are_one_line_with_exit_2(tmp_path, capsys):
    torch.save({"state_dict": {"x": torch.zeros(1)}}, tmp_path / "foreign.ckpt")
    assert cli(["unwrap", "--ckpt-path", str(tmp_path / "foreign.ckpt"), "--output", str(tmp_path / "o")]) == 2
    assert "does not embed its model config" in capsys.readouterr().err
    assert cli(["unwrap", "--ckpt-path", str(tmp_path / "foreign.ckpt"), "--output", str(tmp_path / "o"),
                        "--model-config", str(write_json(tmp_path / "m.json", model_config()))]) == 2
    assert "holds no diffusion.* tensors" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="not found"):
        unwrap_checkpoint(tmp_path / "missing.ckpt", tmp_path / "o")
