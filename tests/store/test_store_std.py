"""``--store-std``: the VAE posterior std beside each latent, invisible to loaders that scan for ``.npy``."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from preencode import load_autoencoder
from preencode.cli import main
from tests.encode.engine.test_encode_cli import _window
from tests.encode_setup import SAMPLE_SIZE, SR, encode_args, read_output


def _scan_npy(root) -> list[str]:
    """stable-audio-tools' get_latent_filenames: every non-hidden file whose extension is ``.npy``."""
    found = []
    for folder, _, files in os.walk(root):
        found += [os.path.join(folder, f) for f in files
                  if os.path.splitext(f)[1].lower() == ".npy" and not f.startswith(".")]
    return sorted(found)


@pytest.mark.parametrize("half", [False, True])
def test_std_sidecar_matches_the_public_api(model_files, clips, tmp_path, half):
    folder, cfg = clips
    out = tmp_path / "out"
    extra = ["--model-half"] if half else []
    assert main(encode_args(model_files, cfg, out, "--store-std", *extra)) == 0
    model = load_autoencoder(model_files[0], model_files[1])
    output = read_output(out)
    for i, src in enumerate(sorted(folder.iterdir())):
        key = f"{i:013d}"
        latent, _ = output[key]
        with np.load(out / "0" / f"{key}.std.npz") as npz:
            assert list(npz.keys()) == ["std"]
            std = npz["std"]
        assert std.shape == latent.shape == (4, SAMPLE_SIZE // 8) and std.dtype == latent.dtype
        window, _ = _window(src)
        with torch.inference_mode():
            pre = model.encode_pre_bottleneck(window[None])[0]
        expected = (F.softplus(pre[4:]) + 1e-4).numpy()
        tol = 1e-3 if half else 1e-5
        np.testing.assert_allclose(std.astype(np.float32), expected, rtol=tol, atol=tol)
        assert (std > 0).all()
    assert main(["verify", str(out)]) == 0


def test_sidecar_is_ignored_by_a_scanner_that_takes_every_npy(model_files, clips, tmp_path):
    out = tmp_path / "out"
    assert main(encode_args(model_files, clips[1], out, "--store-std")) == 0
    assert len(list(out.glob("0/*.std.npz"))) == 7
    found = _scan_npy(out)
    assert [os.path.basename(p) for p in found] == [f"{i:013d}.npy" for i in range(7)]
    for path in found:
        assert np.load(path).shape == (4, SAMPLE_SIZE // 8)


def test_full_length_std_covers_the_whole_file(model_files, clips, tmp_path):
    out = tmp_path / "out"
    assert main(encode_args(model_files, clips[1], out, "--store-std", "--full-length")) == 0
    for key, (latent, _) in read_output(out).items():
        with np.load(out / "0" / f"{key}.std.npz") as npz:
            assert npz["std"].shape == latent.shape


def test_std_needs_a_vae(model_files, clips, tmp_path, capsys):
    from preencode.models.factory import build_autoencoder
    from tests.helpers import save_ckpt, tiny_config, write_json

    config = tiny_config(sample_rate=SR, bottleneck={"type": "tanh"})
    ckpt = save_ckpt(build_autoencoder(config), tmp_path / "tanh.ckpt")
    files = (write_json(tmp_path / "tanh.json", config), ckpt, None)
    assert main(encode_args(files, clips[1], tmp_path / "out", "--store-std")) == 2
    assert "--store-std needs a vae bottleneck" in capsys.readouterr().err
