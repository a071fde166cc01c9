"""Samplers: schedules, determinism, and correctness on data whose ideal denoiser is known.

For data ``x0 ~ N(0, s^2)`` the ideal denoiser is linear, so the v samplers and the Euler flow
fed with it must turn standard noise into samples of standard deviation ``s``; this checks the SDE
sampler (whose noise cannot equal the reference's Brownian-tree draws) on its own. Ping-pong is made
for distilled models that output samples, not posterior means, so only its determinism is checked here.
The deterministic samplers are also compared with the reference in test_diffusion_reference_parity.
"""

from __future__ import annotations

import math

import pytest
import torch

from preencode.models.diffusion.sampling import (
    DEFAULTS,
    polyexponential_sigmas,
    rf_schedule,
    sample,
    sample_dpmpp_2m,
    sample_dpmpp_3m_sde,
    sample_euler,
    v_denoiser,
)

S = 0.5  # data standard deviation


def ideal_denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    s = sigma.reshape(-1, 1, 1)
    return x * S ** 2 / (S ** 2 + s ** 2)


def ideal_v(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The v-prediction whose k-diffusion denoiser is the ideal one (x is the scaled input alpha x0 + sigma eps)."""
    alpha, sigma = torch.cos(t * math.pi / 2).reshape(-1, 1, 1), torch.sin(t * math.pi / 2).reshape(-1, 1, 1)
    x0 = x * alpha * S ** 2 / (alpha ** 2 * S ** 2 + sigma ** 2)
    return (alpha * x - x0) / sigma  # v = alpha eps - sigma x0, with eps = (x - alpha x0) / sigma


def ideal_velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Rectified flow: E[noise - x0 | x_t] for x_t = (1 - t) x0 + t noise."""
    t = t.reshape(-1, 1, 1)
    x0 = x * (1 - t) * S ** 2 / ((1 - t) ** 2 * S ** 2 + t ** 2)
    return (x - x0) / t


def noise(seed: int = 0, n: int = 4096) -> torch.Tensor:
    return torch.randn(n, 1, 1, generator=torch.Generator().manual_seed(seed))


def test_schedules():
    sigmas = polyexponential_sigmas(5, 0.01, 100.0)
    assert sigmas.shape == (6,) and sigmas[-1] == 0
    assert torch.allclose(sigmas[:-1].log().diff(), torch.full((4,), -math.log(1e4) / 4), atol=1e-5)
    assert sigmas[0].item() == pytest.approx(100.0) and sigmas[-2].item() == pytest.approx(0.01)
    ts = rf_schedule(8)
    assert ts[0] == 1 and ts[-1] == 0 and bool((ts.diff() < 0).all())
    logsnr = torch.log((1 - ts[1:-1]) / ts[1:-1])
    assert torch.allclose(logsnr.diff(), torch.full((6,), 1.0), atol=1e-4)  # uniform from -6 to 2
    assert DEFAULTS["v"].sampler == "dpmpp-3m-sde" and DEFAULTS["rf_denoiser"].steps == 8


def test_v_denoiser_wraps_a_v_model_into_the_ideal_denoiser():
    x, sigma = noise() * 3.0, torch.full((4096,), 3.0)
    assert torch.allclose(v_denoiser(ideal_v)(x, sigma), ideal_denoiser(x, sigma), atol=1e-5)


@pytest.mark.parametrize("sampler, steps", [("dpmpp-2m", 30), ("dpmpp-3m-sde", 60)])
def test_v_samplers_reach_the_data_distribution(sampler, steps):
    out = sample(ideal_v, noise(), "v", sampler, steps=steps, generator=torch.Generator().manual_seed(1))
    assert out.std().item() == pytest.approx(S, rel=0.05)
    assert abs(out.mean().item()) < 0.05


def test_euler_flow_reaches_the_data_distribution():
    fine = torch.cat([torch.linspace(1, 0.005, 200), torch.zeros(1)])
    out = sample_euler(ideal_velocity, noise(), fine)
    assert out.std().item() == pytest.approx(S, rel=0.03)
    # The reference's schedule ends at log-SNR 2 (t = 0.12) and then jumps to 0 in one step, which
    # returns the posterior mean there: a little less spread than the data.
    coarse = sample(ideal_velocity, noise(), "rectified_flow", "euler", steps=50)
    assert 0.9 * S < coarse.std().item() < S


@pytest.mark.parametrize("objective, sampler", [("v", "dpmpp-3m-sde"), ("rf_denoiser", "pingpong")])
def test_same_seed_same_output(objective, sampler):
    model = ideal_v if objective == "v" else ideal_velocity

    def run(seed: int) -> torch.Tensor:
        return sample(model, noise(n=16), objective, sampler, steps=6, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(run(3), run(3))
    assert not torch.equal(run(3), run(4))


def test_deterministic_samplers_agree_with_the_ode_limit():
    sigmas = polyexponential_sigmas(40, 0.01, 100.0)
    x = noise(n=64) * sigmas[0]
    exact = x * S / (sigmas[0] ** 2 + S ** 2) ** 0.5  # the probability-flow ODE of Gaussian data is linear
    assert torch.allclose(sample_dpmpp_2m(ideal_denoiser, x, sigmas), exact, rtol=1e-2, atol=1e-3)
    assert torch.allclose(sample_dpmpp_3m_sde(ideal_denoiser, x, sigmas, eta=0.0), exact, rtol=1e-2, atol=1e-3)


def test_sampler_of_another_objective_is_refused():
    with pytest.raises(ValueError, match="valid: dpmpp-3m-sde, dpmpp-2m"):
        sample(ideal_v, noise(n=2), "v", "euler", steps=2)
    with pytest.raises(ValueError, match="valid: euler, pingpong"):
        sample(ideal_velocity, noise(n=2), "rectified_flow", "dpmpp-2m", steps=2)
