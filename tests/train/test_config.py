import pytest

from preencode.errors import ConfigError
from preencode.train.config import parse_model_config
from tests.helpers import with_change
from tests.train.conftest import TINY


def test_tiny_config_parses():
    c = parse_model_config(TINY)
    assert c.io_channels == 4 and c.pretransform.scale == 2.0
    assert c.pretransform.autoencoder["sample_rate"] == 16000
    assert [cc.id for cc in c.conditioning.configs] == ["seconds_start", "seconds_total"]
    assert c.training.pre_encoded and c.training.optimizer.scheduler == "InverseLR"
    assert c.downsampling_ratio == 8


@pytest.mark.parametrize("path,value,message", [
    ("model.diffusion.type", "unet", "valid: dit"),
    ("model.conditioning.configs", [{"id": "x", "type": "nubmer", "config": {}}], "did you mean 'number'"),
    ("training.diffusion_objective", "eps", "valid: v, rectified_flow"),
    ("model.diffusion.config.io_channels", 8, "is 8 but model.io_channels is 4"),
    ("model.pretransform.config.latent_dim", 8, "pretransform's latent_dim is 8"),
    ("model.diffusion.config.global_cond_dim", 16, "give 32"),
    ("model.diffusion.config.cond_token_dim", 8, "cond_dim is 16"),
    ("model.diffusion.global_cond_ids", ["nope"], "unknown conditioner id 'nope'"),
    ("training.use_emma", True, "did you mean 'use_ema'"),
    ("training.optimizer_configs.diffusion.scheduler.type", "Foo", "valid: InverseLR"),
])
def test_config_problems_name_the_path(path, value, message):
    with pytest.raises(ConfigError) as err:
        parse_model_config(with_change(TINY, path, value))
    assert message in str(err.value)


def test_all_problems_reported_at_once():
    bad = with_change(with_change(TINY, "model.diffusion.type", "unet"), "training.timestep_sampler", "x")
    with pytest.raises(ConfigError) as err:
        parse_model_config(bad)
    assert len(err.value.problems) == 2
