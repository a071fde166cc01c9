"""Diffusion config validation: every problem at once, with JSON paths, did-you-mean and valid values."""

from __future__ import annotations

import json

import pytest

from preencode.errors import ConfigError
from preencode.models.diffusion import build_diffusion_model, load_diffusion_config, parse_diffusion_config
from tests.helpers import SPEC, with_change
from tests.models.diffusion.tiny_diffusion import options_a, sao_like, small_like, with_t5


def problems(config: dict) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_diffusion_config(config)
    return err.value.problems


def test_released_and_tiny_configs_parse():
    sao = load_diffusion_config(SPEC / "stable_audio_open_model_config.json")
    assert (sao.io_channels, sao.dit.embed_dim, sao.dit.cond_embed_dim, sao.objective) == (64, 1536, 768, "v")
    assert sao.cross_attention_cond_ids == ("prompt", "seconds_start", "seconds_total")
    assert sao.pretransform is not None and sao.pretransform.iterate_batch and sao.pretransform.scale == 1.0
    assert sao.training is not None and sao.training.optimizer.type == "AdamW"
    assert sao.training.optimizer.scheduler_type == "InverseLR" and sao.training.demo.num_demos == 4
    small = parse_diffusion_config(with_t5(small_like()))
    assert small.objective == "rf_denoiser" and small.dit.transformer.qk_norm == "ln"
    assert small.training is not None and small.training.timestep_sampler == "trunc_logit_normal"
    assert small.training.pre_encoded


@pytest.mark.parametrize("path, value, expected", [
    ("model.diffusion.config.causal", True, "model.diffusion.config.causal: true is not implemented"),
    ("model.diffusion.config.sliding_window", [64, 64], ("model.diffusion.config.sliding_window: [64, 64] is not "
                                                         "implemented")),
    ("model.pretransform.chunked", True, "model.pretransform.chunked: true is not implemented"),
    ("model.pretransform.enable_grad", True, "model.pretransform.enable_grad: true is not implemented"),
    ("model.conditioning.configs.0.config.enable_grad", True, "enable_grad: true (fine-tuning T5) is not implemented"),
    ("training.arc", {}, "training.arc: is not implemented"),
    ("training.inpainting", {}, "training.inpainting: is not implemented"),
])
def test_unimplemented_options_are_named(path, value, expected):
    config = with_t5(sao_like())
    if ".configs.0." in path:
        config["model"]["conditioning"]["configs"][0]["config"]["enable_grad"] = value
    else:
        config = with_change(config, path, value)
    assert any(expected in p for p in problems(config)), problems(config)


@pytest.mark.parametrize("path, key, suggestion", [
    ("model.diffusion.config", "embed_dims", "embed_dim"),
    ("model.diffusion.config.ff_kwargs", "mul", "mult"),
    ("model.diffusion", "global_cond_id", "global_cond_ids"),
    ("training", "cfg_dropout", "cfg_dropout_prob"),
    ("training.optimizer_configs.diffusion.optimizer.config", "weight_decy", "weight_decay"),
    ("training.optimizer_configs.diffusion.scheduler.config", "inv_gama", "inv_gamma"),
])
def test_unknown_keys_get_a_did_you_mean(path, key, suggestion):
    config = with_t5(sao_like())
    config["model"]["diffusion"]["config"]["ff_kwargs"] = {}
    config = with_change(config, f"{path}.{key}", 1)
    assert f"{path}.{key}: unknown key (did you mean '{suggestion}'?)" in problems(config)


@pytest.mark.parametrize("path, value, valid", [
    ("model.diffusion.type", "adp_cfg_1d", "valid: dit"),
    ("model.diffusion.config.global_cond_type", "adaln", "valid: prepend, adaLN (did you mean 'adaLN'?)"),
    ("model.diffusion.config.attn_kwargs", {"qk_norm": "rms"}, "valid: none, l2, ln, dyt"),
    ("model.diffusion.diffusion_objective", "rf", "valid: v, rectified_flow, rf_denoiser"),
    ("model.pretransform.type", "wavelet", "valid: autoencoder"),
    ("training.timestep_sampler", "logit-normal", "(did you mean 'logit_normal'?)"),
])
def test_unknown_types_list_the_valid_ones(path, value, valid):
    config = with_change(with_t5(sao_like()), path, value)
    assert any(valid in p for p in problems(config)), problems(config)


def test_other_conditioner_types_are_refused_with_the_valid_ones():
    config = with_t5(sao_like())
    config["model"]["conditioning"]["configs"][0] = {"id": "prompt", "type": "clap_text", "config": {}}
    assert any("model.conditioning.configs[0].type: unknown conditioner type (others are not implemented) "
               "\"clap_text\"; valid: t5, number, int, list" in p for p in problems(config))


