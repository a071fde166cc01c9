"""Skipping zero padding: receptive fields and exactness against encoding the full window.

Tolerance: max |difference| <= 1e-5 in float32 against encoding the whole zero-padded window
(activations of order one), and <= 1e-10 in float64. The two paths do the same arithmetic on the
same inputs; oneDNN convolutions round a shorter input slightly differently (with oneDNN off the
float32 results are bit-identical), which is why float32 is compared with a tolerance.
"""

import pytest
import torch

from preencode.encode.fast.padding import PaddingSkipper
from preencode.encode.fast.receptive_field import receptive_field
from preencode.models.config import OobleckConfig, load_autoencoder_config
from tests.helpers import SPEC

TOL = 1e-5
HOP = 32
WINDOW = HOP * 256  # 8192 samples


def _windows(channels: int, lengths: list[int], seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    audio = torch.zeros(len(lengths), channels, WINDOW)
    for i, n in enumerate(lengths):
        audio[i, :, :n] = torch.randn(channels, n, generator=gen) * 0.5
    return audio


def test_receptive_field_of_stable_audio_open_vae():
    cfg = load_autoencoder_config(SPEC / "stable_audio_open_vae_config.json").encoder
    left, right = receptive_field(cfg)
    assert (left, right) == (14885, 16932)
    assert 8 * 2048 < right < 9 * 2048


def test_receptive_field_grows_with_depth():
    shallow = receptive_field(OobleckConfig(channels=4, c_mults=(1,), strides=(2,)))
    deep = receptive_field(OobleckConfig(channels=4, c_mults=(1, 2), strides=(2, 4)))
    assert deep[0] > shallow[0] and deep[1] > shallow[1]


@pytest.mark.parametrize("sample", [0, 700, 1000, 2047])
def test_receptive_field_matches_perturbation(make_deep_model, sample):
    """Perturbing input sample k changes exactly the frames whose derived receptive field holds k."""
    model = make_deep_model(channels=1).double()
    left, right = receptive_field(model.config.encoder)
    audio = torch.randn(1, 1, 2048, dtype=torch.float64)
    bumped = audio.clone()
    bumped[0, 0, sample] += 1.0
    with torch.inference_mode():
        changed = (model.encode_pre_bottleneck(audio) != model.encode_pre_bottleneck(bumped)).any(dim=1)[0]
    frames = torch.arange(changed.numel())
    predicted = (frames * HOP - left <= sample) & (sample <= frames * HOP + right)
    assert changed.any()
    assert not (changed & ~predicted).any(), "a frame changed outside the derived receptive field"
    assert torch.equal(changed, predicted), "the derived receptive field is wider than what the model reads"


def _check_exact(model, audio, lengths):
    skipper = PaddingSkipper(model)
    with torch.inference_mode():
        full = model.encode_pre_bottleneck(audio)
        fast = skipper.encode_pre_bottleneck(audio, torch.tensor(lengths))
    assert fast.shape == full.shape
    assert (fast - full).abs().max().item() <= TOL
    return skipper


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.95])
def test_partial_content_matches_full_encoding(make_deep_model, channels, fraction):
    model = make_deep_model(channels=channels)
    n = int(WINDOW * fraction)
    skipper = _check_exact(model, _windows(channels, [n]), [n])
    if fraction < 0.9:
        assert skipper.skipped_fraction > 0.3


def test_mixed_batch_zero_and_full_content(make_deep_model):
    model = make_deep_model(channels=2)
    lengths = [0, 1, 333, 4100, WINDOW - 1, WINDOW]
    _check_exact(model, _windows(2, lengths), lengths)


@pytest.mark.parametrize("fraction", [0.05, 0.5])
def test_float64_is_exact_on_an_ill_conditioned_model(make_deep_model, fraction):
    model = make_deep_model(channels=2, gain=1.0).double()
    n = int(WINDOW * fraction)
    audio = _windows(2, [n, n // 3]).double()
    with torch.inference_mode():
        full = model.encode_pre_bottleneck(audio)
        fast = PaddingSkipper(model).encode_pre_bottleneck(audio, [n, n // 3])
    assert full.abs().max() > 10
    assert (fast - full).abs().max().item() <= 1e-10


@pytest.mark.parametrize("lengths", [[0], [0, 0], [WINDOW], [17]])
def test_edge_lengths(make_deep_model, lengths):
    model = make_deep_model(channels=2)
    _check_exact(model, _windows(2, lengths), lengths)


def test_short_and_long_zero_windows_agree(make_deep_model):
    """The zero window assembled from a short one equals encoding zeros of the full length."""
    model = make_deep_model(channels=2)
    skipper = PaddingSkipper(model)
    for window in (HOP * 8, HOP * 40, WINDOW):
        with torch.inference_mode():
            direct = model.encode_pre_bottleneck(torch.zeros(1, 2, window))[0]
            cached = skipper.zero_window(window, torch.float32, torch.device("cpu"))
        assert (direct - cached).abs().max().item() <= TOL


def test_posterior_sampled_after_skipping_matches_reference(make_deep_model):
    model = make_deep_model(channels=2)
    lengths = [500, 3000]
    audio = _windows(2, lengths)
    noise = torch.randn(2, model.latent_dim, WINDOW // HOP, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        full = model.encode(audio, noise=noise)
        fast = model.bottleneck.encode(PaddingSkipper(model).encode_pre_bottleneck(audio, lengths), noise=noise)
    assert (fast - full).abs().max().item() <= TOL


def test_encode_length_is_bounded_and_hop_aligned(make_deep_model):
    skipper = PaddingSkipper(make_deep_model())
    previous = 0
    for n in range(0, WINDOW + 1, 97):
        m = skipper.encode_length(n, WINDOW)
        assert m % HOP == 0 and n <= m <= WINDOW and m >= previous
        assert m <= WINDOW and (m == WINDOW or m <= n + skipper.left + skipper.right + 2 * HOP)
        previous = m


def test_non_zero_padding_is_refused(make_deep_model):
    audio = _windows(2, [100])
    audio[0, 1, 5000] = 0.1
    with pytest.raises(ValueError, match="not zero"):
        PaddingSkipper(make_deep_model()).encode_pre_bottleneck(audio, [100])


def test_engine_hook_form(make_deep_model):
    model = make_deep_model()
    skipper = PaddingSkipper(model)
    audio = _windows(2, [300])
    with torch.inference_mode():
        assert torch.equal(skipper(model, audio, torch.tensor([300])), skipper.encode_pre_bottleneck(audio, [300]))
    with pytest.raises(ValueError, match="another model"):
        skipper(make_deep_model(), audio, [300])
