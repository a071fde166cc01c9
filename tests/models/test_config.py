"""Autoencoder config validation: every problem reported with its JSON path."""

import json

import pytest

from preencode.errors import ConfigError
from preencode.models.config import parse_autoencoder_config
from tests.helpers import SPEC, tiny_config, with_change

BASE = tiny_config()

MALFORMED = [
    ("model.encoder.config.strides", "4", 'model.encoder.config.strides: expected a list of integers, got "4"'),
    ("model.encoder.type", "seanet", "model.encoder.type: unknown encoder type \"seanet\"; valid: oobleck"),
    ("model.bottleneck.type", "vq", 'model.bottleneck.type: unknown bottleneck type "vq"; valid: vae'),
    ("model.latent_dim", ..., "model.latent_dim: is required but missing"),
    ("sample_rate", "44100", 'sample_rate: expected an integer, got "44100"'),
    ("model.downsampling_ratio", 16, "model.downsampling_ratio: expected the product of model.encoder.config"
                                     ".strides [2, 4] = 8, got 16"),
    ("model.encoder.config.latent_dim", 4, "model.encoder.config.latent_dim: expected 8 (2 x latent_dim for a "
                                           "vae bottleneck"),
    ("model.decoder.config.latent_dim", 6, "model.decoder.config.latent_dim: expected the model latent_dim 4"),
    ("model.encoder.config.chanels", 4, "model.encoder.config.chanels: unknown key (did you mean 'channels'?)"),
    ("model.encoder.config.use_snake", "yes", 'model.encoder.config.use_snake: expected true or false, got "yes"'),
    ("model.encoder.config.antialias_activation", True, "antialias_activation: true is not supported"),
    ("model_type", "diffusion_cond", "model_type: expected \"autoencoder\", got 'diffusion_cond'"),
    ("model.encoder.config.c_mults", [1, 2, 4], "model.encoder.config.strides: expected as many strides as c_mults"),
    ("model.io_channels", 0, "model.io_channels: expected an integer >= 1, got 0"),
]


@pytest.mark.parametrize("path,value,message", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_config_names_json_path(path, value, message):
    with pytest.raises(ConfigError) as err:
        parse_autoencoder_config(with_change(BASE, path, value))
    assert message in str(err.value)


def test_all_problems_reported_at_once():
    bad = with_change(BASE, "model.encoder.config.strides", "4")
    bad = with_change(bad, "sample_rate", "x")
    bad = with_change(bad, "model.bottleneck.type", "nope")
    with pytest.raises(ConfigError) as err:
        parse_autoencoder_config(bad)
    assert len(err.value.problems) == 3


def test_training_section_and_unknown_top_level_sections_accepted():
    cfg = with_change(BASE, "something_else", {"a": 1})
    parsed = parse_autoencoder_config(cfg)
    assert parsed.downsampling_ratio == 8 and parsed.latent_dim == 4


def test_stable_audio_open_config_parses():
    cfg = parse_autoencoder_config(json.loads((SPEC / "stable_audio_open_vae_config.json").read_text()))
    assert (cfg.sample_rate, cfg.io_channels, cfg.latent_dim, cfg.downsampling_ratio) == (44100, 2, 64, 2048)
    assert cfg.bottleneck.type == "vae" and cfg.decoder.final_tanh is False
