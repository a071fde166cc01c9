"""Pad/crop windows against hand-computed cases of the reference's PadCrop_Normalized_T."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from preencode.audio import Window, choose_window, is_silent, load_window, pad_crop, window_rng
from tests.audio_files import write_audio

SR = 10


def _signal(n: int, channels: int = 2) -> np.ndarray:
    return (np.arange(1, n + 1, dtype=np.float32)[None].repeat(channels, 0)) / 1000


def test_shorter_than_window_is_padded_on_the_right():
    w = choose_window(total=25, sample_size=40, random_crop=True, rng=window_rng(0, 0))
    assert w == Window(0, 40, 25)
    out = pad_crop(_signal(25), w)
    assert out.shape == (2, 40)
    np.testing.assert_array_equal(out[:, :25], _signal(25))
    assert not out[:, 25:].any()
    md = w.metadata(SR)
    assert md["timestamps"] == (0.0, 1.0)
    assert md["seconds_start"] == 0 and md["seconds_total"] == 3  # ceil(25 / 10)
    assert md["padding_mask"].tolist() == [1.0] * 25 + [0.0] * 15


def test_equal_to_window():
    w = choose_window(total=40, sample_size=40, random_crop=True, rng=window_rng(0, 0))
    assert w.offset == 0
    md = w.metadata(SR)
    assert md["timestamps"] == (0.0, 1.0) and md["seconds_total"] == 4
    assert md["padding_mask"].sum() == 40
    np.testing.assert_array_equal(pad_crop(_signal(40), w), _signal(40))


def test_longer_without_random_crop_starts_at_zero():
    w = choose_window(total=100, sample_size=40, random_crop=False)
    assert w.offset == 0
    md = w.metadata(SR)
    assert md["timestamps"] == (0.0, 0.4)
    assert md["seconds_start"] == 0 and md["seconds_total"] == 10
    assert torch.equal(md["padding_mask"], torch.ones(40))


def test_longer_with_a_given_offset_hand_computed():
    w = Window(offset=57, sample_size=40, total=101)
    md = w.metadata(SR)
    assert md["timestamps"] == (57 / 101, 97 / 101)
    assert md["seconds_start"] == 5 and md["seconds_total"] == 11
    np.testing.assert_array_equal(pad_crop(_signal(101), w), _signal(101)[:, 57:97])


@settings(max_examples=200, deadline=None)
@given(total=st.integers(0, 5000), size=st.integers(1, 3000), seed=st.integers(0, 2**32 - 1),
       index=st.integers(0, 10**12))
def test_random_offsets_within_bounds_and_deterministic(total, size, seed, index):
    w = choose_window(total, size, True, window_rng(seed, index))
    assert 0 <= w.offset <= max(0, total - size)
    assert w == choose_window(total, size, True, window_rng(seed, index))
    if total <= size:
        assert w.offset == 0
    md = w.metadata(16000)
    assert 0 <= md["timestamps"][0] < md["timestamps"][1] <= 1
    assert int(md["padding_mask"].sum()) == min(total, size)


def test_random_offsets_cover_the_range():
    offsets = {choose_window(50, 40, True, window_rng(0, i)).offset for i in range(400)}
    assert offsets == set(range(11))


def test_silence_detection_uses_minus_60_db_peak():
    assert is_silent(np.zeros((2, 10), np.float32))
    assert is_silent(np.full((1, 10), 0.0009, np.float32))
    assert not is_silent(np.full((1, 10), 0.0011, np.float32))


@pytest.mark.parametrize("fmt,sr", [("wav", 48000), ("flac", 22050), ("flac", 44100), ("ogg", 48000)])
def test_seeked_window_equals_whole_file_window(tmp_path, fmt, sr):
    x = (np.random.default_rng(0).standard_normal((2, sr * 6)) * 0.1).astype(np.float32)
    path = write_audio(tmp_path / f"long.{fmt}", x, sr)
    for index in range(3):
        kw = dict(sample_rate=44100, channels=2, sample_size=44100, random_crop=True)
        seeked = load_window(path, rng=window_rng(7, index), seek=True, **kw)
        whole = load_window(path, rng=window_rng(7, index), seek=False, **kw)
        assert seeked.seeked and not whole.seeked
        assert seeked.window == whole.window and seeked.window.total == 44100 * 6
        torch.testing.assert_close(seeked.audio, whole.audio, atol=1e-5, rtol=0)


def test_window_of_mono_file_to_stereo_is_padded_and_clamped(tmp_path):
    x = np.full((1, 1000), 2.0, np.float32)  # out of range on purpose: clamped like the reference
    path = write_audio(tmp_path / "loud.wav", x, 16000, fmt="wav")
    got = load_window(path, sample_rate=16000, channels=2, sample_size=1500, random_crop=True,
                      rng=window_rng(0, 0))
    assert got.audio.shape == (2, 1500)
    assert float(got.audio.max()) <= 1.0
    assert not got.audio[:, 1000:].any()
