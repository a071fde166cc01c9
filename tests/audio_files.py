"""Writing real audio files of every supported format for the tests (nothing is downloaded)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soundfile as sf

# extension -> (soundfile format, subtype); None: written with PyAV.
SOUNDFILE_FORMATS = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "aif": ("AIFF", "PCM_16"),
    "aiff": ("AIFF", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
    "opus": ("OGG", "OPUS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
}
ALL_FORMATS = (*SOUNDFILE_FORMATS, "m4a")
# Samples a lossy codec may add or drop at the ends (encoder delay/padding), at the file's rate.
LENGTH_TOLERANCE = {"wav": 0, "flac": 0, "aif": 0, "aiff": 0, "ogg": 0, "opus": 0, "mp3": 1152 * 2, "m4a": 2048}


def tone(seconds: float, sr: int, channels: int = 1, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    """A sine ``[channels, T]`` with a different frequency per channel."""
    t = np.arange(round(seconds * sr)) / sr
    return np.stack([amp * np.sin(2 * np.pi * freq * (c + 1) * t) for c in range(channels)]).astype(np.float32)


def write_audio(path: Path, audio: np.ndarray, sr: int, fmt: str | None = None) -> Path:
    """Write ``audio`` ``[C, T]`` to ``path`` in format ``fmt`` (default: from the extension)."""
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt in SOUNDFILE_FORMATS:
        major, subtype = SOUNDFILE_FORMATS[fmt]
        sf.write(path, audio.T, sr, format=major, subtype=subtype)
    elif fmt == "m4a":
        _write_pyav(path, audio, sr, "mp4", "aac")
    else:
        raise ValueError(f"unknown test format {fmt}")
    return path


def _write_pyav(path: Path, audio: np.ndarray, sr: int, container_format: str, codec: str) -> None:
    channels = audio.shape[0]
    layout = {1: "mono", 2: "stereo", 6: "5.1"}[channels]
    with av.open(str(path), "w", format=container_format) as out:
        stream = out.add_stream(codec, rate=sr, layout=layout)
        stream.time_base = Fraction(1, sr)
        pts = 0
        for start in range(0, audio.shape[1], 1024):
            block = np.ascontiguousarray(audio[:, start:start + 1024], dtype=np.float32)
            frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=layout)
            frame.sample_rate = sr
            frame.pts = pts
            pts += block.shape[1]
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
