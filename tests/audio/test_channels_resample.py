"""Channel conversion cases and soxr resampling (length formula, cached streams)."""

from __future__ import annotations

import numpy as np
import pytest
import soxr
from hypothesis import given, settings
from hypothesis import strategies as st

from preencode.audio import convert_channels, resample, resampled_length


def test_mono_to_stereo_duplicates():
    x = np.arange(6, dtype=np.float32).reshape(1, 6)
    np.testing.assert_array_equal(convert_channels(x, 2), np.vstack([x, x]))


def test_many_to_stereo_keeps_first_two_and_to_mono_averages():
    x = np.arange(18, dtype=np.float32).reshape(6, 3)
    np.testing.assert_array_equal(convert_channels(x, 2), x[:2])
    np.testing.assert_allclose(convert_channels(x, 1), x.mean(0, keepdims=True))
    np.testing.assert_array_equal(convert_channels(x[:2], 2), x[:2])


def test_impossible_channel_cases_raise():
    with pytest.raises(ValueError):
        convert_channels(np.zeros((2, 4), np.float32), 6)
    with pytest.raises(ValueError):
        convert_channels(np.zeros((2, 4), np.float32), 0)
    with pytest.raises(ValueError):
        convert_channels(np.zeros(4, np.float32), 2)


PAIRS = [(48000, 44100), (22050, 44100), (44100, 48000), (16000, 44100), (96000, 44100), (8000, 48000)]


@settings(max_examples=60, deadline=None)
@given(frames=st.integers(1, 20000), pair=st.sampled_from(PAIRS))
def test_resampled_length_matches_soxr(frames, pair):
    sr_in, sr_out = pair
    out = resample(np.zeros((1, frames), np.float32), sr_in, sr_out)
    assert out.shape == (1, resampled_length(frames, sr_in, sr_out))


@pytest.mark.parametrize("pair", PAIRS)
def test_resampled_length_matches_soxr_on_exact_halves(pair):
    sr_in, sr_out = pair
    ties = [n for n in range(1, 200000) if (2 * n * sr_out) % (2 * sr_in) == sr_in][:25]
    for frames in ties:
        out = resample(np.zeros((1, frames), np.float32), sr_in, sr_out)
        assert out.shape[1] == resampled_length(frames, sr_in, sr_out), frames


@pytest.mark.parametrize("pair", PAIRS)
def test_cached_stream_equals_one_shot_soxr(pair):
    sr_in, sr_out = pair
    rng = np.random.default_rng(1)
    for frames in (sr_in // 3, sr_in + 17):  # twice through the same cached stream
        x = (rng.standard_normal((2, frames)) * 0.1).astype(np.float32)
        ours = resample(x, sr_in, sr_out)
        ref = soxr.resample(x.T, sr_in, sr_out, quality="HQ").T
        np.testing.assert_array_equal(ours, ref)


def test_same_rate_is_untouched_and_bad_rates_raise():
    x = np.ones((2, 5), np.float32)
    assert resample(x, 44100, 44100) is x
    with pytest.raises(ValueError):
        resample(x, 0, 44100)
