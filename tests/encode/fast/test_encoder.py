"""The inference-only fast encoder: same numbers as the reference layout (max |diff| <= 1e-5, float32)."""

import pytest
import torch

from preencode.encode.fast.encoder import (
    FastOobleckEncoder,
    compiled_snake,
    optimize_for_inference,
    set_cpu_threads,
    snake_expr,
    snake_inplace,
)
from preencode.encode.fast.padding import PaddingSkipper
from preencode.models.factory import build_autoencoder
from preencode.models.layers import snake_beta
from tests.helpers import randomized, tiny_config

TOL = 1e-5


def _encode_both(model, audio):
    with torch.inference_mode():
        plain = model.encode_pre_bottleneck(audio)
        fast = optimize_for_inference(model, compile=False).encode_pre_bottleneck(audio)
    return plain, fast


@pytest.mark.parametrize("channels", [1, 2])
def test_fast_encoder_matches_plain(make_deep_model, channels):
    plain, fast = _encode_both(make_deep_model(channels=channels), torch.randn(3, channels, 32 * 50) * 0.5)
    assert fast.shape == plain.shape and fast.is_contiguous()
    assert (fast - plain).abs().max().item() <= TOL


def test_fast_encoder_with_elu_activations():
    cfg = tiny_config(use_snake=False)
    model = randomized(build_autoencoder(cfg)).eval().fold_weight_norm()
    plain, fast = _encode_both(model, torch.randn(2, 2, 64))
    assert (fast - plain).abs().max().item() <= TOL


def test_fast_encoder_is_exact_in_float64(make_deep_model):
    model = make_deep_model(gain=1.0).double()
    plain, fast = _encode_both(model, torch.randn(2, 2, 32 * 40, dtype=torch.float64))
    assert (fast - plain).abs().max().item() <= 1e-10


def test_snake_variants_agree_with_reference_formula():
    x = torch.randn(2, 5, 1, 40).contiguous(memory_format=torch.channels_last)
    alpha, beta = torch.rand(1, 5, 1, 1) + 0.2, torch.rand(1, 5, 1, 1) + 0.2
    expected = snake_beta(x, alpha, beta)
    inv_beta = 1.0 / (beta + 1e-9)
    x_before = x.clone()
    for fn in (snake_inplace, snake_expr):
        assert (fn(x, alpha, inv_beta) - expected).abs().max().item() <= 1e-6
    assert torch.equal(x, x_before), "the activation must not overwrite its input"


def test_optimize_refuses_unfolded_model_and_keeps_unfolded_keys():
    model = build_autoencoder(tiny_config())
    keys = list(model.state_dict())
    with pytest.raises(ValueError, match="fold"):
        optimize_for_inference(model, compile=False)
    assert list(model.state_dict()) == keys
    with pytest.raises(ValueError, match="compile"):
        optimize_for_inference(model.fold_weight_norm(), compile="yes")


def test_optimize_is_idempotent(make_deep_model):
    model = optimize_for_inference(make_deep_model(), compile=False)
    encoder = model.encoder
    assert optimize_for_inference(model, compile=False).encoder is encoder
    assert isinstance(encoder, FastOobleckEncoder)


def test_padding_skip_on_the_fast_encoder(make_deep_model):
    model = make_deep_model()
    audio = torch.zeros(2, 2, 32 * 200)
    audio[0, :, :700] = torch.randn(2, 700) * 0.5
    with torch.inference_mode():
        full = model.encode_pre_bottleneck(audio)
        fast = PaddingSkipper(optimize_for_inference(model, compile=False)).encode_pre_bottleneck(audio, [700, 0])
    assert (fast - full).abs().max().item() <= TOL


def test_compiled_snake_matches_plain(make_deep_model):
    """The production path (``compile="auto"``) where a compiler works; slowest test (compilation)."""
    if compiled_snake() is None:
        pytest.skip("torch.compile does not work on this machine")
    model = make_deep_model()
    audio = torch.randn(2, 2, 32 * 30) * 0.5
    with torch.inference_mode():
        plain = model.encode_pre_bottleneck(audio)
        fused = optimize_for_inference(model, compile="auto").encode_pre_bottleneck(audio)
    assert (fused - plain).abs().max().item() <= TOL


def test_thread_setting_respects_the_user(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert set_cpu_threads() == before
    monkeypatch.delenv("OMP_NUM_THREADS")
    try:
        assert 1 <= set_cpu_threads() <= (torch.get_num_threads() or 1)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(("chunk", "chunk_blocks"), [(32, 1), (96, 2), (200, 3), (1000, 2)])
def test_chunked_high_resolution_blocks_match_whole(make_deep_model, chunk, chunk_blocks):
    model = make_deep_model()
    audio = torch.randn(2, 2, 32 * 70) * 0.5
    whole = FastOobleckEncoder(model.encoder, snake_inplace, chunk=None)
    chunked = FastOobleckEncoder(model.encoder, snake_inplace, chunk=chunk, chunk_blocks=chunk_blocks)
    with torch.inference_mode():
        expected = model.encode_pre_bottleneck(audio)
        assert (whole(audio) - expected).abs().max().item() <= TOL
        assert (chunked(audio) - expected).abs().max().item() <= TOL


def test_chunked_is_exact_in_float64(make_deep_model):
    model = make_deep_model(gain=1.0).double()
    audio = torch.randn(1, 2, 32 * 70, dtype=torch.float64)
    chunked = FastOobleckEncoder(model.encoder, snake_inplace, chunk=64, chunk_blocks=2)
    with torch.inference_mode():
        assert (chunked(audio) - model.encode_pre_bottleneck(audio)).abs().max().item() <= 1e-10
