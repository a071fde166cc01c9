"""The stored output of stable-audio-tools' own pre_encode.py (see fixtures/README.md): its layout, and its
latents explained by our model (each is mean + std * N(0, 1) of our posterior for the window or its inverse)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch

from preencode.models.factory import build_autoencoder
from tests.helpers import randomized, tiny_config

REF = Path(__file__).parent / "fixtures" / "reference_output"
CLIPS = [(40, 2), (64, 1), (100, 2), (16001, 2), (30, 1)]
SAMPLE_SIZE = 64


def clips() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {f"clip_{i:03d}.wav": (0.3 * rng.standard_normal((n, ch))).astype(np.float32).T
            for i, (n, ch) in enumerate(CLIPS)}


def items() -> dict[str, tuple[np.ndarray, dict]]:
    return {p.stem: (np.load(p), json.loads(p.with_suffix(".json").read_text())) for p in sorted(REF.glob("*/*.npy"))}


def test_layout_is_the_reference_one():
    details = json.loads((REF / "details.json").read_text())
    assert set(details) == {"model_config", "dataset_config", "sample_size", "args"}
    assert isinstance(details["model_config"], str) and isinstance(details["dataset_config"], str)  # paths
    assert details["sample_size"] == SAMPLE_SIZE and details["args"]["batch_size"] == 2
    got = items()
    assert sorted(got) == ["0000000000000", "0000000000001", "0000000010000", "0000000010001", "0000000020000"]
    for latent_id, (latent, md) in got.items():
        assert re.fullmatch(r"\d{3}\d{6}\d{4}", latent_id)
        assert latent.shape == (4, 8) and latent.dtype == np.float32
        assert set(md) == {"path", "relpath", "timestamps", "seconds_start", "seconds_total", "padding_mask",
                           "sample_rate", "load_time"}
        assert len(md["padding_mask"]) == latent.shape[1]
    assert sorted(md["relpath"] for _, md in got.values()) == sorted(clips())


def test_metadata_and_latents_match_our_model():
    model = randomized(build_autoencoder(tiny_config(sample_rate=16000)), seed=3).eval()
    audio = clips()
    for latent, md in items().values():
        clip = audio[md["relpath"]]
        n = clip.shape[1]
        assert md["seconds_total"] == -(-n // 16000) and md["seconds_start"] == 0
        assert md["timestamps"] == [0.0, SAMPLE_SIZE / max(n, SAMPLE_SIZE)]
        assert md["padding_mask"] == [int(8 * f < n) for f in range(8)]
        window = np.zeros((2, SAMPLE_SIZE), np.float32)
        window[:, :min(n, SAMPLE_SIZE)] = clip[:, :SAMPLE_SIZE]  # a mono clip is duplicated to stereo
        z_by_sign = []
        with torch.no_grad():
            for sign in (1.0, -1.0):
                pre = model.encode_pre_bottleneck(torch.from_numpy(sign * window)[None])
                mean, std = model.bottleneck.posterior_params(pre)
                z_by_sign.append(np.abs((latent - mean[0].numpy()) / std[0].numpy()).max())
        # One polarity explains the latent as a standard normal draw (|z| < 6); the other is far off.
        assert min(z_by_sign) < 6 < max(z_by_sign), (md["relpath"], z_by_sign)