def test_numbers_declared_twice_are_cross_checked_all_at_once():
    config = with_t5(sao_like())
    config["model"]["io_channels"] = 8
    config["model"]["diffusion"]["config"].update(io_channels=8, cond_token_dim=64, global_cond_dim=48, num_heads=3)
    config["audio_channels"] = 1
    found = problems(config)
    assert "model.diffusion.config.io_channels: is 8 but the pretransform's latent_dim is 4 (the model diffuses " \
           "the pretransform's latents)" in found
    assert "audio_channels: is 1 but the pretransform takes 2 channels (model.pretransform.config.io_channels)" in found
    assert any(p.startswith("model.diffusion.config.cond_token_dim: is 64 but the cross-attention conditioners")
               for p in found)
    assert "model.diffusion.config.num_heads: embed_dim 64 is not a multiple of num_heads 3" in found
    assert any(p.startswith("model.diffusion.config.global_cond_dim: is 48 but the global conditioners "
                            "['seconds_start', 'seconds_total'] give 64") for p in found)


def test_routing_problems():
    config = with_t5(sao_like())
    config["model"]["diffusion"]["global_cond_ids"] = ["prompt", "seconds_totl"]
    found = problems(config)
    assert any("unknown conditioner id 'seconds_totl'" in p and "did you mean 'seconds_total'" in p for p in found)
    config["model"]["diffusion"]["global_cond_ids"] = ["prompt"]
    config["model"]["diffusion"]["config"]["global_cond_dim"] = 32
    assert any("'prompt' is a t5 conditioner with 8 tokens; global conditioning takes one-token conditioners" in p
               for p in problems(config))
    config = with_change(with_t5(sao_like()), "model.diffusion.cross_attention_cond_ids", [])
    assert any("cond_token_dim: is 32 but no conditioner is routed there" in p for p in problems(config))


def test_network_shapes_the_reference_would_crash_on():
    config = with_change(with_t5(sao_like()), "model.diffusion.config.num_heads", 4)
    assert any("16 features per head, but the rotary embeddings" in p for p in problems(config))
    config = with_change(with_t5(sao_like()), "model.diffusion.config.num_heads", 3)
    assert any("embed_dim 64 is not a multiple of num_heads 3" in p for p in problems(config))
    config = with_change(with_t5(options_a()), "model.diffusion.config.ff_kwargs.conv_kernel_size", 4)
    assert any("expected an odd kernel size" in p for p in problems(config))


def test_pretransform_problems_keep_their_json_path():
    config = with_change(with_t5(sao_like()), "model.pretransform.config.encoder.config.strides", "4")
    assert any(p.startswith("model.pretransform.config.encoder.config.strides: expected a list of integers")
               for p in problems(config))


def test_training_section_is_validated():
    config = with_t5(sao_like())
    training = config["training"]
    training["optimizer_configs"]["diffusion"]["optimizer"]["type"] = "AdamWW"
    training["optimizer_configs"]["diffusion"]["scheduler"]["config"]["warmup"] = 1.5
    training["timestep_sampler"] = "uniform"
    training["timestep_sampler_options"] = {"mean_logsnr": 0}
    training["cfg_dropout_prob"] = 2
    training["demo"]["num_demos"] = 3
    found = problems(config)
    assert any(p.startswith("training.optimizer_configs.diffusion.optimizer.type: unknown optimizer 'AdamWW'")
               for p in found)
    assert "training.optimizer_configs.diffusion.scheduler.config.warmup: expected 0 <= warmup < 1, got 1.5" in found
    assert any("the 'uniform' timestep sampler takes no options" in p for p in found)
    assert "training.cfg_dropout_prob: expected a probability in [0, 1], got 2" in found
    assert any(p.startswith("training.demo.demo_cond: has 2 entries but num_demos is 3") for p in found)
    log_snr = with_change(with_t5(sao_like()), "training.timestep_sampler", "log_snr")
    log_snr["training"]["timestep_sampler_options"] = {"mean_logsnr": -1.0, "std_logsnr": 1.5}
    parsed = parse_diffusion_config(log_snr).training
    assert parsed is not None and (parsed.mean_logsnr, parsed.std_logsnr) == (-1.0, 1.5)


def test_another_model_type_is_one_problem():
    config = json.loads((SPEC / "stable_audio_open_vae_config.json").read_text())
    assert problems(config) == [("model_type: unknown model_type \"autoencoder\"; valid: diffusion_cond, "
                                "diffusion_uncond")]


def test_building_twice_gives_the_same_layout_and_leaves_the_config_alone():
    config = with_t5(options_a())
    before = json.dumps(config, sort_keys=True)
    first, second = build_diffusion_model(config), build_diffusion_model(config)
    assert json.dumps(config, sort_keys=True) == before
    assert {k: v.shape for k, v in first.state_dict().items()} == {k: v.shape for k, v in second.state_dict().items()}
