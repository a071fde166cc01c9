"""Every supported format, written with soundfile/PyAV, decodes with the right rate, channels, length."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from preencode.audio import AudioLoadError, decode, load_audio, probe
from preencode.audio.decode import _decode_pyav
from preencode.errors import UserError
from tests.audio_files import ALL_FORMATS, LENGTH_TOLERANCE, tone, write_audio

RATES = {"opus": 48000}  # Opus only encodes at 48 kHz (and a few lower rates)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("formats")
    out = {}
    for fmt in ALL_FORMATS:
        sr = RATES.get(fmt, 22050)
        for channels in (1, 2):
            out[fmt, channels] = (write_audio(root / f"c{channels}.{fmt}", tone(1.0, sr, channels), sr), sr)
    return out


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_every_format_loads_at_its_own_rate(files, fmt, channels):
    path, sr = files[fmt, channels]
    audio, got_sr = load_audio(path)
    assert got_sr == sr
    assert audio.dtype == torch.float32 and audio.shape[0] == channels
    assert abs(audio.shape[1] - sr) <= LENGTH_TOLERANCE[fmt]
    assert float(audio.abs().max()) > 0.1


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_every_format_resamples_to_44k_stereo(files, fmt):
    path, sr = files[fmt, 1]
    audio, got_sr = load_audio(path, sample_rate=44100, channels=2)
    assert got_sr == 44100 and audio.shape[0] == 2
    tolerance = LENGTH_TOLERANCE[fmt] * 44100 / sr + 1
    assert abs(audio.shape[1] - 44100) <= tolerance
    assert torch.equal(audio[0], audio[1])  # mono duplicated
    assert float(audio.abs().max()) <= 1.0


def test_case_insensitive_extension_and_uppercase_name(tmp_path):
    path = write_audio(tmp_path / "LOUD.FLAC", tone(0.1, 16000), 16000, fmt="flac")
    audio, sr = load_audio(path)
    assert sr == 16000 and audio.shape == (1, 1600)


def test_m4a_goes_through_pyav(files):
    assert probe(files["m4a", 2][0]).backend == "pyav"
    assert probe(files["flac", 2][0]).backend == "soundfile"


def test_six_channels_to_stereo_keeps_first_two_and_to_mono_averages(tmp_path):
    x = tone(0.5, 16000, channels=6, amp=0.1)
    path = write_audio(tmp_path / "surround.wav", x, 16000)
    ref, _ = load_audio(path)
    stereo, _ = load_audio(path, channels=2)
    mono, _ = load_audio(path, channels=1)
    assert ref.shape[0] == 6 and stereo.shape[0] == 2 and mono.shape[0] == 1
    torch.testing.assert_close(stereo, ref[:2])
    torch.testing.assert_close(mono, ref.mean(0, keepdim=True), atol=1e-6, rtol=0)


def test_six_channel_resampled_matches_channel_first_then_resample(tmp_path):
    x = tone(0.5, 48000, channels=6, amp=0.1)
    path = write_audio(tmp_path / "surround.flac", x, 48000)
    full, _ = load_audio(path, sample_rate=44100)
    mono, _ = load_audio(path, sample_rate=44100, channels=1)
    torch.testing.assert_close(mono, full.mean(0, keepdim=True), atol=1e-5, rtol=0)


def test_bytes_source_decodes_like_the_file(files):
    path, _ = files["ogg", 2]
    a, sr = load_audio(path)
    b, sr_b = load_audio(path.read_bytes())
    assert sr == sr_b and torch.equal(a, b)


def test_decode_range_with_soundfile_seek_equals_slice(files):
    path, _ = files["flac", 2]
    full, _ = decode(path)
    part, _ = decode(path, start=1234, frames=5000)
    np.testing.assert_array_equal(part, full[:, 1234:6234])


@pytest.mark.parametrize("fmt", ["flac", "wav"])
def test_pyav_seek_and_trim_is_exact_for_lossless(tmp_path, fmt):
    x = (np.random.default_rng(0).standard_normal((2, 48000 * 3)) * 0.1).astype(np.float32)
    path = str(write_audio(tmp_path / f"x.{fmt}", x, 48000))
    full, _ = _decode_pyav(path, 0, None, path, "")
    for start in (1, 1000, 50000, 100001):
        part, _ = _decode_pyav(path, start, 4000, path, "")
        np.testing.assert_array_equal(part, full[:, start:start + 4000])


def test_pyav_lossy_range_is_sliced_from_a_full_decode(files):
    path, _ = files["m4a", 2]
    full, _ = decode(path)
    part, _ = decode(path, start=3000, frames=2000)
    np.testing.assert_array_equal(part, full[:, 3000:5000])


def test_audio_load_error_is_a_user_error_with_reason(tmp_path):
    path = tmp_path / "nothing.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioLoadError) as info:
        load_audio(path)
    assert isinstance(info.value, UserError)
    assert info.value.reason == "file is empty (0 bytes)"
    assert str(path) in str(info.value)
