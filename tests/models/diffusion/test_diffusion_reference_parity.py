"""Numerical parity with stable-audio-tools' diffusion models, against stored reference outputs.

How ``data/reference_<name>.npz`` were produced (no reference code lives in this repo): for each
config of ``tiny_diffusion.CONFIGS`` (with ``TINY_T5`` = the committed ``data/tiny_t5``), our model was
built and given weights with ``tiny_diffusion.randomize(model, SEEDS[name])`` and saved as
``{"state_dict": ...}``. stable-audio-tools (commit 50049e3, torch 2.13.0 CPU, transformers 5.24.0; its
T5Conditioner's list of allowed names extended with the tiny T5's folder, width 32) built its model
with ``create_model_from_config`` from the same config, loaded that checkpoint with
``load_state_dict(strict=True)`` (so its keys equal ours for all four configs), and computed, in
float32 and again after ``model.double()``:

* ``model.conditioner(METADATA, "cpu")`` (``cond/<id>/emb|mask``; also for the negative prompts,
  ``negcond``) and ``model.get_conditioning_inputs(cond)`` (``inputs/<key>``);
* ``model(x, t, cond, cfg_scale=..., cfg_dropout_prob=0.0)`` with ``x = randn(2, io_channels, L)``
  from ``Generator().manual_seed(0)`` and ``t = [0.3, 0.8]``: cfg 1 (``out_cfg1``), cfg 3.5
  (``out_cfg3``), and in float32 cfg 3.5 with the negative prompt's conditioning
  (``out_cfg3_neg``), with ``scale_phi=0.7`` (``out_cfg3_phi``) and with ``cfg_interval=(0.9, 1)``
  (``out_cfg3_outside``, guidance skipped);
* a 4-step sample at cfg 3 from ``noise`` (``Generator().manual_seed(5)``): ``sample_k(...,
  sampler_type="dpmpp-2m", sigma_min=0.01, sigma_max=100, rho=1)`` for ``v``, ``sample_rf(...,
  "euler")`` for ``rectified_flow``, ``sample_rf(..., "pingpong")`` after ``torch.manual_seed(1234)``
  for ``rf_denoiser``.

``reference_uncond.npz``: a ``diffusion_uncond`` dit (stored config, weights ``randomize(model, 9)``),
``model(x, t)`` in float32 and float64, made the same way.

Measured when the fixtures were made: every value above, float32 and float64, equal to the bit
(max abs diff 0). The tolerances below only leave room for other CPUs' rounding: float32 to
``1e-5 * max|ref|`` (the reference's own float32 and float64 runs differ by ~4e-7 relative); float64
to ``1e-6`` (the reference rotates queries and keys in float32 and runs T5 in float16 even in a
float64 model, so float64 is not more exact than that); T5 states to ``5e-3`` (float16). Model
outputs are computed from the stored conditioner outputs, so that T5's float16 rounding on another
CPU cannot leak into them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from preencode.models.diffusion import build_diffusion_model
from preencode.models.diffusion.sampling import sample
from tests.models.diffusion.tiny_diffusion import CONFIGS, T5_PLACEHOLDER, randomize, with_t5

pytest.importorskip("transformers")

DATA = Path(__file__).parent / "data"
SEEDS = {"sao_like": 1, "small_like": 2, "options_a": 3, "options_b": 4}
TOL = {"f32": 1e-5, "f64": 1e-6}
TOL_T5 = 5e-3
DTYPES = {"f32": torch.float32, "f64": torch.float64}


def assert_near(ours: torch.Tensor, ref: np.ndarray, tol: float, what: str) -> None:
    ours_np = ours.detach().cpu().double().numpy()
    assert ours_np.shape == ref.shape, f"{what}: shape {ours_np.shape} != {ref.shape}"
    err, scale = np.abs(ours_np - ref).max(), np.abs(ref).max()
    assert err <= tol * max(scale, 1e-30), f"{what}: max abs diff {err:.3g} > {tol} * max|ref| ({scale:.3g})"


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def case(request):
    name = request.param
    ref = np.load(DATA / f"reference_{name}.npz")
    stored = json.loads(str(ref["config"]))
    # The stored config names the tiny T5 by the absolute path it had where the fixture was made.
    made_with = re.sub(r'"[^"]*/tests/models/diffusion/data/tiny_t5"', json.dumps(T5_PLACEHOLDER), json.dumps(stored))
    assert json.loads(made_with) == CONFIGS[name](), "the fixture was made with another config"
    model = randomize(build_diffusion_model(with_t5(CONFIGS[name]())), SEEDS[name]).eval()
    return name, ref, model


def stored_cond(ref, prec: str, kind: str = "cond") -> dict:
    ids = sorted({k.split("/")[2] for k in ref.files if k.startswith(f"{prec}/{kind}/")})
    return {i: (torch.from_numpy(ref[f"{prec}/{kind}/{i}/emb"]), torch.from_numpy(ref[f"{prec}/{kind}/{i}/mask"]))
            for i in ids}


@pytest.mark.parametrize("prec", ["f32", "f64"])
def test_conditioner_outputs_match(case, prec):
    name, ref, model = case
    model.to(DTYPES[prec])
    try:
        with torch.no_grad():
            cond = model.conditioner(json.loads(str(ref["metadata"])), "cpu")
    finally:
        model.float()
    assert set(cond) == {k.split("/")[2] for k in ref.files if k.startswith(f"{prec}/cond/")}
    for cid, (emb, mask) in cond.items():
        ref_dtypes = str(ref[f"{prec}/cond/{cid}/dtypes"]).split(",")
        assert [str(emb.dtype), str(mask.dtype)] == ref_dtypes, f"{name} {cid}: dtypes"
        tol = TOL_T5 if cid == "prompt" else TOL[prec]
        assert_near(emb, ref[f"{prec}/cond/{cid}/emb"], tol, f"{name} {prec} {cid} embeddings")
        assert np.array_equal(mask.numpy(), ref[f"{prec}/cond/{cid}/mask"]), f"{name} {cid}: mask"


@pytest.mark.parametrize("prec", ["f32", "f64"])
def test_conditioning_inputs_match(case, prec):
    name, ref, model = case
    inputs = model.get_conditioning_inputs(stored_cond(ref, prec))
    expected = {k.split("/")[2] for k in ref.files if k.startswith(f"{prec}/inputs/")}
    assert {k for k, v in inputs.items() if v is not None} == expected
    for key in expected:
        assert_near(inputs[key], ref[f"{prec}/inputs/{key}"], TOL[prec], f"{name} {prec} {key}")


@pytest.mark.parametrize("prec", ["f32", "f64"])
def test_model_outputs_match(case, prec):
    name, ref, model = case
    dtype = DTYPES[prec]
    x, t = torch.from_numpy(ref["x"]).to(dtype), torch.from_numpy(ref["t"]).to(dtype)
    cond = stored_cond(ref, prec)
    model.to(dtype)
    try:
        with torch.no_grad():
            runs = {"out_cfg1": model(x, t, cond, cfg_scale=1.0), "out_cfg3": model(x, t, cond, cfg_scale=3.5)}
            if prec == "f32":
                runs["out_cfg3_neg"] = model(x, t, cond, 3.5, negative_cond=stored_cond(ref, prec, "negcond"))
                runs["out_cfg3_phi"] = model(x, t, cond, 3.5, scale_phi=0.7)
                runs["out_cfg3_outside"] = model(x, t, cond, 3.5, cfg_interval=(0.9, 1.0))
    finally:
        model.float()
    for key, out in runs.items():
        assert out.dtype == dtype
        assert_near(out, ref[f"{prec}/{key}"], TOL[prec], f"{name} {prec} {key}")
    assert not np.allclose(ref[f"{prec}/out_cfg1"], ref[f"{prec}/out_cfg3"])  # guidance did something


def test_sampler_matches(case):
    name, ref, model = case
    cond = stored_cond(ref, "f32")
    sampler = str(ref["sampler"])
    with torch.no_grad():
        latents = sample(lambda x, t: model(x, t, cond, cfg_scale=3.0), torch.from_numpy(ref["noise"]),
                         model.objective, sampler, steps=4, generator=torch.Generator().manual_seed(1234))
    assert_near(latents, ref["sampled"], 1e-4, f"{name} {sampler}")


@pytest.mark.parametrize("prec", ["f32", "f64"])
def test_unconditional_model_matches(prec):
    ref = np.load(DATA / "reference_uncond.npz")
    model = randomize(build_diffusion_model(json.loads(str(ref["config"]))), 9).eval().to(DTYPES[prec])
    assert model.conditioner is None and model.objective == "v"
    x, t = (torch.from_numpy(ref[k]).to(DTYPES[prec]) for k in ("x", "t"))
    with torch.no_grad():
        assert_near(model(x, t), ref[f"{prec}/out"], TOL[prec], f"uncond {prec}")
