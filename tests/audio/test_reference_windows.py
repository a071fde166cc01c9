"""Windows of multi-channel clips against stored outputs of stable-audio-tools' SampleDataset.

Stored values (``reference_windows.npz``, key ``"{model channels}/c{i}"``): the reference's
``SampleDataset(..., sample_size=256, sample_rate=16000, random_crop=False, force_channels="mono"/"stereo")``
with its PhaseFlipper switched off (``augs = None``), run on the clips that :func:`write_clips` writes.
The reference pads/crops, clamps to [-1, 1], THEN converts channels (``Mono`` = mean of channels).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from preencode.audio.load import load_window

REF = np.load(Path(__file__).parent / "reference_windows.npz")
CLIPS = [(300, 3), (200, 2), (100, 1), (50, 4)]  # (frames, channels); values exceed 1 (0.6 * N(0, 1))


def write_clips(folder: Path) -> list[Path]:
    rng = np.random.default_rng(5)
    paths = []
    for i, (n, ch) in enumerate(CLIPS):
        path = folder / f"c{i}.wav"
        sf.write(path, (0.6 * rng.standard_normal((n, ch))).astype(np.float32), 16000, subtype="FLOAT")
        paths.append(path)
    return paths


def window(path: Path, channels: int) -> np.ndarray:
    got = load_window(str(path), sample_rate=16000, channels=channels, sample_size=256, random_crop=False, rng=None)
    return got.audio.numpy()


def test_stereo_model_windows_equal_the_reference(tmp_path):
    for i, path in enumerate(write_clips(tmp_path)):
        np.testing.assert_array_equal(window(path, 2), REF[f"2/c{i}"])


def test_mono_model_window_of_a_mono_clip_equals_the_reference(tmp_path):
    np.testing.assert_array_equal(window(write_clips(tmp_path)[2], 1), REF["1/c2"])


def test_mono_model_windows_of_multichannel_clips_equal_the_reference(tmp_path):
    paths = write_clips(tmp_path)
    for i in (0, 1, 3):
        np.testing.assert_allclose(window(paths[i], 1), REF[f"1/c{i}"], rtol=0, atol=1e-6)
