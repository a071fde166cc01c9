"""The benchmarks' compute budget: the encoder's convolution FLOPs and the conv1d throughput probe."""

import pytest

from benchmarks.flops import encoder_gflops_per_second_of_audio, measure_conv1d_gflops
from preencode.models.config import OobleckConfig, load_autoencoder_config
from tests.helpers import SPEC


def test_encoder_flops_of_stable_audio_open():
    cfg = load_autoencoder_config(SPEC / "stable_audio_open_vae_config.json")
    assert encoder_gflops_per_second_of_audio(cfg.encoder, 44100) == pytest.approx(108.57, rel=1e-3)


def test_encoder_flops_by_hand():
    """One stride-2 block, 4 channels, stereo in, latent 8, 10 samples: every conv counted."""
    enc = OobleckConfig(io_channels=2, channels=4, c_mults=(2,), strides=(2,), latent_dim=8)
    expected = (2 * 2 * 4 * 7 * 10 + 3 * (2 * 4 * 4 * 7 * 10 + 2 * 4 * 4 * 10) + 2 * 4 * 8 * 4 * 5
                + 2 * 8 * 8 * 3 * 5)
    assert encoder_gflops_per_second_of_audio(enc, 10) * 1e9 == pytest.approx(expected)


def test_measure_conv1d_gflops_is_positive():
    assert measure_conv1d_gflops(channels=8, length=256, seconds=0.01) > 0
