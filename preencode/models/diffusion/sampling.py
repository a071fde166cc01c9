"""Samplers as plain functions, with stable-audio-tools' schedules and defaults.

A sampler takes the network as a function ``model(x [B, C, L], t [B]) -> prediction`` (conditioning
and guidance already bound, e.g. ``lambda x, t: diffusion(x, t, cond, cfg_scale=7)``), the starting
noise and a schedule, and returns latents ``[B, C, L]``. Random draws (SDE noise, ping-pong
re-noising) come from ``generator``: the same noise and generator seed give the same output.

``v`` objective (the reference's ``sample_k``): the network is wrapped as a denoiser over
k-diffusion's sigma (``x = x0 + sigma * eps``, ``t = atan(sigma) * 2 / pi``, ``sigma_data = 1``) and
integrated over a polyexponential schedule from ``sigma_max`` to ``sigma_min``, then 0. Samplers:
``dpmpp-3m-sde`` (the reference UI's default; its noise is drawn i.i.d. per step here, where
k-diffusion samples a Brownian tree, which has the same distribution but not the same numbers) and
the deterministic ``dpmpp-2m``.

``rectified_flow``/``rf_denoiser`` objectives (the reference's ``sample_rf``): the network predicts
the velocity ``noise - x0`` at ``x_t = (1 - t) x0 + t noise``; the schedule is uniform in log-SNR
from -6 to 2 (``t = sigmoid(-logsnr)``), starting at t = 1 and ending at 0. Samplers: ``euler``
(deterministic) and ``pingpong`` (denoise fully, re-noise to the next level; for distilled
``rf_denoiser`` models).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

Model = Callable[[Tensor, Tensor], Tensor]

V_SAMPLERS = ("dpmpp-3m-sde", "dpmpp-2m")
RF_SAMPLERS = ("euler", "pingpong")


@dataclass(frozen=True)
class SamplerDefaults:
    """What stable-audio-tools' generation UI starts with for each objective."""

    sampler: str
    steps: int
    cfg_scale: float
    sigma_min: float = 0.01  # v only
    sigma_max: float = 100.0  # v only
    rho: float = 1.0  # v only


DEFAULTS = {
    "v": SamplerDefaults("dpmpp-3m-sde", steps=100, cfg_scale=7.0),
    "rectified_flow": SamplerDefaults("euler", steps=50, cfg_scale=7.0),
    "rf_denoiser": SamplerDefaults("pingpong", steps=8, cfg_scale=1.0),
}


def polyexponential_sigmas(steps: int, sigma_min: float, sigma_max: float, rho: float = 1.0,
                           device: torch.device | str = "cpu") -> Tensor:
    """``steps`` noise levels from ``sigma_max`` down to ``sigma_min``, log-spaced along ``ramp ** rho``
    (``rho`` 1: exponential), then a final 0: ``[steps + 1]``."""
    ramp = torch.linspace(1, 0, steps, device=device) ** rho
    log_min, log_max = math.log(sigma_min), math.log(sigma_max)
    sigmas = torch.exp(ramp * (log_max - log_min) + log_min)
    return torch.cat([sigmas, sigmas.new_zeros([1])])


def rf_schedule(steps: int, sigma_max: float = 1.0) -> Tensor:
    """``[steps + 1]`` times from ``sigma_max`` (at most 1) to 0, uniform in log-SNR up to 2."""
    sigma_max = min(sigma_max, 1.0)
    logsnr_max = math.log((1 - sigma_max) / sigma_max + 1e-6) if sigma_max < 1 else -6.0
    t = torch.sigmoid(-torch.linspace(logsnr_max, 2, steps + 1))
    t[0], t[-1] = sigma_max, 0
    return t


def v_denoiser(model: Model) -> Model:
    """A v-prediction network as a denoiser ``(x, sigma [B]) -> x0 estimate`` over k-diffusion's sigma."""

    def denoise(x: Tensor, sigma: Tensor) -> Tensor:
        s = sigma.reshape(-1, *([1] * (x.ndim - 1)))
        norm = (s ** 2 + 1) ** 0.5
        v = model(x * (1 / norm), sigma.atan() / math.pi * 2)
        return v * (-s / norm) + x * (1 / (s ** 2 + 1))

    return denoise


@torch.no_grad()
def sample_dpmpp_2m(denoiser: Model, x: Tensor, sigmas: Tensor) -> Tensor:
    """DPM-Solver++(2M): second order multistep in log-sigma, deterministic. ``x`` is the noise at ``sigmas[0]``."""
    ones = x.new_ones([x.shape[0]])
    lam = -sigmas.log()  # half log-SNR; +inf at sigma 0
    previous: Tensor | None = None
    for i in range(len(sigmas) - 1):
        x0 = denoiser(x, sigmas[i] * ones)
        h = lam[i + 1] - lam[i]
        estimate = x0
        if previous is not None and sigmas[i + 1] > 0:
            r = (lam[i] - lam[i - 1]) / h
            estimate = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * previous
        x = (sigmas[i + 1] / sigmas[i]) * x - torch.expm1(-h) * estimate
        previous = x0
    return x


