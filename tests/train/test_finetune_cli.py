"""The whole fine-tuning job from the command line, as a Stable Audio Open user runs it (tiny model, CPU):

a full model (``model_config.json`` + ``model.safetensors``) -> ``pre_encode.py`` (a subprocess) with its
pretransform and prompts from a custom metadata module -> ``preencode train --pretrained-ckpt-path`` ->
``preencode unwrap`` -> reload -> ``preencode generate`` (the last three through their argv entry points, in
process: importing torch and Lightning again would double the test's time).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from preencode import load_diffusion_model
from preencode.cli import main as cli
from preencode.cli import main as preencode_main
from preencode.demo.finetune import read_losses
from tests.train.conftest import ROOT, model_config, model_weights, write_json

pytest.importorskip("transformers")

METADATA_MODULE = '''
PROMPTS = {"dog": "a dog barks", "piano": "slow piano in the rain", "drums": "loud drums and bass"}

def get_custom_metadata(info, audio):
    name = info["relpath"].split("_")[0]
    return {"prompt": PROMPTS[name]}
'''


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(ROOT / script), *args], capture_output=True, text=True, cwd=ROOT,
                          check=False, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_pre_encode_finetune_unwrap_reload_generate(tmp_path):
    # the user's three things: the model's config and weights, and their audio (with labels)
    config = model_config()
    config_path = write_json(tmp_path / "model" / "model_config.json", config)
    weights = model_weights(tmp_path / "model" / "model.safetensors", seed=5, config=config)
    audio = tmp_path / "audio"
    audio.mkdir()
    rng = np.random.default_rng(0)
    for i, name in enumerate(["dog", "piano", "drums"] * 2):
        t = np.arange(128) / 16000
        clip = 0.3 * np.sin(2 * np.pi * (300 + 400 * i) * t)[:, None] * np.array([1.0, 0.6]) \
            + 0.01 * rng.standard_normal((128, 2))
        sf.write(audio / f"{name}_{i}.wav", clip.astype(np.float32), 16000, subtype="FLOAT")
    (tmp_path / "labels.py").write_text(METADATA_MODULE)
    dataset = write_json(tmp_path / "dataset.json", {
        "dataset_type": "audio_dir", "random_crop": False,
        "datasets": [{"id": "mine", "path": str(audio), "custom_metadata_module": str(tmp_path / "labels.py")}]})

    # 1. pre-encode with the model's own two files: its pretransform section and pretransform.model.* tensors
    latents = tmp_path / "latents"
    run("pre_encode.py", "--model-config", str(config_path), "--ckpt-path", str(weights), "--dataset-config",
        str(dataset), "--output-path", str(latents), "--sample-size", "128", "--batch-size", "3", "--num-workers", "0",
        "--progress", "none", "--compile", "off")
    meta = [json.loads(p.read_text()) for p in sorted(latents.glob("0/*.json"))]
    assert len(meta) == 6 and {m["prompt"] for m in meta} == {"a dog barks", "slow piano in the rain",
                                                              "loud drums and bass"}

    # 2. fine-tune from the model's weights on the latents
    pre_encoded = write_json(tmp_path / "pre_encoded.json", {
        "dataset_type": "pre_encoded", "datasets": [{"id": "mine", "path": str(latents)}], "latent_crop_length": 16})
    run_dir = tmp_path / "run"
    assert preencode_main(["train", "--model-config", str(config_path), "--dataset-config", str(pre_encoded),
                           "--pretrained-ckpt-path", str(weights), "--save-dir", str(run_dir), "--batch-size", "6",
                           "--num-workers", "0", "--max-steps", "30", "--logger", "csv", "--seed", "0"]) == 0
    losses = read_losses(run_dir)
    assert len(losses) == 30 and np.isfinite(losses).all()
    assert np.mean(losses[-8:]) < 0.8 * np.mean(losses[:8]), losses

    # 3. unwrap, 4. reload
    assert preencode_main(["unwrap", "--ckpt-path", str(run_dir / "checkpoints" / "last.ckpt"),
                           "--output", str(tmp_path / "finetuned" / "model")]) == 0
    exported = tmp_path / "finetuned"
    finetuned = load_diffusion_model(exported / "model.json", exported / "model.safetensors")
    start = load_file(str(weights))
    key = "model.model.transformer.layers.0.self_attn.to_qkv.weight"
    assert not torch.equal(finetuned.state_dict()[key], start[key])  # trained
    assert torch.equal(finetuned.state_dict()["pretransform.model.decoder.layers.0.bias"],
                       start["pretransform.model.decoder.layers.0.bias"])  # frozen

    # 5. generate a clip of the requested length
    out = tmp_path / "generated.wav"
    assert cli(["generate", "--model-config", str(tmp_path / "finetuned" / "model.json"), "--ckpt-path",
                          str(tmp_path / "finetuned" / "model.safetensors"), "--prompt", "a dog barks",
                          "--seconds-total", "0.5", "--steps", "4", "--seed", "0", "--output", str(out)]) == 0
    clip, rate = sf.read(out)
    assert rate == 16000 and clip.shape == (8000, 2)
