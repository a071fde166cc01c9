"""Training a model whose prompt goes through a t5 conditioner (the committed tiny T5, nothing downloaded)."""

from __future__ import annotations

import copy

import pytest
import torch

from preencode.errors import ConfigError
from preencode.models.diffusion import build_diffusion_model, load_diffusion_config
from preencode.train.module import DiffusionTrainingModule
from preencode.train.optim import build_optimizers
from tests.train.conftest import model_config, randomize

pytest.importorskip("transformers")


def projected() -> dict:
    cfg = model_config()
    cfg["model"]["conditioning"]["configs"][0]["config"]["project_out"] = True  # a trained proj_out layer
    return cfg


def test_t5_projection_trains_and_the_encoder_stays_frozen_and_out_of_the_checkpoint():
    config = load_diffusion_config(projected())
    model = randomize(build_diffusion_model(config))  # some output layers start at zero: no gradient upstream
    model.conditioner.load()
    module = DiffusionTrainingModule(model, config.training)
    t5 = model.conditioner.conditioners["prompt"]
    encoder = t5.load()[1]
    meta = [{"prompt": "a dog barks", "seconds_start": 0, "seconds_total": 3},
            {"prompt": "slow piano", "seconds_start": 1, "seconds_total": 9}]
    cond = model.conditioner(meta, "cpu")
    assert cond["prompt"][1][0].tolist() == [True] * 4 + [False] * 4  # 3 words + </s>, then padding
    x0, noise = torch.randn(2, 4, 16), torch.randn(2, 4, 16)
    module.objective.loss(lambda x, t: model(x, t, cond), x0, noise, torch.tensor([0.2, 0.6])).backward()
    assert t5.proj_out.weight.grad is not None and t5.proj_out.weight.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in encoder.parameters())
    assert not any("encoder" in k for k in module.state_dict() if ".prompt." in k)
    optimizer = build_optimizers(config.training, model.parameters())[0][0]
    optimized = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert id(t5.proj_out.weight) in optimized and not any(id(p) in optimized for p in encoder.parameters())


def test_unknown_t5_folder_is_a_config_error(tmp_path):
    cfg = copy.deepcopy(model_config())
    cfg["model"]["conditioning"]["configs"][0]["config"]["t5_model_name"] = str(tmp_path / "missing")
    with pytest.raises(ConfigError, match="t5_model_name: unknown T5 model"):
        load_diffusion_config(cfg)