@torch.no_grad()
def sample_dpmpp_3m_sde(denoiser: Model, x: Tensor, sigmas: Tensor, eta: float = 1.0, s_noise: float = 1.0,
                        generator: torch.Generator | None = None) -> Tensor:
    """DPM-Solver++(3M) SDE: third order multistep with fresh noise each step (``eta`` 0: an ODE)."""
    ones = x.new_ones([x.shape[0]])
    x0_hist: list[Tensor] = []  # most recent first
    h_hist: list[Tensor] = []
    for i in range(len(sigmas) - 1):
        x0 = denoiser(x, sigmas[i] * ones)
        if sigmas[i + 1] == 0:
            x = x0
        else:
            h = sigmas[i].log() - sigmas[i + 1].log()
            h_eta = h * (eta + 1)
            x = torch.exp(-h_eta) * x - torch.expm1(-h_eta) * x0
            phi_2 = torch.expm1(-h_eta) / h_eta + 1
            if len(h_hist) >= 2:
                r0, r1 = h_hist[0] / h, h_hist[1] / h
                d1_0 = (x0 - x0_hist[0]) / r0
                d1_1 = (x0_hist[0] - x0_hist[1]) / r1
                d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)
                d2 = (d1_0 - d1_1) / (r0 + r1)
                x = x + phi_2 * d1 - (phi_2 / h_eta - 0.5) * d2
            elif h_hist:
                x = x + phi_2 * ((x0 - x0_hist[0]) / (h_hist[0] / h))
            if eta:
                noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
                x = x + noise * sigmas[i + 1] * (-torch.expm1(-2 * h * eta)).sqrt() * s_noise
            h_hist = [h, *h_hist[:1]]
        x0_hist = [x0, *x0_hist[:1]]
    return x


@torch.no_grad()
def sample_euler(model: Model, x: Tensor, ts: Tensor) -> Tensor:
    """Rectified flow, Euler steps ``x += (t_next - t) * v`` along ``ts`` (deterministic)."""
    for t, t_next in itertools.pairwise(ts):
        x = x + (t_next - t) * model(x, t * torch.ones(x.shape[0], dtype=x.dtype, device=x.device))
    return x


@torch.no_grad()
def sample_pingpong(model: Model, x: Tensor, ts: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Rectified flow, ping-pong: estimate ``x0 = x - t v``, then re-noise it to the next level."""
    ones = x.new_ones([x.shape[0]])
    for t, t_next in itertools.pairwise(ts):
        x0 = x - t * model(x, t * ones)
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x = (1 - t_next) * x0 + t_next * noise  # the last step draws (and discards) noise, as the reference
    return x


def sample(model: Model, noise: Tensor, objective: str, sampler: str | None = None, steps: int | None = None,
           sigma_min: float | None = None, sigma_max: float | None = None, rho: float | None = None,
           generator: torch.Generator | None = None) -> Tensor:
    """Latents ``[B, C, L]`` from standard normal ``noise`` with the objective's sampler and schedule
    (unset arguments take :data:`DEFAULTS`).

    Raises:
        ValueError: a sampler that does not belong to the objective.
    """
    d = DEFAULTS[objective]
    sampler, steps = sampler or d.sampler, steps or d.steps
    if objective == "v":
        if sampler not in V_SAMPLERS:
            raise ValueError(f"sampler {sampler!r} is not one for the v objective; valid: {', '.join(V_SAMPLERS)}")
        sigmas = polyexponential_sigmas(steps, sigma_min if sigma_min is not None else d.sigma_min,
                                        sigma_max if sigma_max is not None else d.sigma_max,
                                        rho if rho is not None else d.rho, device=noise.device)
        denoiser = v_denoiser(model)
        x = noise * sigmas[0]
        if sampler == "dpmpp-2m":
            return sample_dpmpp_2m(denoiser, x, sigmas)
        return sample_dpmpp_3m_sde(denoiser, x, sigmas, generator=generator)
    if sampler not in RF_SAMPLERS:
        raise ValueError(f"sampler {sampler!r} is not one for {objective}; valid: {', '.join(RF_SAMPLERS)}")
    ts = rf_schedule(steps, sigma_max if sigma_max is not None else 1.0).to(noise.device)
    if sampler == "euler":
        return sample_euler(model, noise, ts)
    return sample_pingpong(model, noise, ts, generator=generator)
