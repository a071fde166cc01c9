"""Decoding audio files to float32 ``[C, T]`` arrays at their own sample rate.

soundfile (libsndfile) is tried first: it is fast and reads WAV, FLAC, AIFF, OGG (Vorbis, Opus) and
MP3. Whatever it refuses (M4A/AAC, unusual containers) is decoded with PyAV (FFmpeg).

Both backends can decode a range of frames without decoding the file from the start: soundfile
seeks, PyAV seeks to the nearest earlier packet and trims the decoded frames exactly.
"""

from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np
import soundfile as sf

from ..errors import UserError

log = logging.getLogger(__name__)

#: A file path, or the bytes of a whole file (e.g. a member of a tar shard).
AudioSource = str | os.PathLike | bytes

# libsndfile formats whose header (or last Ogg page) gives the exact number of frames.
_EXACT_LENGTH_FORMATS = {"WAV", "WAVEX", "RF64", "W64", "FLAC", "AIFF", "CAF", "OGG"}
# FFmpeg codecs whose frames carry exact sample positions after a seek.
_LOSSLESS_CODECS = {"flac", "alac", "wavpack", "tta", "ape", "truehd", "mlp"}


class AudioLoadError(UserError):
    """A file that cannot be used as audio.

    Args:
        path: the file (or ``shard#member``) that failed.
        reason: one sentence saying what is wrong with it.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"Cannot load audio {self.path}: {reason}",
                         "Fix or remove the file; other files are not affected.")


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, read from its header.

    ``frames`` is exact when ``exact`` is true (lossless formats, Ogg); otherwise it is an estimate
    (MP3 without a length header, PyAV containers) or None.
    """

    sample_rate: int
    channels: int
    frames: int | None
    exact: bool
    backend: str


def source_name(source: AudioSource, name: str | None = None) -> str:
    if name is not None:
        return name
    return "<bytes>" if isinstance(source, (bytes, bytearray)) else str(source)


def _open_arg(source: AudioSource) -> str | BinaryIO:
    return io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else os.fspath(source)


def _check_not_empty(source: AudioSource, name: str) -> None:
    if isinstance(source, (bytes, bytearray)):
        size = len(source)
    else:
        try:
            size = os.stat(source).st_size
        except OSError as err:
            raise AudioLoadError(name, f"cannot be opened ({err.strerror or err})") from err
        if Path(source).is_dir():
            raise AudioLoadError(name, "is a folder, not an audio file")
    if size == 0:
        raise AudioLoadError(name, "file is empty (0 bytes)")


def probe(source: AudioSource, name: str | None = None) -> AudioInfo:
    """Read sample rate, channel count and length from the header.

    Raises:
        AudioLoadError: the file is missing, unreadable, empty or not audio.
    """
    name = source_name(source, name)
    _check_not_empty(source, name)
    try:
        info = sf.info(_open_arg(source))
        exact = info.format in _EXACT_LENGTH_FORMATS
        return AudioInfo(info.samplerate, info.channels, info.frames, exact, "soundfile")
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        sf_reason = str(err)
    try:
        with av.open(_open_arg(source), "r") as container:
            stream = _audio_stream(container, name)
            ctx = stream.codec_context
            frames = None
            if stream.duration is not None and stream.time_base is not None:
                frames = round(float(stream.duration * stream.time_base) * ctx.sample_rate)
            return AudioInfo(ctx.sample_rate, ctx.channels, frames, False, "pyav")
    except (av.FFmpegError, OSError, ValueError) as err:
        raise AudioLoadError(name, _unreadable_reason(sf_reason, err)) from err


def _unreadable_reason(sf_reason: str, av_err: Exception) -> str:
    """One sentence for a file neither backend can open (FFmpeg's reason is the informative one)."""
    log.debug("libsndfile: %s", sf_reason)
    detail = getattr(av_err, "strerror", None) or str(av_err)
    return f"not a readable audio file: neither libsndfile nor FFmpeg recognise it ({detail})"


def decode(source: AudioSource, start: int = 0, frames: int | None = None,
           name: str | None = None) -> tuple[np.ndarray, int]:
    """Decode frames ``[start, start + frames)`` (to the end when ``frames`` is None).

    Returns:
        ``(audio, sample_rate)`` with audio a float32 array ``[C, T]`` at the file's own rate.
        ``T`` can be shorter than ``frames`` at the end of the file.

    Raises:
        AudioLoadError: the file cannot be opened or decoded (or is truncated where its header
            gives an exact length).
    """
    name = source_name(source, name)
    _check_not_empty(source, name)
    try:
        handle = sf.SoundFile(_open_arg(source))
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        log.debug("libsndfile refused %s (%s); trying PyAV", name, err)
        return _decode_pyav(source, start, frames, name, str(err))
    with handle:
        return _decode_soundfile(handle, start, frames, name), handle.samplerate


