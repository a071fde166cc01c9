"""Generation: seeds, lengths, batches, samplers, negative prompts, output files (tiny models, CPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from preencode.cli import main as cli
from preencode.errors import UserError
from preencode.generate.options import GenerateOptions
from preencode.generate.run import generate
from preencode.generate.sample import generate_audio, latent_frames
from preencode.models.diffusion import load_diffusion_model
from tests.train.conftest import (
    model_config,
    model_weights,
    small_like,
    with_t5,
    write_json,
)

pytest.importorskip("transformers")


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """(config, checkpoint) of the tiny v model and of the tiny rf_denoiser model."""
    root = tmp_path_factory.mktemp("models")
    v = (write_json(root / "v.json", model_config()), model_weights(root / "v.safetensors"))
    rf_cfg = with_t5(small_like())
    rf = (write_json(root / "rf.json", rf_cfg), model_weights(root / "rf.ckpt", seed=6, config=rf_cfg))
    return {"v": v, "rf": rf}


def run(files, tmp_path, name="v", **kw) -> list[Path]:
    config, ckpt = files[name]
    opts = {"model_config": str(config), "ckpt_path": str(ckpt), "prompt": "a dog barks", "seconds_total": 0.005,
            "steps": 4, "seed": 1, "output": str(tmp_path / "out.wav"), "device": "cpu"}
    opts.update(kw)
    return generate(GenerateOptions(**opts))


def read(path: Path) -> np.ndarray:
    audio, rate = sf.read(path, dtype="int16")
    assert rate == 16000
    return audio


def test_same_seed_same_audio_other_seed_other_audio(files, tmp_path):
    (a,) = run(files, tmp_path / "a")
    (b,) = run(files, tmp_path / "b")
    (c,) = run(files, tmp_path / "c", seed=2)
    assert np.array_equal(read(a), read(b)) and np.abs(read(a)).max() > 0
    assert not np.array_equal(read(a), read(c))


@pytest.mark.parametrize("seconds, samples, frames", [(0.005, 80, 16), (0.02, 320, 40)])
def test_length_is_seconds_total_within_the_models_window(files, tmp_path, seconds, samples, frames):
    (path,) = run(files, tmp_path, seconds_total=seconds)
    assert read(path).shape == (samples, 2)
    model = load_diffusion_model(files["v"][0], files["v"][1])
    assert latent_frames(model, seconds, model.config.sample_size) == frames  # 128-sample window, or longer


def test_batch_writes_numbered_files_with_different_noise(files, tmp_path):
    paths = run(files, tmp_path, batch=3)
    assert [p.name for p in paths] == ["out_0.wav", "out_1.wav", "out_2.wav"] and all(p.is_file() for p in paths)
    clips = [read(p) for p in paths]
    assert not np.array_equal(clips[0], clips[1])


def test_negative_prompt_changes_guided_output(files):
    model = load_diffusion_model(files["v"][0], files["v"][1])
    meta = [{"prompt": "a dog barks", "seconds_start": 0, "seconds_total": 1}]
    base = generate_audio(model, meta, 0.005, seed=0, steps=3, cfg_scale=5.0, sampler="dpmpp-2m")
    again = generate_audio(model, meta, 0.005, seed=0, steps=3, cfg_scale=5.0, sampler="dpmpp-2m")
    negative = generate_audio(model, meta, 0.005, seed=0, steps=3, cfg_scale=5.0, sampler="dpmpp-2m",
                              negative_metadata=[dict(meta[0], prompt="loud drums")])
    assert torch.equal(base, again) and not torch.equal(base, negative)


def test_rectified_flow_samplers(files, tmp_path):
    (ping,) = run(files, tmp_path / "p", name="rf")  # rf_denoiser: pingpong by default
    (euler,) = run(files, tmp_path / "e", name="rf", sampler="euler")
    (again,) = run(files, tmp_path / "e2", name="rf", sampler="euler")
    assert not np.array_equal(read(ping), read(euler)) and np.array_equal(read(euler), read(again))


def test_a_sampler_of_another_objective_is_refused(files, tmp_path):
    with pytest.raises(UserError, match="does not fit the model's 'v' objective; valid: dpmpp-3m-sde, dpmpp-2m"):
        run(files, tmp_path, sampler="euler")


def test_existing_output_is_kept_unless_overwrite(files, tmp_path):
    (tmp_path / "out.wav").write_bytes(b"mine")
    with pytest.raises(UserError, match=r"exists.*--overwrite"):
        run(files, tmp_path)
    assert (tmp_path / "out.wav").read_bytes() == b"mine"
    run(files, tmp_path, overwrite=True)
    assert read(tmp_path / "out.wav").shape == (80, 2)


@pytest.mark.parametrize("change, message", [
    ({"seconds_total": 0}, "--seconds-total must be positive"),
    ({"batch": 0}, "--batch must be at least 1"),
    ({"steps": 0}, "--steps must be at least 1"),
    ({"output": "out.mp3"}, "must end in .wav"),
])
def test_option_errors(files, tmp_path, change, message):
    with pytest.raises(UserError, match=message):
        run(files, tmp_path, **change)


def test_generate_main_prints_the_paths(files, tmp_path, capsys):
    config, ckpt = files["v"]
    assert cli(["generate", "--model-config", str(config), "--ckpt-path", str(ckpt), "--prompt", "slow piano",
                          "--seconds-total", "0.005", "--steps", "2", "--seed", "3", "--batch", "2",
                          "--output", str(tmp_path / "x.wav")]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "x_0.wav"), str(tmp_path / "x_1.wav")]


def test_the_command_line_offers_exactly_the_implemented_samplers():
    from preencode.generate.options import SAMPLERS
    from preencode.models.diffusion.sampling import RF_SAMPLERS, V_SAMPLERS

    assert sorted(SAMPLERS) == sorted(V_SAMPLERS + RF_SAMPLERS)
