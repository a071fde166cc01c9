import math

import pytest
import torch

from preencode.train.objectives import build_objective, sample_timesteps
from preencode.train.sampling import cfg_denoiser, sample_ddim_v, sample_euler_rf


@pytest.mark.parametrize("name", ["v", "rectified_flow"])
def test_objective_endpoints(name):
    obj = build_objective(name)
    x0, noise = torch.randn(2, 3, 5), torch.randn(2, 3, 5)
    xt, _ = obj.noised_and_target(x0, torch.zeros(2), noise)
    torch.testing.assert_close(xt, x0)
    xt, _ = obj.noised_and_target(x0, torch.ones(2), noise)
    torch.testing.assert_close(xt, noise, atol=1e-6, rtol=0)


def test_v_target():
    x0, noise, t = torch.randn(1, 2, 3), torch.randn(1, 2, 3), torch.tensor([0.3])
    _, target = build_objective("v").noised_and_target(x0, t, noise)
    a, s = math.cos(0.3 * math.pi / 2), math.sin(0.3 * math.pi / 2)
    torch.testing.assert_close(target, a * noise - s * x0)


def test_masked_loss_ignores_padding():
    obj = build_objective("rectified_flow")
    out, target = torch.zeros(1, 2, 4), torch.zeros(1, 2, 4)
    target[..., 3] = 100.0
    mask = torch.tensor([[True, True, True, False]])
    assert obj.loss(out, target, mask) == 0
    assert obj.loss(out, target, torch.zeros(1, 4, dtype=torch.bool)) == 0  # all padding: no NaN
    assert obj.loss(out, target) > 0


def test_samplers_reach_a_point_mass_with_an_oracle():
    c = torch.full((1, 2, 3), 0.7)
    noise = torch.randn(1, 2, 3)
    rf = sample_euler_rf(lambda x, t: (x - c) / t[:, None, None].clamp_min(1e-8), noise, 10)  # v = eps - x0
    torch.testing.assert_close(rf, c, atol=1e-5, rtol=0)

    def v_oracle(x, t):
        a, s = torch.cos(t * math.pi / 2)[:, None, None], torch.sin(t * math.pi / 2)[:, None, None]
        eps = (x - a * c) / s.clamp_min(1e-8)
        return a * eps - s * c

    torch.testing.assert_close(sample_ddim_v(v_oracle, noise, 10), c, atol=1e-5, rtol=0)


def test_cfg_combines_cond_and_uncond():
    fn = cfg_denoiser(lambda x, t: torch.ones_like(x), lambda x, t: torch.zeros_like(x), 3.0)
    assert torch.equal(fn(torch.zeros(1, 1, 1), torch.ones(1)), torch.full((1, 1, 1), 3.0))


def test_timestep_samplers():
    g = torch.Generator().manual_seed(0)
    for name in ("uniform", "logit_normal"):
        t = sample_timesteps(name, 100, g)
        assert t.shape == (100,) and (t > 0).all() and (t < 1).all()
    with pytest.raises(Exception, match="valid: uniform, logit_normal"):
        sample_timesteps("bogus", 1)
