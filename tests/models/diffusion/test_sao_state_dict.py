"""The full Stable Audio Open 1.0 model built from its own config has the released checkpoint's keys.

Built on the ``meta`` device (no memory, no weights); the t5 conditioner does not load T5 to be built.
The key list (``sao_model_state_dict_keys.json``) was written from stable-audio-tools'
``create_model_from_config`` on the same config.
"""

from __future__ import annotations

import json

import pytest
import torch

from preencode.models.diffusion import build_diffusion_model
from tests.helpers import SPEC

CONFIG = SPEC / "stable_audio_open_model_config.json"
KEYS = SPEC / "sao_model_state_dict_keys.json"


@pytest.fixture(scope="module")
def sao():
    if not CONFIG.exists() or not KEYS.exists():
        pytest.skip(f"reference material not found under {SPEC}")
    with torch.device("meta"):
        model = build_diffusion_model(CONFIG)
    return model, json.loads(KEYS.read_text())


def test_keys_and_shapes_equal_the_released_checkpoint(sao):
    model, spec = sao
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert len(ours) == spec["num_keys"] == 745
    assert sorted(set(spec["keys"]) - set(ours)) == []
    assert sorted(set(ours) - set(spec["keys"])) == []
    assert ours == spec["keys"]
    assert sum(v.numel() for v in model.state_dict().values()) == spec["num_params"] == 1_213_448_210
    by_prefix: dict[str, int] = {}
    for key, value in model.state_dict().items():
        by_prefix[key.split(".")[0]] = by_prefix.get(key.split(".")[0], 0) + value.numel()
    assert by_prefix == spec["params_by_prefix"]


def test_network_and_conditioner_keys_come_in_the_reference_order(sao):
    model, spec = sao
    ours = [k for k in model.state_dict() if not k.startswith("pretransform.")]
    assert ours == [k for k in spec["keys"] if not k.startswith("pretransform.")]


def test_t5_is_not_loaded_nor_in_the_state_dict(sao):
    model, _ = sao
    t5 = model.conditioner.conditioners["prompt"]
    assert t5._frozen is None
    assert not [k for k in model.state_dict() if k.startswith("conditioner.conditioners.prompt")]
    assert model.config.objective == "v" and model.min_input_length == 2048
