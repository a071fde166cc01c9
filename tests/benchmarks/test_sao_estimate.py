"""The Stable Audio Open training estimate, checked on the bundled tiny model of the same layout."""

from __future__ import annotations

import pytest

from benchmarks.sao_training_estimate import estimate, report
from preencode.demo.finetune import demo_model_config


def test_estimate_of_a_tiny_stable_audio_open_shaped_model():
    r = estimate(demo_model_config())
    assert r["latent_frames"] == 128 and r["sequence"] == 129 and r["context_tokens"] == 16 + 2
    assert r["backward_tflop"] == pytest.approx(2 * r["forward_tflop"], rel=0.05)  # backward ~ 2x forward
    blocks = 2 * (4 * 64 * 64 + 64 * 64 + 2 * 32 * 64 + 64 * 64 + 3 * 64 * 256)  # attention, cross, SwiGLU (x2)
    assert r["forward_tflop"] * 1e12 > 2 * blocks * 129  # at least the blocks' matrix products
    per = r["activation_gb_per_sample"]
    assert per["fp32+ckpt"] < per["fp32"] and per["bf16"] < per["fp32"]
    for kind, fits in r["max_batch"].items():
        assert fits[24] <= fits[40] <= fits[80], kind
    assert "TFLOP per sample" in report(r)
