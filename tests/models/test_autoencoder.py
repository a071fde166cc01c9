"""Model zoo: state-dict layout, shapes, weight-norm folding, bottlenecks, numerical regression."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from preencode.models.factory import build_autoencoder
from tests.helpers import SPEC, randomized, tiny_config

REGRESSION = Path(__file__).parent / "data" / "tiny_vae_regression.npz"


def test_stable_audio_open_state_dict_matches_reference_keys_and_shapes():
    spec = json.loads((SPEC / "sao_vae_state_dict_keys.json").read_text())
    model = build_autoencoder(json.loads((SPEC / "stable_audio_open_vae_config.json").read_text()))
    ours = {k: (list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in model.state_dict().items()}
    theirs = {k["key"]: (k["shape"], k["dtype"]) for k in spec["keys"]}
    assert ours == theirs
    assert sum(v.numel() for v in model.state_dict().values()) == spec["num_params_total"]


@pytest.mark.parametrize("channels", [1, 2])
def test_encode_decode_shapes(channels):
    model = randomized(build_autoencoder(tiny_config(channels=channels))).eval()
    audio = torch.randn(3, channels, 64)
    with torch.inference_mode():
        z = model.encode(audio)
        mean = model.encode(audio, posterior="mean")
        out = model.decode(z)
    assert z.shape == mean.shape == (3, 4, 8)
    assert out.shape == (3, channels, 64)
    assert not torch.allclose(z, mean)  # a sample differs from the posterior mean


def test_vae_sample_uses_given_noise():
    model = randomized(build_autoencoder(tiny_config())).eval()
    audio = torch.randn(2, 2, 64)
    noise = torch.randn(2, 4, 8)
    with torch.inference_mode():
        a = model.encode(audio, noise=noise)
        b = model.encode(audio, noise=noise)
        pre = model.encode_pre_bottleneck(audio)
    mean, scale = pre.chunk(2, dim=1)
    assert torch.equal(a, b)
    torch.testing.assert_close(a, mean + (torch.nn.functional.softplus(scale) + 1e-4) * noise)


def test_wrong_audio_shape_is_rejected():
    model = build_autoencoder(tiny_config())
    with pytest.raises(ValueError, match="multiple of the downsampling ratio"):
        model.encode(torch.randn(1, 2, 65))
    with pytest.raises(ValueError, match=r"expected audio \[B, 2, T\]"):
        model.encode(torch.randn(1, 1, 64))


@pytest.mark.parametrize("nearest", [False, True])
def test_folding_weight_norm_keeps_outputs(nearest):
    cfg = tiny_config()
    cfg["model"]["decoder"]["config"]["use_nearest_upsample"] = nearest
    model = randomized(build_autoencoder(cfg)).eval()
    audio = torch.randn(2, 2, 128)
    with torch.inference_mode():
        latent = torch.randn(2, 4, 16, generator=torch.Generator().manual_seed(1))
        before = (model.encode(audio, posterior="mean"), model.decode(latent))
        model.fold_weight_norm()
        after = (model.encode(audio, posterior="mean"), model.decode(latent))
    for x, y in zip(before, after, strict=True):
        assert (x - y).abs().max() <= 1e-5 * max(1.0, x.abs().max().item())
    assert not any(k.endswith(("weight_g", "weight_v")) for k in model.state_dict())


@pytest.mark.parametrize("kind,config", [("tanh", {"scale": 2.0}), ("l2_norm", {}), (None, None)])
def test_continuous_bottlenecks(kind, config):
    bottleneck = {"type": kind, "config": config} if kind else None
    cfg = tiny_config(bottleneck=bottleneck or {})
    if kind is None:
        del cfg["model"]["bottleneck"]
    model = randomized(build_autoencoder(cfg)).eval()
    with torch.inference_mode():
        z = model.encode(torch.randn(1, 2, 64))
    assert z.shape == (1, 4, 8) and not model.is_discrete
    if kind == "tanh":
        assert z.abs().max() <= 2.0
    if kind == "l2_norm":
        torch.testing.assert_close(z.norm(dim=1), torch.ones(1, 8))


def test_numerical_regression_against_stored_values():
    """A fixed-init tiny model must keep producing the stored latents and audio."""
    torch.manual_seed(0)
    model = randomized(build_autoencoder(tiny_config()), seed=123).eval()
    audio = torch.sin(torch.linspace(0, 50, 128)).repeat(1, 2, 1) * 0.5
    with torch.inference_mode():
        mean = model.encode(audio, posterior="mean").numpy()
        recon = model.decode(torch.from_numpy(mean)).numpy()
    if not REGRESSION.exists():  # pragma: no cover - writes the reference values once
        REGRESSION.parent.mkdir(exist_ok=True)
        np.savez(REGRESSION, mean=mean, recon=recon)
    stored = np.load(REGRESSION)
    np.testing.assert_allclose(mean, stored["mean"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(recon, stored["recon"], rtol=1e-4, atol=1e-5)
