"""Write the demo dataset: a few seconds of synthetic audio in several formats, plus its dataset config.

Nothing is downloaded. Usage: python scripts/make_demo_audio.py <folder>
"""

import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf


def tone(seconds: float, sr: int, freqs: list[float], channels: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    sig = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, np.pi)) for f in freqs) / len(freqs)
    env = np.minimum(1.0, t * 8) * np.minimum(1.0, (t[-1] - t) * 8)
    sig = 0.4 * sig * env + 0.01 * rng.standard_normal(t.size)
    out = np.stack([sig * (1 - 0.3 * c) for c in range(channels)], axis=1)
    return out.astype(np.float32)


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "demo_data/audio")
    root.mkdir(parents=True, exist_ok=True)
    clips = [
        ("chord_a.wav", 3.0, 44100, [220, 277.2, 329.6], 2, "WAV"),
        ("sweep/low_hum.flac", 2.0, 48000, [55, 110], 1, "FLAC"),
        ("sweep/bright.ogg", 5.0, 22050, [880, 1320], 2, "OGG"),
        ("long_drone.wav", 8.0, 44100, [98, 147, 196], 2, "WAV"),
    ]
    for name, seconds, sr, freqs, ch, fmt in clips:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, tone(seconds, sr, freqs, ch, seed=len(name)), sr, format=fmt)
    config = {"dataset_type": "audio_dir", "datasets": [{"id": "demo", "path": str(root.resolve())}],
              "random_crop": False, "drop_last": False}
    (root.parent / "dataset.json").write_text(json.dumps(config, indent=2))
    print(f"wrote {len(clips)} clips under {root} and {root.parent / 'dataset.json'}")


if __name__ == "__main__":
    main()
