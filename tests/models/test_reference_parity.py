"""Numerical parity with stable-audio-tools' own AudioAutoencoder, against stored reference outputs.

How the stored values were produced (no reference code lives in this repo): for each config below,
our model was built and given deterministic weights with ``tests.helpers.randomized(model, seed)``,
saved as ``{"state_dict": ...}``; stable-audio-tools (HEAD of its main branch, torch 2.13.0 CPU)
built its model with ``create_model_from_config`` from the same config, loaded that checkpoint with
``load_ckpt_state_dict`` + ``load_state_dict(strict=True)`` (its ``torch.nn.utils.weight_norm``
keys are ``weight_g``/``weight_v``, the same as ours) and computed, in float32 and float64:
encoder output, posterior ``mean, scale = pre.chunk(2, 1)``, ``std = softplus(scale) + 1e-4``,
``decode(mean)``, and ``encode(audio)`` (a VAE sample) after ``torch.manual_seed(0)``.

Measured when the fixture was made: float64 agrees to ~1e-15 relative for the tiny models
(3e-13 for Stable Audio Open's VAE); float32 differs by the reference's own float32 rounding
error (its float32 vs its float64 differs by the same amount), up to 3e-6 relative on the encoder
and 6e-5 on the decoder (Snake with random weights amplifies rounding).

Tolerances: each comparison is ``max|ours - ref| <= tol * max|ref|``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from preencode.models.checkpoint import load_autoencoder
from preencode.models.factory import build_autoencoder
from tests.helpers import SPEC, randomized

DATA = Path(__file__).parent / "data"
TINY = np.load(DATA / "reference_parity.npz")
VARIANTS = sorted({k.split("/")[0] for k in TINY.files})  # tiny_snake, tiny_elu, tiny_nearest, tiny_mono_tanh

TOL_F64 = 1e-9
TOL_F32_ENCODER = 1e-4
TOL_F32_DECODER = 5e-4


def assert_near(ours: torch.Tensor, ref: np.ndarray, tol: float, what: str) -> None:
    ours_np = ours.detach().cpu().double().numpy()
    assert ours_np.shape == ref.shape, what
    err = np.abs(ours_np - ref).max()
    scale = np.abs(ref).max()
    assert err <= tol * scale, f"{what}: max abs diff {err:.3g} > {tol} * max|ref| ({scale:.3g})"


def tiny(name: str, key: str) -> np.ndarray:
    return TINY[f"{name}/{key}"]


def test_fixture_covers_the_variants():
    assert VARIANTS == ["tiny_elu", "tiny_mono_tanh", "tiny_nearest", "tiny_snake"]
    configs = {n: json.loads(str(tiny(n, "config"))) for n in VARIANTS}
    assert configs["tiny_elu"]["model"]["encoder"]["config"]["use_snake"] is False
    assert configs["tiny_nearest"]["model"]["decoder"]["config"]["use_nearest_upsample"] is True
    assert configs["tiny_mono_tanh"]["model"]["decoder"]["config"]["final_tanh"] is True
    assert configs["tiny_mono_tanh"]["audio_channels"] == 1


def _our_model(name: str) -> torch.nn.Module:
    return randomized(build_autoencoder(json.loads(str(tiny(name, "config")))), seed=int(tiny(name, "seed"))).eval()


@pytest.mark.parametrize("name", VARIANTS)
def test_float64_matches_reference(name):
    model = _our_model(name).double()
    audio = torch.from_numpy(tiny(name, "audio")).double()
    with torch.no_grad():
        mean, std = model.bottleneck.posterior_params(model.encode_pre_bottleneck(audio))
        decoded = model.decode(torch.from_numpy(tiny(name, "f64_mean")))
    assert_near(mean, tiny(name, "f64_mean"), TOL_F64, "mean")
    assert_near(std, tiny(name, "f64_std"), TOL_F64, "std")
    assert_near(decoded, tiny(name, "f64_decoded"), TOL_F64, "decoded")


@pytest.mark.parametrize("name", VARIANTS)
def test_float32_loaded_checkpoint_matches_reference(name, tmp_path):
    """The production path: checkpoint file -> load_autoencoder (strict, weight norm folded) -> float32."""
    config = tmp_path / "config.json"
    config.write_text(str(tiny(name, "config")))
    ckpt = tmp_path / "model.ckpt"
    torch.save({"state_dict": _our_model(name).state_dict()}, ckpt)
    model = load_autoencoder(config, ckpt)
    audio = torch.from_numpy(tiny(name, "audio"))
    with torch.no_grad():
        mean, std = model.bottleneck.posterior_params(model.encode_pre_bottleneck(audio))
        decoded = model.decode(torch.from_numpy(tiny(name, "f32_mean")))
        torch.manual_seed(0)
        sample = model.encode(audio)  # posterior="sample" without given noise draws randn_like(mean), as the reference
    assert_near(mean, tiny(name, "f32_mean"), TOL_F32_ENCODER, "mean")
    assert_near(std, tiny(name, "f32_std"), TOL_F32_ENCODER, "std")
    assert_near(decoded, tiny(name, "f32_decoded"), TOL_F32_DECODER, "decoded")
    assert_near(sample, tiny(name, "f32_sample_seed0"), TOL_F32_ENCODER, "sample with torch.manual_seed(0)")


def test_stable_audio_open_vae_matches_reference():
    """The full 156M-parameter Stable Audio Open VAE on 4096 samples (2 latent frames), float64."""
    sao = np.load(DATA / "reference_parity_sao.npz")
    config = json.loads((SPEC / "stable_audio_open_vae_config.json").read_text())
    model = randomized(build_autoencoder(config), seed=int(sao["seed"])).eval().double()
    audio = torch.from_numpy(sao["audio"]).double()
    with torch.no_grad():
        mean, std = model.bottleneck.posterior_params(model.encode_pre_bottleneck(audio))
        decoded = model.decode(torch.from_numpy(sao["f64_mean"]))
    assert_near(mean, sao["f64_mean"], TOL_F64, "mean")
    assert_near(std, sao["f64_std"], TOL_F64, "std")
    assert_near(decoded[..., :256], sao["f64_decoded_head"], TOL_F64, "decoded (first 256 samples)")
