"""preencode decode: round trip with a tiny model, chunked == unchunked, trimming, clear refusals."""

import json

import numpy as np
import pytest
import soundfile
import torch

from preencode.cli import main as cli
from preencode.models.factory import build_autoencoder
from preencode.tools.to_audio import decode_chunked
from tests.helpers import randomized, save_ckpt, tiny_config, write_json
from tests.store.trees import Item, details, write_tree

FRAMES = 100


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("model")
    config = tiny_config(channels=2, latent_dim=4)
    model = randomized(build_autoencoder(config)).eval()
    return write_json(root / "vae.json", config), save_ckpt(model, root / "vae.ckpt"), model


@pytest.fixture
def latent_tree(tmp_path, model_files):
    """An output tree holding one latent of FRAMES frames, the last 10 padding."""
    model = model_files[2]
    with torch.inference_mode():
        latent = model.encode(torch.randn(1, 2, FRAMES * 8), posterior="mean")[0].numpy()
    mask = np.ones(FRAMES, dtype=int)
    mask[-10:] = 0
    info = details()
    info["model_config"] = json.loads(model_files[0].read_text())
    write_tree(tmp_path / "out", [Item(0, "0000000000000", latent, mask)], details_json=info)
    return tmp_path / "out" / "0" / "0000000000000.npy"


@pytest.mark.parametrize("chunk", [7, 16, 33])
def test_chunked_decode_equals_unchunked(model_files, chunk):
    model = model_files[2]
    latent = torch.randn(4, FRAMES)
    with torch.inference_mode():
        whole = model.decode(latent[None])[0]
    chunked = decode_chunked(model, latent, chunk_frames=chunk)
    assert chunked.shape == whole.shape == (2, FRAMES * 8)
    torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=1e-5)
    # without context the seams differ: the overlap is what makes it exact
    assert not torch.allclose(decode_chunked(model, latent, chunk_frames=chunk, overlap_frames=0), whole, atol=1e-5)


def test_decode_writes_the_valid_part_at_the_model_rate(tmp_path, model_files, latent_tree, capsys):
    config, ckpt, _ = model_files
    out = tmp_path / "a.wav"
    argv = [str(latent_tree), "--model-config", str(config), "--ckpt-path", str(ckpt), "-o", str(out),
            "--device", "cpu", "--chunk-frames", "16"]
    assert cli(["decode", *argv]) == 0, capsys.readouterr().err
    audio, rate = soundfile.read(out, always_2d=True)
    assert rate == 16000 and audio.shape == ((FRAMES - 10) * 8, 2)
    assert np.isfinite(audio).all() and np.abs(audio).max() > 0

    assert cli(["decode", *argv, "--keep-padding", "-o", str(tmp_path / "b.wav")]) == 0
    full, _ = soundfile.read(tmp_path / "b.wav", always_2d=True)
    assert full.shape == (FRAMES * 8, 2)
    np.testing.assert_allclose(full[: len(audio)], audio, atol=1e-6)


def test_model_config_defaults_to_the_one_in_details(tmp_path, model_files, latent_tree):
    out = tmp_path / "c.wav"
    assert cli(["decode", str(latent_tree), "--ckpt-path", str(model_files[1]), "-o", str(out), "--device", "cpu"]) == 0
    assert soundfile.info(str(out)).frames == (FRAMES - 10) * 8


def test_refuses_a_latent_of_another_width(tmp_path, model_files, capsys):
    latent = tmp_path / "0000000000000.npy"
    np.save(latent, np.zeros((6, 10), dtype=np.float32))
    argv = [str(latent), "--model-config", str(model_files[0]), "--ckpt-path", str(model_files[1]),
            "-o", str(tmp_path / "x.wav"), "--device", "cpu"]
    assert cli(["decode", *argv]) == 2
    err = capsys.readouterr().err
    assert "has 6 channels but the model's latent_dim is 4" in err and "Traceback" not in err
    assert not (tmp_path / "x.wav").exists()


def test_refuses_discrete_tokens(tmp_path, model_files, capsys):
    tokens = tmp_path / "0000000000000.npy"
    np.save(tokens, np.zeros((2, 10), dtype=np.uint16))
    argv = [str(tokens), "--model-config", str(model_files[0]), "--ckpt-path", str(model_files[1]),
            "-o", str(tmp_path / "x.wav")]
    assert cli(["decode", *argv]) == 2
    assert "decoding discrete tokens is not supported" in capsys.readouterr().err


def test_refuses_a_discrete_model(tmp_path, capsys):
    config = tiny_config(bottleneck={"type": "fsq", "config": {"levels": [3, 3, 3, 3], "dim": 4}})
    model = randomized(build_autoencoder(config))
    latent = tmp_path / "0000000000000.npy"
    np.save(latent, np.zeros((4, 10), dtype=np.float32))
    argv = [str(latent), "--model-config", str(write_json(tmp_path / "fsq.json", config)),
            "--ckpt-path", str(save_ckpt(model, tmp_path / "fsq.ckpt")), "-o", str(tmp_path / "x.wav")]
    assert cli(["decode", *argv]) == 2
    assert "discrete bottleneck" in capsys.readouterr().err


def test_missing_latent_and_missing_flags_are_usage_errors(tmp_path, capsys):
    assert cli(["decode", str(tmp_path / "none.npy"), "--ckpt-path", "x", "-o", str(tmp_path / "o.wav")]) == 2
    assert "Latent not found" in capsys.readouterr().err
    assert cli(["decode", str(tmp_path / "none.npy")]) == 2  # argparse: -o and --ckpt-path are required
