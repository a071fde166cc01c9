"""Objectives, timestep samplers, EMA and InverseLR against stored values of the real stable-audio-tools.

``data/reference_training.npz`` was made by running stable-audio-tools (commit 50049e3, torch 2.13.0 CPU,
ema-pytorch 0.2.3 and pytorch-lightning 2.1.0 as it pins them) beside ours; no reference code is in this
repository. Exactly what it holds is in ``data/README.md``. Every value below was equal to the bit when
the fixture was made; the tolerances only leave room for other CPUs' rounding.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from preencode.models.diffusion import load_diffusion_model
from preencode.train.ema import EMA, ema_decay
from preencode.train.objectives import build_objective, masked_mse
from preencode.train.optim import InverseLR
from preencode.train.timesteps import (
    DistributionShift,
    TimestepSampler,
    log_snr_timesteps,
    truncated_logit_normal,
)
from tests.train.conftest import local_t5, randomize

pytest.importorskip("transformers")

REF = np.load(Path(__file__).parent / "data" / "reference_training.npz")


def close(ours: torch.Tensor | np.ndarray, ref: np.ndarray, tol: float = 1e-6) -> None:
    ours = np.asarray(ours.detach().numpy() if isinstance(ours, torch.Tensor) else ours, dtype=np.float64)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() <= tol * max(np.abs(ref).max(), 1e-30)


# ---- objectives -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["v", "rectified_flow", "rf_denoiser"])
def test_objective_endpoints(name):
    obj = build_objective(name)
    x0, noise = torch.randn(2, 3, 5), torch.randn(2, 3, 5)
    xt, _ = obj.noised(x0, noise, torch.zeros(2))
    torch.testing.assert_close(xt, x0)
    xt, _ = obj.noised(x0, noise, torch.ones(2))
    torch.testing.assert_close(xt, noise, atol=1e-6, rtol=0)


def test_targets():
    x0, noise, t = torch.randn(1, 2, 3), torch.randn(1, 2, 3), torch.tensor([0.3])
    a, s = math.cos(0.3 * math.pi / 2), math.sin(0.3 * math.pi / 2)
    torch.testing.assert_close(build_objective("v").noised(x0, noise, t)[1], a * noise - s * x0)
    torch.testing.assert_close(build_objective("rf_denoiser").noised(x0, noise, t)[1], noise - x0)


def test_masked_loss_counts_only_kept_frames():
    out, target = torch.zeros(1, 2, 4), torch.zeros(1, 2, 4)
    target[..., 3] = 100.0
    target[0, 0, 0] = 2.0
    mask = torch.tensor([[True, True, True, False]])
    assert masked_mse(out, target, mask) == pytest.approx(4.0 / 6)  # the mean over 3 frames x 2 channels
    assert masked_mse(out, target, torch.zeros(1, 4, dtype=torch.bool)) == 0  # all padding: 0, not NaN
    assert masked_mse(out, target) > 1000


@pytest.mark.parametrize("case", ["sao_like/1/uniform", "sao_like/0/logit_normal", "small_like/1/trunc_logit_normal"])
def test_loss_of_a_fixed_batch_equals_the_reference_training_step(case):
    """The reference's ``DiffusionCondTrainingWrapper.training_step`` on a fixed pre-encoded batch (its t and
    noise recorded) against our objective with the same model, weights, t and noise: the same loss.

    Cases: v with a padding mask and a pretransform scale of 2 (latents divided by it), v without the mask,
    rf_denoiser (small_like) with the mask; the times come from our sampler seeded like the reference's."""
    name, masked, sampler = case.split("/")
    base = f"loss/{case}/"
    cfg = local_t5(json.loads(str(REF[base + "config"])))
    model = load_diffusion_model(cfg)
    seeds = {"sao_like": 1, "small_like": 2}  # the phase 1 fixtures' weights (tests/models/diffusion)
    randomize(model, seeds[name])
    cond = model.conditioner(json.loads(str(REF[base + "metadata"])), "cpu")
    x0 = torch.from_numpy(REF[base + "x0"]) / model.pretransform.scale
    mask = torch.from_numpy(REF[base + "mask"]) if masked == "1" else None
    torch.manual_seed(21)  # what the reference run did before its step
    t = TimestepSampler(sampler, seed=77)(3, x0.shape[-1])
    close(t, REF[base + "t"])
    with torch.no_grad():
        loss = build_objective(model.objective).loss(lambda x, tt: model(x, tt, cond, cfg_dropout_prob=0.0), x0,
                                                     torch.from_numpy(REF[base + "noise"]), t, mask)
    close(loss, REF[base + "loss"], 1e-5)


