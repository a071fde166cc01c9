"""Chunked encoding equals one unchunked pass: receptive field, chunk plan, stitching, streamed decoding."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
import torch

from preencode.audio import load_audio
from preencode.audio.stream import stream_audio
from preencode.encode.full_length.chunks import chunk_margin, iter_chunks, receptive_field
from preencode.encode.full_length.stitch import Stitcher, encode_grouped
from preencode.models.config import parse_autoencoder_config
from preencode.models.factory import build_autoencoder
from tests.helpers import randomized, tiny_config

RATIO = 8
CHUNK = 256
# float32: the same convolutions over inputs of other lengths may sum in another order.
ATOL, RTOL = 1e-5, 1e-5


@pytest.fixture(scope="module")
def model():
    return randomized(build_autoencoder(tiny_config(channels=1)), seed=3).eval()


def _pre(model, audio: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model.encode_pre_bottleneck(torch.from_numpy(audio)[None])[0].numpy()


def _blocks(signal: np.ndarray, rng: np.random.Generator):
    at = 0
    while at < signal.shape[1]:
        n = int(rng.integers(1, 700))
        yield signal[:, at:at + n]
        at += n


def _chunked(model, signal: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    stitcher = Stitcher()
    chunks = list(iter_chunks(_blocks(signal, np.random.default_rng(seed)), size, chunk_margin(model.config), RATIO))
    assert [c.last for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert chunks[-1].total == signal.shape[1]
    with torch.inference_mode():
        pres = encode_grouped(model.encode_pre_bottleneck, [torch.from_numpy(c.audio) for c in chunks])
    for c, pre in zip(chunks, pres, strict=True):
        assert c.audio.shape[1] % RATIO == 0 and c.audio.shape[1] <= size + 2 * chunk_margin(model.config)
        stitcher.add(0, c.frame_start, pre[:, c.keep_offset:c.keep_offset + c.keep])
    return stitcher.finish(0).numpy()


def test_receptive_field_of_the_oobleck_layout():
    cfg = parse_autoencoder_config(tiny_config())
    assert receptive_field(cfg) == (133, 133)
    assert chunk_margin(cfg) == 136  # rounded up to the ratio
    sao = parse_autoencoder_config(tiny_config() | {"model": tiny_config()["model"] | {
        "encoder": {"type": "oobleck", "config": {"in_channels": 2, "channels": 4, "c_mults": [1, 2, 4, 8, 16],
                                                  "strides": [2, 4, 4, 8, 8], "latent_dim": 8}},
        "decoder": {"type": "oobleck", "config": {"out_channels": 2, "channels": 4, "c_mults": [1, 2, 4, 8, 16],
                                                  "strides": [2, 4, 4, 8, 8], "latent_dim": 4}},
        "downsampling_ratio": 2048}})
    assert receptive_field(sao) == (14885, 14885) and chunk_margin(sao) == 16384


def test_receptive_field_bounds_what_a_frame_sees(model):
    """An impulse changes only the frames whose receptive field holds it, and the field is tight."""
    left, right = receptive_field(model.config)
    n, pos = 1024, 517
    base = np.zeros((1, n), np.float32)
    hit = base.copy()
    hit[0, pos] = 1.0
    changed = np.abs(_pre(model, hit) - _pre(model, base)).max(axis=0) > 0
    frames = np.arange(changed.size)
    inside = (frames * RATIO - left <= pos) & (pos < (frames + 1) * RATIO + right)
    assert not (changed & ~inside).any()
    assert changed[inside].sum() >= inside.sum() - 2  # the bound is not loose by more than a frame per side


@pytest.mark.parametrize("length", [CHUNK - 5, CHUNK, CHUNK + 1, 2 * CHUNK, 9 * CHUNK + 123, 40 * CHUNK])
def test_chunked_equals_unchunked(model, length):
    signal = (0.3 * np.random.default_rng(length).standard_normal((1, length))).astype(np.float32)
    padded = np.pad(signal, ((0, 0), (0, -length % RATIO)))
    expected = _pre(model, padded)
    got = _chunked(model, signal, CHUNK, seed=length)
    assert got.shape == expected.shape == (expected.shape[0], -(-length // RATIO))
    np.testing.assert_allclose(got, expected, atol=ATOL * np.abs(expected).max(), rtol=RTOL)


def test_chunk_size_does_not_change_the_result(model):
    signal = (0.3 * np.random.default_rng(1).standard_normal((1, 5000))).astype(np.float32)
    a, b = _chunked(model, signal, CHUNK), _chunked(model, signal, 3 * CHUNK + 2 * RATIO)
    np.testing.assert_allclose(a, b, atol=ATOL * np.abs(a).max(), rtol=RTOL)


def test_iter_chunks_rejects_bad_sizes_and_empty_signals():
    with pytest.raises(ValueError, match="multiples"):
        list(iter_chunks([np.zeros((1, 10), np.float32)], 100, 8, 8))
    with pytest.raises(ValueError, match="empty"):
        list(iter_chunks([], 64, 8, 8))


@pytest.mark.parametrize(("fmt", "sr_in", "channels"), [("wav", 44100, 2), ("flac", 48000, 1), ("ogg", 16000, 2)])
def test_streamed_decoding_equals_whole_file_load(tmp_path, fmt, sr_in, channels):
    path = tmp_path / f"a.{fmt}"
    data = (0.4 * np.random.default_rng(0).standard_normal((123457, channels))).astype(np.float32)
    sf.write(path, data, sr_in)
    for sr, ch in [(16000, 2), (44100, 1)]:
        whole, _ = load_audio(path, sample_rate=sr, channels=ch)
        blocks = list(stream_audio(path, sr, ch, block_frames=5000))
        assert len(blocks) > 3 and max(b.shape[1] for b in blocks) < 20000
        np.testing.assert_allclose(np.concatenate(blocks, axis=1), whole.numpy(), atol=1e-6)


def test_an_input_failing_after_some_chunks_leaves_nothing_behind(model):
    from preencode.data.failures import Failure
    from preencode.encode.engine.module import EncodeModule, EncodeSettings
    from preencode.encode.full_length.stream import ChunkBatch, StreamedChunk

    module = EncodeModule(model, EncodeSettings(posterior="mean"))
    chunk = StreamedChunk(index=4, audio=torch.zeros(1, 512), frame_start=0, keep_offset=0, keep=32, samples=256)
    out = module.predict_step(ChunkBatch([chunk]))
    assert module.stitcher.frames == {4: 32} and out.samples == [] and out.audio_samples == 256
    failure = Failure("x.wav", "decode", "truncated", index=4)
    later = ChunkBatch([replace(chunk, frame_start=32)], failures=[failure])
    out = module.predict_step(later)
    assert out.samples == [] and out.failures == [failure]
    assert module.stitcher.partial == {} and module.stitcher.frames == {}


def test_the_last_chunk_completes_its_input_with_its_metadata(model):
    from preencode.encode.engine.module import EncodeModule, EncodeSettings
    from preencode.encode.full_length.stream import ChunkBatch, StreamedChunk

    module = EncodeModule(model, EncodeSettings(posterior="mean"))
    first = StreamedChunk(index=2, audio=torch.zeros(1, 256), frame_start=0, keep_offset=0, keep=32, samples=256)
    last = StreamedChunk(index=2, audio=torch.zeros(1, 256), frame_start=32, keep_offset=0, keep=32, samples=100,
                         metadata={"path": "a.wav"}, total_samples=356)
    assert module.predict_step(ChunkBatch([first])).samples == []
    (sample,) = module.predict_step(ChunkBatch([last])).samples
    assert sample.index == 2 and sample.latent.shape[-1] == 64
    assert list(sample.meta.to_dict()) == ["path", "padding_mask"]
    assert sample.meta.to_dict()["padding_mask"] == [1] * 45 + [0] * 19  # frames starting past 356 samples
