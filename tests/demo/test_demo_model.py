"""The bundled demo model: size, reproducibility, loading, and the fine-tune + generate half of the demo."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from preencode import load_autoencoder, load_diffusion_model
from preencode.demo import DEMO_CKPT, DEMO_CONFIG, DEMO_DIR, DEMO_MODEL_CKPT
from preencode.demo.finetune import demo_model_config, finetune_demo
from preencode.demo.prompts import PROMPTS

pytest.importorskip("transformers")
ROOT = Path(__file__).resolve().parents[2]
MODEL_FILES = ["tiny_sao.json", "tiny_sao.safetensors", "tiny_t5/config.json", "tiny_t5/model.safetensors",
               "tiny_t5/tokenizer.json", "tiny_t5/tokenizer_config.json"]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_committed_demo_files_stay_under_3_mb():
    files = [p for p in DEMO_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert sum(p.stat().st_size for p in files) < 3_000_000


def test_make_demo_model_rewrites_the_same_bytes(tmp_path):
    spec = importlib.util.spec_from_file_location("make_demo_model", ROOT / "scripts" / "make_demo_model.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    written = script.write_demo_model(tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == sorted(MODEL_FILES)
    for name in MODEL_FILES:
        assert (tmp_path / name).read_bytes() == (DEMO_DIR / name).read_bytes(), name


def test_demo_model_loads_and_its_pretransform_is_the_demo_autoencoder():
    model = load_diffusion_model(demo_model_config(), DEMO_MODEL_CKPT)
    assert model.sample_rate == 44100 and model.io_channels == 8 and model.pretransform.downsampling_ratio == 2048
    autoencoder = load_autoencoder(DEMO_CONFIG, DEMO_CKPT)  # what the demo pre-encodes with
    ours = model.pretransform.model
    ours.fold_weight_norm()
    audio = torch.randn(1, 2, 8192, generator=torch.Generator().manual_seed(0)) * 0.1
    with torch.no_grad():
        assert torch.allclose(ours.encode(audio, posterior="mean"), autoencoder.encode(audio, posterior="mean"),
                              atol=1e-6)
    tokenizer = model.conditioner.conditioners["prompt"].load()[0]
    for prompt in PROMPTS.values():  # every demo prompt is made of known words
        assert tokenizer.unk_token_id not in tokenizer(prompt)["input_ids"]


def test_finetune_demo_trains_unwraps_and_generates(tmp_path):
    model = load_diffusion_model(demo_model_config(), DEMO_MODEL_CKPT)
    rng = np.random.default_rng(0)
    root = tmp_path / "latents" / "0"
    root.mkdir(parents=True)
    for i, name in enumerate(PROMPTS):  # pre-encoded as `preencode encode` stores them: latents + metadata JSON
        audio = torch.from_numpy(0.2 * rng.standard_normal((1, 2, 128 * 2048)).astype(np.float32))
        with torch.no_grad():
            latent = model.pretransform.model.encode(audio, posterior="mean")[0]
        np.save(root / f"{i:013d}.npy", latent.numpy())
        (root / f"{i:013d}.json").write_text(json.dumps({
            "relpath": f"{name}.wav", "path": f"/data/{name}.wav", "seconds_start": 0, "seconds_total": 5.9,
            "padding_mask": [1] * 128}))
    result = finetune_demo(tmp_path / "latents", tmp_path / "out", steps=6, generate_steps=3, seconds=1.0)
    assert len(result.losses) == 6 and np.isfinite(result.losses).all()
    assert [p.name for p in result.unwrapped] == ["model.ckpt", "model.safetensors", "model.json"]
    audio, rate = sf.read(result.audio)
    assert rate == 44100 and audio.shape == (44100, 2)
    assert json.loads(result.model_config.read_text())["model"]["conditioning"]["configs"][0]["config"][
        "t5_model_name"] == str(DEMO_DIR / "tiny_t5")
    assert any("preencode generate" in c for c in result.commands)
