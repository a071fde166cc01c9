"""Strict checkpoint loading: namings, formats, wrapped checkpoints, mismatches, unsafe pickles."""

import os
import pickle

import pytest
import torch
from safetensors.torch import save_file

from preencode import load_autoencoder
from preencode.errors import CheckpointError, ConfigError, UserError
from preencode.models.factory import build_autoencoder
from tests.helpers import randomized, save_ckpt, tiny_config, with_change, write_json


@pytest.fixture
def trained(tmp_path):
    model = randomized(build_autoencoder(tiny_config()), seed=7)
    return model, save_ckpt(model, tmp_path / "vae_model.ckpt"), write_json(tmp_path / "vae_config.json", tiny_config())


def _encode(model, seed=0):
    audio = torch.randn(2, 2, 64, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        return model.encode(audio, posterior="mean")


def _parametrization_naming(state):
    out = {}
    for k, v in state.items():
        k = k.replace("weight_g", "parametrizations.weight.original0")
        k = k.replace("weight_v", "parametrizations.weight.original1")
        out[k] = v
    return out


def test_both_weight_norm_namings_and_safetensors_give_identical_outputs(trained, tmp_path):
    model, ckpt, config = trained
    state = model.state_dict()
    torch.save({"state_dict": _parametrization_naming(state)}, tmp_path / "param.ckpt")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "vae.safetensors"))
    torch.save(state, tmp_path / "bare.ckpt")
    expected = _encode(model.eval())
    for path in (ckpt, tmp_path / "param.ckpt", tmp_path / "vae.safetensors", tmp_path / "bare.ckpt"):
        loaded = load_autoencoder(config, path)
        torch.testing.assert_close(_encode(loaded), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("prefix", ["autoencoder.", "pretransform.model."])
def test_wrapped_checkpoint_takes_autoencoder_part_with_notice(trained, tmp_path, caplog, prefix):
    model, _, config = trained
    state = {prefix + k: v for k, v in model.state_dict().items()}
    state["discriminator.conv.weight"] = torch.zeros(3)
    torch.save({"state_dict": state, "global_step": 10}, tmp_path / "wrapped.ckpt")
    loaded = load_autoencoder(config, tmp_path / "wrapped.ckpt")
    torch.testing.assert_close(_encode(loaded), _encode(model.eval()), rtol=1e-5, atol=1e-6)
    assert "wrapped checkpoint" in caplog.text and prefix in caplog.text


def test_missing_unexpected_and_misshaped_keys_are_listed(trained, tmp_path):
    model, _, config = trained
    state = dict(model.state_dict())
    del state["encoder.layers.0.bias"]
    state["encoder.extra.weight"] = torch.zeros(1)
    state["decoder.layers.0.bias"] = torch.zeros(5)
    torch.save({"state_dict": state}, tmp_path / "bad.ckpt")
    with pytest.raises(CheckpointError) as err:
        load_autoencoder(config, tmp_path / "bad.ckpt")
    text = str(err.value)
    assert "1 missing: encoder.layers.0.bias" in text
    assert "1 unexpected: encoder.extra.weight" in text
    assert "decoder.layers.0.bias (checkpoint [5], model [8])" in text


def test_config_checkpoint_mismatch_lists_at_most_ten_keys(trained, tmp_path):
    _, ckpt, _ = trained
    wider = with_change(tiny_config(latent_dim=8), "model.encoder.config.channels", 8)
    other = write_json(tmp_path / "mono.json", wider)
    with pytest.raises(CheckpointError) as err:
        load_autoencoder(other, ckpt)
    assert "more" in str(err.value) and "does not match the model config" in str(err.value)


class _WithPretransform(torch.nn.Module):
    """A diffusion-model-like module: its own layers plus an autoencoder under ``pretransform.``."""

    def __init__(self) -> None:
        super().__init__()
        self.model = torch.nn.Linear(3, 2)
        self.pretransform = torch.nn.Linear(2, 2)


def test_one_strict_loader_allows_only_the_named_prefix_to_be_missing():
    from preencode.models.checkpoint import load_strict

    source, target = _WithPretransform(), _WithPretransform()
    own = {k: v for k, v in source.state_dict().items() if k.startswith("model.")}
    load_strict(target, own, "model.ckpt", allow_missing="pretransform.")
    torch.testing.assert_close(target.model.weight, source.model.weight)
    assert not torch.equal(target.pretransform.weight, source.pretransform.weight)  # kept its own values
    with pytest.raises(CheckpointError, match=r"model.ckpt does not match .*2 missing: pretransform.bias, "
                                              r"pretransform.weight"):
        load_strict(target, own, "model.ckpt")
    with pytest.raises(CheckpointError, match=r"1 missing: model.bias"):
        load_strict(target, {k: v for k, v in own.items() if k != "model.bias"}, "model.ckpt",
                    allow_missing="pretransform.")
    bad = {**source.state_dict(), "model.weight": torch.zeros(2, 4), "extra": torch.zeros(1)}
    with pytest.raises(CheckpointError, match=r"1 unexpected: extra; 1 with another shape: model.weight "
                                              r"\(checkpoint \[2, 4\], model \[2, 3\]\)"):
        load_strict(target, bad, "model.ckpt", allow_missing="pretransform.")


def test_malicious_pickle_is_refused_without_running_code(tmp_path, trained):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with open(tmp_path / "evil.ckpt", "wb") as f:
        pickle.dump({"state_dict": Evil()}, f)
    torch.save({"state_dict": {"x": torch.zeros(1)}, "payload": Evil()}, tmp_path / "evil2.ckpt")
    for name in ("evil.ckpt", "evil2.ckpt"):
        with pytest.raises(CheckpointError, match=r"weights-only load refuses|not a PyTorch checkpoint"):
            load_autoencoder(trained[2], tmp_path / name)
    assert not marker.exists()


def test_user_errors_for_wrong_path_and_non_checkpoint(tmp_path, trained):
    config = trained[2]
    with pytest.raises(CheckpointError, match="Checkpoint not found"):
        load_autoencoder(config, tmp_path / "nope.ckpt")
    (tmp_path / "notes.ckpt").write_text("hello")
    with pytest.raises(CheckpointError, match="is not a PyTorch checkpoint"):
        load_autoencoder(config, tmp_path / "notes.ckpt")
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_autoencoder(config, tmp_path / "bad.safetensors")
    with pytest.raises(UserError, match="refusing to encode with random weights"):
        load_autoencoder(config, None)
    with pytest.raises(UserError, match="Model config not found"):
        load_autoencoder(tmp_path / "missing.json", trained[1])
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(UserError, match="not valid JSON"):
        load_autoencoder(tmp_path / "broken.json", trained[1])
    with pytest.raises(ConfigError):
        load_autoencoder(with_change(tiny_config(), "model.latent_dim", "4"), trained[1])


def test_loaded_model_is_frozen_folded_and_half_falls_back_on_cpu(trained, caplog):
    _, ckpt, config = trained
    model = load_autoencoder(config, ckpt, half=True)
    assert not model.training and model.dtype == torch.float32
    assert all(not p.requires_grad for p in model.parameters())
    assert "computing in float32" in caplog.text
    assert (model.sample_rate, model.io_channels, model.latent_dim, model.downsampling_ratio, model.is_discrete) == (
        16000, 2, 4, 8, False)


def test_every_kind_of_junk_is_one_checkpoint_error(tmp_path):
    """The shared reader of .ckpt files (autoencoder, training, unwrap). Before issue 11, `unwrap` of a text
    file ended in a KeyError traceback from torch's weights-only unpickler."""
    from pathlib import Path

    from preencode.models.checkpoint import load_checkpoint_object

    (tmp_path / "notes.txt").write_text("hi\n")
    (tmp_path / "random.ckpt").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "config.json").write_text('{"model": {}}')
    (tmp_path / "half.ckpt").write_bytes(b"PK\x03\x04" + b"\0" * 40)  # the start of a zip, cut
    for name in ("notes.txt", "random.ckpt", "config.json", "half.ckpt"):
        with pytest.raises(CheckpointError, match="is not a PyTorch checkpoint"):
            load_checkpoint_object(tmp_path / name)
    torch.save({"where": Path("x")}, tmp_path / "objects.ckpt")
    with pytest.raises(CheckpointError, match="holds Python objects"):
        load_checkpoint_object(tmp_path / "objects.ckpt")
    for missing, message in ((tmp_path / "nope.ckpt", "not found"), (tmp_path, "is a folder")):
        with pytest.raises(CheckpointError, match=message):
            load_checkpoint_object(missing)
    torch.save({"state_dict": {"w": torch.ones(2)}}, tmp_path / "good.ckpt")
    assert load_checkpoint_object(tmp_path / "good.ckpt")["state_dict"]["w"].sum() == 2
