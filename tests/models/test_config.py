"""Autoencoder config validation: every problem reported with its JSON path."""

import json

import pytest

from preencode.errors import ConfigError
from preencode.models.bottleneck_config import DacRvqSettings, FsqSettings, TanhSettings
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


BAD_BOTTLENECKS = [
    ({"type": "vae", "config": {"scale": 1}}, "model.bottleneck.config.scale: unknown key"),
    ({"type": "vae", "confg": {}}, "model.bottleneck.confg: unknown key (did you mean 'config'?)"),
    ({"type": "l2_norm", "config": {"dim": 4}}, "model.bottleneck.config.dim: unknown key"),
    ({"type": "tanh", "config": {"scael": 2}}, "model.bottleneck.config.scael: unknown key (did you mean 'scale'?)"),
    ({"type": "tanh", "config": {"scale": "2"}}, 'model.bottleneck.config.scale: expected a number, got "2"'),
    ({"type": "tanh", "config": {"scale": 0}}, "model.bottleneck.config.scale: expected a number > 0, got 0"),
    ({"type": "dac_rvq", "config": {"input_dim": 4, "n_codebook": 3}},
     "model.bottleneck.config.n_codebook: unknown key (did you mean 'n_codebooks'?)"),
    ({"type": "dac_rvq", "config": {"input_dim": 4, "n_codebooks": 3, "codebook_dim": [2, 2]}},
     "model.bottleneck.config.codebook_dim: expected an integer >= 1 or a list of n_codebooks (3)"),
    ({"type": "dac_rvq", "config": {"input_dim": 4, "codebook_size": 0}},
     "model.bottleneck.config.codebook_size: expected an integer >= 1, got 0"),
    ({"type": "dac_rvq", "config": {"input_dim": 4, "quantizer_dropout": 2}},
     "model.bottleneck.config.quantizer_dropout: expected a number from 0 to 1, got 2"),
    ({"type": "dac_rvq", "config": {"input_dim": 4, "quantize_on_decode": True}},
     "model.bottleneck.config.quantize_on_decode: only false is supported"),
    ({"type": "dac_rvq", "config": {"input_dim": 6}},
     "model.encoder.config.latent_dim: expected 6 (the dac_rvq bottleneck's input_dim), got 4"),
    ({"type": "fsq", "config": {"dim": 4}}, "model.bottleneck.config.levels: is required but missing"),
    ({"type": "fsq", "config": {"levels": [5, 1]}}, "model.bottleneck.config.levels: expected integers >= 2"),
    ({"type": "fsq", "config": {"levels": [5, 5], "dims": 4}},
     "model.bottleneck.config.dims: unknown key (did you mean 'dim'?)"),
    ({"type": "fsq", "config": {"levels": [5], "noise_augment_dim": 2}},
     "model.bottleneck.config.noise_augment_dim: only 0 is supported"),
    ({"type": "fsq", "config": {"levels": [5], "preserve_symmetry": True}},
     "model.bottleneck.config.preserve_symmetry: only false is supported"),
]


@pytest.mark.parametrize("bottleneck,message", BAD_BOTTLENECKS, ids=[f"{b['type']}-{i}" for i, (b, _) in
                                                                    enumerate(BAD_BOTTLENECKS)])
def test_bottleneck_config_is_validated_when_parsed(bottleneck, message):
    """Before any model is built: every bottleneck type's keys, types and unsupported options."""
    with pytest.raises(ConfigError) as err:
        parse_autoencoder_config(tiny_config(bottleneck=bottleneck))
    assert message in str(err.value)


def test_bottleneck_problems_are_reported_with_the_others():
    cfg = with_change(tiny_config(bottleneck={"type": "fsq", "config": {"levles": [5], "dim": "4"}}),
                      "sample_rate", "x")
    with pytest.raises(ConfigError) as err:
        parse_autoencoder_config(cfg)
    assert sorted(p.split(":")[0] for p in err.value.problems) == [
        "model.bottleneck.config.dim", "model.bottleneck.config.levels", "model.bottleneck.config.levles",
        "sample_rate"]


@pytest.mark.parametrize("bottleneck,settings,quantizers,codebook", [
    ({"type": "vae", "requires_grad": False}, None, None, None),
    ({"type": "tanh", "config": {"scale": 2.5}}, TanhSettings(2.5), None, None),
    ({"type": "dac_rvq", "config": {"input_dim": 4, "n_codebooks": 2, "codebook_size": 300, "codebook_dim": [2, 3]}},
     DacRvqSettings(input_dim=4, n_codebooks=2, codebook_size=300, codebook_dims=(2, 3)), 2, 300),
    ({"type": "fsq", "config": {"levels": [5, 4], "dim": 4, "num_codebooks": 2, "keep_num_codebooks_dim": True}},
     FsqSettings(levels=(5, 4), dim=4, num_codebooks=2), 2, 20),
])
def test_valid_bottleneck_configs_give_typed_settings(bottleneck, settings, quantizers, codebook):
    parsed = parse_autoencoder_config(tiny_config(bottleneck=bottleneck)).bottleneck
    assert (parsed.type, parsed.settings) == (bottleneck["type"], settings)
    assert (parsed.num_quantizers, parsed.codebook_size) == (quantizers, codebook)
    assert parsed.config == bottleneck.get("config", {})
