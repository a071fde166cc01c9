"""A tiny Oobleck autoencoder deep enough (hop 32) that receptive fields span many frames."""

import pytest
import torch

from preencode.models.factory import build_autoencoder
from tests.helpers import randomized, tiny_config, with_change


def deep_tiny_config(channels: int = 2) -> dict:
    """Strides [2, 4, 4] (hop 32), 4 base channels: receptive field (485, 516) samples."""
    cfg = tiny_config(channels=channels)
    for part in ("encoder", "decoder"):
        cfg = with_change(cfg, f"model.{part}.config.strides", [2, 4, 4])
        cfg = with_change(cfg, f"model.{part}.config.c_mults", [1, 2, 2])
    return with_change(cfg, "model.downsampling_ratio", 32)


@pytest.fixture
def make_deep_model():
    """Folded, eval-mode deep tiny model with random weights.

    ``gain`` scales every conv's weight norm. At 0.5 activations stay of order one, as in a trained
    model; at 1.0 they grow to ~50 and float32 rounding (~1e-4) swamps what the tests check.
    """
    def make(channels: int = 2, seed: int = 0, gain: float = 0.5):
        model = randomized(build_autoencoder(deep_tiny_config(channels)), seed=seed)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith("weight_g"):
                    p.mul_(gain)
        return model.eval().fold_weight_norm()
    return make