# ---- timestep samplers ----------------------------------------------------------------------------

def test_trunc_logit_normal_and_log_snr_equal_the_reference():
    torch.manual_seed(123)
    close(1 - truncated_logit_normal(4096), REF["timesteps/trunc_logit_normal_flipped"])
    torch.manual_seed(123)
    close(log_snr_timesteps(4096), REF["timesteps/log_snr_default"])
    torch.manual_seed(123)
    close(log_snr_timesteps(4096, 0.5, 1.0), REF["timesteps/log_snr_0.5_1.0"])
    t = REF["timesteps/trunc_logit_normal_flipped"]
    assert t.min() >= 0 and t.max() <= 1 and np.mean(t > 0.5) > 0.5  # flipped: mostly noisy


def test_distribution_shift_equals_the_reference():
    t = torch.from_numpy(REF["timesteps/shift_input"])
    keys = [k for k in REF.files if k.startswith("timesteps/shift/")]
    assert len(keys) == 5
    for key in keys:
        _, _, length, options = key.split("/", 3)
        close(DistributionShift(**json.loads(options))(t, int(length)), REF[key])


def test_uniform_is_scrambled_sobol_and_resumes():
    torch.manual_seed(5)
    sobol = torch.quasirandom.SobolEngine(1, scramble=True)  # the reference's engine (seeded globally)
    close(sobol.draw(32)[:, 0], REF["timesteps/sobol_after_manual_seed_5"])
    a = TimestepSampler("uniform", seed=3)
    first = a(8, 16)
    state = a.state_dict()
    expected = a(8, 16)
    b = TimestepSampler("uniform", seed=3)
    b.load_state_dict(state)
    assert torch.equal(b(8, 16), expected) and not torch.equal(first, expected)
    values = torch.sort(TimestepSampler("uniform", seed=1)(16, 16)).values
    assert (values[1:] - values[:-1]).min() > 0.005  # low discrepancy: no two draws of a batch coincide


def test_shift_and_one_shot_are_applied_after_drawing():
    torch.manual_seed(0)
    plain = TimestepSampler("logit_normal")(4096, 1024)
    torch.manual_seed(0)
    shifted = TimestepSampler("logit_normal", shift=DistributionShift())(4096, 1024)
    assert (shifted >= plain - 1e-6).all() and shifted.mean() > plain.mean() + 0.05  # towards noise
    one_shot = TimestepSampler("uniform", p_one_shot=0.5)(4096, 16)
    assert 0.4 < float((one_shot == 1).float().mean()) < 0.6


# ---- EMA --------------------------------------------------------------------------------------------

class _Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(3, 2)
        self.register_buffer("running", torch.zeros(2))
        self.register_buffer("count", torch.zeros(2, dtype=torch.long))


def test_ema_equals_ema_pytorch_as_the_reference_configures_it():
    torch.manual_seed(0)
    net = _Net()
    ema = EMA(net)
    gen = torch.Generator().manual_seed(3)
    for i in range(12):
        with torch.no_grad():
            net.lin.weight.copy_(torch.randn(2, 3, generator=gen))
            net.lin.bias.copy_(torch.randn(2, generator=gen))
            net.running.copy_(torch.randn(2, generator=gen))
            net.count += 1
        ema.update(net)
        close(ema.ema_model.lin.weight, REF["ema/weight"][i])
        close(ema.ema_model.running, REF["ema/running"][i])
    assert ema.ema_model.count.tolist() == REF["ema/count"].tolist()  # integer buffers are left alone
    layout = {k: [str(v.dtype), list(v.shape)] for k, v in ema.state_dict().items()}
    assert layout == json.loads(str(REF["ema/keys"]))  # so checkpoints interchange


def test_ema_decay_schedule_equals_the_reference():
    for step, decay in REF["ema/decay_by_step"]:
        assert ema_decay(int(step) - 1) == pytest.approx(decay, abs=1e-12)
    assert ema_decay(0) == ema_decay(1) == 0.0 and ema_decay(10 ** 9) == 0.9999


# ---- InverseLR --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["a", "b"])
def test_inverse_lr_equals_the_reference(name):
    cfg = json.loads(str(REF[f"inverse_lr/{name}/config"]))
    lr = cfg.pop("lr")
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=lr)
    scheduler = InverseLR(opt, **cfg)
    values = []
    for _ in range(60):
        values.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    close(np.array(values), REF[f"inverse_lr/{name}"], 1e-12)
    with pytest.raises(ValueError, match="warmup"):
        InverseLR(opt, warmup=1.0)
