"""The training section of a model config, as preencode train reads it."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from preencode.errors import ConfigError
from preencode.models.diffusion import load_diffusion_config
from preencode.train.optim import InverseLR, build_optimizers
from preencode.train.run import load_training_config
from tests.train.conftest import ROOT, model_config, write_json


def test_repository_config_is_the_demo_model_with_a_training_section():
    cfg = json.loads((ROOT / "configs" / "tiny_sao.json").read_text())
    demo = json.loads((ROOT / "preencode" / "demo" / "tiny_sao.json").read_text())
    assert {k: v for k, v in cfg.items() if k != "training"} == {k: v for k, v in demo.items() if k != "training"}
    parsed = load_diffusion_config(ROOT / "configs" / "tiny_sao.json")
    assert parsed.training.pre_encoded and parsed.training.demo is not None


def test_learning_rate_alone_means_adam():
    config = load_diffusion_config(model_config(optimizer_configs=None, learning_rate=2e-4))
    optimizers = build_optimizers(config.training, [torch.nn.Parameter(torch.zeros(1))])
    assert len(optimizers) == 1 and type(optimizers[0]) is torch.optim.Adam
    assert optimizers[0].param_groups[0]["lr"] == 2e-4


def test_optimizer_configs_win_over_learning_rate_with_a_warning(caplog):
    config = load_diffusion_config(model_config(learning_rate=2e-4))
    with caplog.at_level(logging.WARNING, logger="preencode"):
        (optimizer,), (scheduler,) = build_optimizers(config.training, [torch.nn.Parameter(torch.zeros(1))])
    assert type(optimizer) is torch.optim.AdamW and optimizer.defaults["lr"] == 3e-3
    assert isinstance(scheduler["scheduler"], InverseLR) and scheduler["interval"] == "step"
    assert "using optimizer_configs" in caplog.text


def test_torch_scheduler_by_name():
    raw = model_config()
    raw["training"]["optimizer_configs"]["diffusion"]["scheduler"] = {"type": "StepLR", "config": {"step_size": 3}}
    (_, ), (scheduler,) = build_optimizers(load_diffusion_config(raw).training, [torch.nn.Parameter(torch.zeros(1))])
    assert type(scheduler["scheduler"]) is torch.optim.lr_scheduler.StepLR


def test_training_needs_a_training_section_and_a_conditional_model(tmp_path):
    path = write_json(tmp_path / "m.json", model_config())
    assert load_training_config(str(path)).training is not None
    raw = model_config()
    del raw["training"]
    with pytest.raises(ConfigError, match="training: is required to train"):
        load_training_config(str(write_json(tmp_path / "n.json", raw)))


@pytest.mark.parametrize("key, value, message", [
    ("timestep_sampler", "cosine", "valid: uniform, logit_normal, trunc_logit_normal, log_snr"),
    ("cfg_dropout_prob", 1.5, "expected a probability in [0, 1]"),
    ("use_emma", True, "did you mean 'use_ema'"),
    ("timestep_sampler_options", {"mean_logsnr": 1}, "takes no options"),
])
def test_training_config_problems_name_the_path(key, value, message):
    with pytest.raises(ConfigError, match="training") as err:
        load_diffusion_config(model_config(**{key: value}))
    assert message in str(err.value)
