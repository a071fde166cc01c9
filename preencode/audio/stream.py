"""Decoding a whole file in blocks, resampled on the fly: memory bounded by the block size.

The blocks, concatenated, equal :func:`preencode.audio.load_audio` of the file (same decoder, the same
soxr filter run as one stream, same channel conversion and clamping; checked in the tests to 1e-6),
without ever holding the whole file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import av
import numpy as np
import soundfile as sf
import soxr

from .channels import convert_channels, reduce_channels
from .decode import (
    _EXACT_LENGTH_FORMATS,
    AudioLoadError,
    AudioSource,
    _audio_stream,
    _check_not_empty,
    _frame_to_float,
    _open_arg,
    source_name,
)
from .load import check_samples
from .resample import QUALITY, resampled_length

log = logging.getLogger(__name__)

#: Source frames decoded per block.
BLOCK_FRAMES = 1 << 16


def decode_blocks(source: AudioSource, name: str, block_frames: int = BLOCK_FRAMES
                  ) -> tuple[int, int, Iterator[np.ndarray]]:
    """``(sample_rate, channels, blocks)``: the file decoded in float32 ``[C, n]`` blocks at its own rate.

    Raises:
        AudioLoadError: the file cannot be opened (when called) or decoded (while iterating).
    """
    _check_not_empty(source, name)
    try:
        handle = sf.SoundFile(_open_arg(source))
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        log.debug("libsndfile refused %s (%s); trying PyAV", name, err)
        return _pyav_blocks(source, name)
    return handle.samplerate, handle.channels, _soundfile_blocks(handle, name, block_frames)


def _soundfile_blocks(handle: sf.SoundFile, name: str, block_frames: int) -> Iterator[np.ndarray]:
    with handle:
        exact = handle.format in _EXACT_LENGTH_FORMATS
        read = 0
        while True:
            try:
                data = handle.read(block_frames, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as err:
                raise AudioLoadError(name, f"decoding failed, the file is truncated or corrupt "
                                           f"(libsndfile: {err})") from err
            if not data.shape[0]:
                break
            read += data.shape[0]
            yield np.ascontiguousarray(data.T)
        if exact and read < handle.frames:
            raise AudioLoadError(name, f"file is truncated or corrupt: the header says {handle.frames} frames, "
                                       f"decoding stopped after {read}")


def _pyav_blocks(source: AudioSource, name: str) -> tuple[int, int, Iterator[np.ndarray]]:
    try:
        container = av.open(_open_arg(source), "r")
        stream = _audio_stream(container, name)
    except (av.FFmpegError, OSError, ValueError) as err:
        raise AudioLoadError(name, f"not a readable audio file: neither libsndfile nor FFmpeg recognise it "
                                   f"({getattr(err, 'strerror', None) or err})") from err
    sr, channels = stream.codec_context.sample_rate, stream.codec_context.channels
    if not sr:
        container.close()
        raise AudioLoadError(name, "not audio: the stream has no sample rate")

    def blocks() -> Iterator[np.ndarray]:
        with container:
            try:
                for frame in container.decode(stream):
                    yield _frame_to_float(frame)
            except (av.FFmpegError, ValueError) as err:
                raise AudioLoadError(name, f"decoding failed ({err})") from err

    return sr, channels, blocks()


def stream_audio(source: AudioSource, sample_rate: int, channels: int, name: str | None = None,
                 block_frames: int | None = None) -> Iterator[np.ndarray]:
    """The file as float32 ``[channels, n]`` blocks at ``sample_rate``, clamped to [-1, 1].

    Raises:
        AudioLoadError: the file cannot be opened or decoded, is empty, holds NaN/Inf, or cannot be
            converted to ``channels``; raised while iterating, possibly after some blocks.
    """
    name = source_name(source, name)
    sr, file_channels, blocks = decode_blocks(source, name, block_frames or BLOCK_FRAMES)
    kept = reduce_channels(np.zeros((file_channels, 0), np.float32), channels).shape[0]
    resampler = None if sr == sample_rate else soxr.ResampleStream(sr, sample_rate, kept, dtype="float32",
                                                                    quality=QUALITY)
    frames_in = frames_out = 0
    for block in blocks:
        check_samples(block, name)
        block = reduce_channels(block, channels)
        frames_in += block.shape[1]
        if resampler is not None:
            block = np.ascontiguousarray(resampler.resample_chunk(np.ascontiguousarray(block.T), last=False).T)
        frames_out += block.shape[1]
        if block.shape[1]:
            yield _finish(block, channels, name)
    if frames_in == 0:
        raise AudioLoadError(name, "file has no audio samples (0 frames)")
    if resampler is None:
        return
    if resampled_length(frames_in, sr, sample_rate) == 0:
        raise AudioLoadError(name, f"shorter than one sample at {sample_rate} Hz")
    tail = np.ascontiguousarray(resampler.resample_chunk(np.zeros((0, kept), np.float32), last=True).T)
    # As :func:`preencode.audio.resample`: the length never depends on soxr's tie-breaking.
    expected = resampled_length(frames_in, sr, sample_rate)
    want = expected - frames_out
    if want < 0:
        raise AudioLoadError(name, f"resampling gave {frames_out} samples, more than the expected {expected}")
    tail = tail[:, :want] if tail.shape[1] >= want else np.pad(tail, ((0, 0), (0, want - tail.shape[1])))
    if tail.shape[1]:
        yield _finish(tail, channels, name)


def _finish(block: np.ndarray, channels: int, name: str) -> np.ndarray:
    """Clamp each channel, then convert channels (the reference's order, as :func:`load_audio`)."""
    try:
        return convert_channels(np.clip(block, -1.0, 1.0), channels).astype(np.float32, copy=False)
    except ValueError as err:
        raise AudioLoadError(name, str(err)) from err