def _decode_soundfile(handle: sf.SoundFile, start: int, frames: int | None, name: str) -> np.ndarray:
    total = handle.frames
    exact = handle.format in _EXACT_LENGTH_FORMATS
    try:
        if start:
            if start >= total and exact:
                return np.zeros((handle.channels, 0), np.float32)
            handle.seek(start)
        want = -1 if frames is None else frames
        data = handle.read(want, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise AudioLoadError(name, f"decoding failed, the file is truncated or corrupt (libsndfile: {err})") from err
    if exact:
        expected = max(0, total - start) if frames is None else max(0, min(frames, total - start))
        if data.shape[0] < expected:
            raise AudioLoadError(name, f"file is truncated or corrupt: the header says {total} frames, "
                                       f"decoding stopped after {start + data.shape[0]}")
    return np.ascontiguousarray(data.T)


def _audio_stream(container: av.container.InputContainer, name: str) -> av.audio.stream.AudioStream:
    if not container.streams.audio:
        kinds: list[str] = sorted({str(s.type) for s in container.streams}) or ["none"]
        raise AudioLoadError(name, f"not audio: the file has no audio stream (streams: {', '.join(kinds)})")
    return container.streams.audio[0]


def _frame_to_float(frame: av.AudioFrame) -> np.ndarray:
    """One decoded frame as float32 ``[C, n]``."""
    arr = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:
        arr = arr.reshape(-1, channels).T
    if arr.dtype.kind == "f":
        return arr.astype(np.float32, copy=False)
    if arr.dtype == np.uint8:
        return (arr.astype(np.float32) - 128.0) / 128.0
    scale = float(2 ** (8 * arr.dtype.itemsize - 1))
    return (arr.astype(np.float64) / scale).astype(np.float32)


def _decode_pyav(source: AudioSource, start: int, frames: int | None, name: str,
                 sf_reason: str) -> tuple[np.ndarray, int]:
    try:
        container = av.open(_open_arg(source), "r")
    except (av.FFmpegError, OSError, ValueError) as err:
        raise AudioLoadError(name, _unreadable_reason(sf_reason, err)) from err
    with container:
        stream = _audio_stream(container, name)
        sr = stream.codec_context.sample_rate
        try:
            if start > 0 and stream.time_base is not None and _sample_accurate_seek(stream):
                chunks = _pyav_range(container, stream, sr, start, frames)
                if chunks is not None:
                    return chunks, sr
                container.seek(0, stream=stream)
            audio = _concat([_frame_to_float(f) for f in container.decode(stream)], stream.codec_context.channels)
        except (av.FFmpegError, ValueError) as err:
            raise AudioLoadError(name, f"decoding failed ({err})") from err
    if not sr:
        raise AudioLoadError(name, "not audio: the stream has no sample rate")
    end = None if frames is None else start + frames
    return np.ascontiguousarray(audio[:, start:end]), sr


def _sample_accurate_seek(stream: av.audio.stream.AudioStream) -> bool:
    """Whether FFmpeg seeks this codec to the exact sample a full decode would give.

    True for PCM and lossless codecs. Lossy codecs with encoder delay and overlapping frames (AAC,
    MP3 through FFmpeg) are decoded from the start and sliced instead, so the result never depends
    on whether a seek was used.
    """
    name = stream.codec_context.name
    return name.startswith("pcm_") or name in _LOSSLESS_CODECS


def _pyav_range(container, stream, sr: int, start: int, frames: int | None) -> np.ndarray | None:
    """Seek to the packet before ``start`` and trim exactly; None when frame times are unknown."""
    target_pts = int(start / sr / stream.time_base)
    container.seek(target_pts, stream=stream, backward=True, any_frame=False)
    end = None if frames is None else start + frames
    parts: list[np.ndarray] = []
    for frame in container.decode(stream):
        if frame.pts is None or frame.time_base is None:
            return None
        first = round(float(frame.pts * frame.time_base) * sr)
        if not parts and first > start:
            return None  # the seek landed after the start: decode from the beginning instead
        data = _frame_to_float(frame)
        lo, hi = max(start - first, 0), data.shape[1] if end is None else min(data.shape[1], end - first)
        if hi > lo:
            parts.append(data[:, lo:hi])
        elif not parts and first + data.shape[1] <= start:
            continue
        if end is not None and first + data.shape[1] >= end:
            break
    return _concat(parts, stream.codec_context.channels)


def _concat(parts: list[np.ndarray], channels: int) -> np.ndarray:
    if not parts:
        return np.zeros((channels, 0), np.float32)
    return np.ascontiguousarray(np.concatenate(parts, axis=1))
