"""Audio input: decoding, resampling, channel conversion and pad/crop windows.

Public API::

    from preencode.audio import load_audio, AudioLoadError
    audio, sr = load_audio("x.flac", sample_rate=44100, channels=2)   # float32 [2, T]
"""

from __future__ import annotations

from .channels import convert_channels
from .decode import AudioInfo, AudioLoadError, decode, probe
from .load import WindowedAudio, check_samples, load_audio, load_window
from .resample import resample, resampled_length
from .windows import Window, choose_window, is_silent, pad_crop, window_rng

AUDIO_EXTENSIONS = ("flac", "wav", "mp3", "m4a", "ogg", "opus", "aif", "aiff")

__all__ = [
    "AUDIO_EXTENSIONS", "AudioInfo", "AudioLoadError", "Window", "WindowedAudio", "check_samples",
    "choose_window", "convert_channels", "decode", "is_silent", "load_audio", "load_window", "pad_crop",
    "probe", "resample", "resampled_length", "window_rng",
]
