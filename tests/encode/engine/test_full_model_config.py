"""pre_encode.py --model-config accepts a full diffusion model config: its model.pretransform is the autoencoder."""

from __future__ import annotations

import copy

import pytest

from preencode.encode.engine.job import autoencoder_config_of
from preencode.errors import ConfigError, UserError
from preencode.models.config import parse_autoencoder_config
from preencode.schema import load_json
from tests.helpers import SPEC, write_json


def test_stable_audio_open_model_config_gives_its_vae():
    full = load_json(SPEC / "stable_audio_open_model_config.json", "model config")
    vae = load_json(SPEC / "stable_audio_open_vae_config.json", "model config")
    from_full = autoencoder_config_of(full, "model_config.json")
    alone = parse_autoencoder_config(vae, "vae_config.json")
    for field in ("sample_rate", "latent_dim", "downsampling_ratio", "in_channels", "out_channels", "encoder",
                  "decoder", "bottleneck"):
        assert getattr(from_full, field) == getattr(alone, field), field


def test_an_autoencoder_config_is_taken_as_it_is():
    vae = load_json(SPEC / "stable_audio_open_vae_config.json", "model config")
    assert autoencoder_config_of(vae, "vae.json") == parse_autoencoder_config(vae, "vae.json")


def test_problems_of_the_full_config_are_reported_with_their_paths():
    full = load_json(SPEC / "stable_audio_open_model_config.json", "model config")
    bad = copy.deepcopy(full)
    bad["model"]["pretransform"]["config"]["latent_dim"] = "64"
    bad["model"]["diffusion"]["config"]["depht"] = 3
    with pytest.raises(ConfigError) as err:
        autoencoder_config_of(bad, "model_config.json")
    text = str(err.value)
    assert "model.pretransform.config.latent_dim" in text and "depht" in text


def test_a_diffusion_config_without_pretransform_is_refused(tmp_path):
    full = load_json(SPEC / "stable_audio_open_model_config.json", "model config")
    del full["model"]["pretransform"]
    full["model"]["io_channels"] = 2
    full["model"]["diffusion"]["config"]["io_channels"] = 2
    with pytest.raises((UserError, ConfigError), match="pretransform"):
        autoencoder_config_of(full, str(write_json(tmp_path / "m.json", full)))
