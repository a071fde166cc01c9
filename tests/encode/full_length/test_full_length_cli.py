"""``preencode encode --full-length``: one latent per file, equal to encoding the whole file at once."""

from __future__ import annotations

import json
import math
from unittest import mock

import numpy as np
import pytest
import soundfile as sf
import torch

from preencode import load_autoencoder
from preencode.audio import load_audio
from preencode.cli import main
from preencode.encode.posterior import posterior_noise
from tests.encode_setup import SAMPLE_SIZE, SR, dataset_config, encode_args, read_output, write_clips

LENGTHS = [100, 256, 255, 3001, 37, 1000]  # shorter than, at and far above the chunk (--sample-size 256)


@pytest.fixture
def long_clips(tmp_path):
    folder = tmp_path / "audio"
    write_clips(folder, LENGTHS, [2, 1, 2, 2, 1, 2])
    return folder, dataset_config(tmp_path, folder)


def _whole_file(model, path, posterior="mean", index=0, seed=0):
    """The reference: the whole file, padded to a multiple of the ratio, through the public API."""
    audio, _ = load_audio(path, sample_rate=SR, channels=2)
    n = audio.shape[-1]
    audio = torch.nn.functional.pad(audio, (0, -n % 8))
    with torch.inference_mode():
        if posterior == "mean":
            return model.encode(audio[None], posterior="mean")[0].numpy(), n
        noise = posterior_noise(seed, index, (model.latent_dim, audio.shape[-1] // 8))[None]
        return model.encode(audio[None], posterior="sample", noise=noise)[0].numpy(), n


@pytest.mark.parametrize("posterior", ["mean", "sample"])
def test_full_length_latents_equal_one_pass_over_the_whole_file(model_files, long_clips, tmp_path, posterior):
    folder, cfg = long_clips
    out = tmp_path / "out"
    assert main(encode_args(model_files, cfg, out, "--full-length", "--posterior", posterior,
                            "--batch-size", "3")) == 0
    model = load_autoencoder(model_files[0], model_files[1])
    output = read_output(out)
    assert len(output) == len(LENGTHS)
    for i, src in enumerate(sorted(folder.iterdir())):
        latent, meta = output[f"{i:013d}"]
        expected, n = _whole_file(model, src, posterior, index=i)
        assert latent.shape == expected.shape == (4, math.ceil(n / 8))
        np.testing.assert_allclose(latent, expected, atol=1e-5 * np.abs(expected).max(), rtol=1e-5)
        assert meta["padding_mask"] == [1] * latent.shape[1]  # only the last frame's tail is padding
        assert meta["timestamps"] == [0.0, 1.0] and meta["seconds_start"] == 0
        assert meta["seconds_total"] == math.ceil(n / SR) and meta["sample_rate"] == SR
        assert meta["path"] == str(src) and meta["relpath"] == src.name
    details = json.loads((out / "details.json").read_text())
    assert details["mode"]["full_length"] is True


def test_workers_batch_size_and_shuffle_do_not_change_the_output(model_files, long_clips, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(encode_args(model_files, long_clips[1], a, "--full-length")) == 0
    argv = encode_args(model_files, long_clips[1], b, "--full-length", "--batch-size", "5", "--shuffle")
    argv[argv.index("--num-workers") + 1] = "2"
    assert main(argv) == 0
    first, second = read_output(a), read_output(b)
    assert first.keys() == second.keys()
    for key, (latent, meta) in first.items():
        np.testing.assert_allclose(second[key][0], latent, atol=1e-5 * np.abs(latent).max(), rtol=1e-5)
        assert second[key][1] == meta


def test_a_file_failing_mid_stream_is_recorded_and_the_others_complete(model_files, tmp_path):
    folder = tmp_path / "audio"
    paths = write_clips(folder, [3000, 2000, 500])
    data, _ = sf.read(paths[1], dtype="float32")
    data[1900] = np.nan  # found in the last block only
    sf.write(paths[1], data, SR, subtype="FLOAT")
    out = tmp_path / "out"
    argv = encode_args(model_files, dataset_config(tmp_path, folder), out, "--full-length")
    with mock.patch("preencode.audio.stream.BLOCK_FRAMES", 512):
        assert main(argv) == 3
    assert sorted(read_output(out)) == [f"{0:013d}", f"{2:013d}"]
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert [f["index"] for f in failures] == [1] and "NaN" in failures[0]["reason"]


def test_resampled_input_is_covered_completely(model_files, tmp_path):
    folder = tmp_path / "audio"
    folder.mkdir()
    data = (0.3 * np.random.default_rng(0).standard_normal((44100 // 3, 2))).astype(np.float32)
    sf.write(folder / "a.flac", data, 44100)
    out = tmp_path / "out"
    assert main(encode_args(model_files, dataset_config(tmp_path, folder), out, "--full-length")) == 0
    (latent, meta), = read_output(out).values()
    n = round(len(data) * SR / 44100)
    assert latent.shape[1] == math.ceil(n / 8) and sum(meta["padding_mask"]) * 8 >= n
    assert n > SAMPLE_SIZE


def test_full_length_is_part_of_the_output_identity(model_files, long_clips, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(encode_args(model_files, long_clips[1], out)) == 0
    assert main(encode_args(model_files, long_clips[1], out, "--full-length")) == 2
    assert "full_length" in capsys.readouterr().err
