"""Broken inputs each give a failure record with a clear reason; good files next to them load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from preencode.data import AudioWindowDataset, Failure, WindowSample, build_plan, collate, parse_dataset_config
from tests.audio_files import tone, write_audio

SR = 16000


def _plan(root: Path):
    return build_plan(parse_dataset_config({"dataset_type": "audio_dir",
                                            "datasets": [{"id": "broken", "path": str(root)}]}))


def _dataset(items):
    return AudioWindowDataset(items, sample_rate=SR, channels=2, sample_size=SR // 2, random_crop=True, seed=3)


def _make_broken_folder(root: Path) -> None:
    write_audio(root / "good_a.wav", tone(1.0, SR), SR)
    write_audio(root / "good_z.flac", tone(1.0, SR, 2), SR)
    (root / "empty.wav").write_bytes(b"")
    header_only = root / "header_only.wav"
    sf.write(header_only, np.zeros((0, 1), np.float32), SR, subtype="PCM_16")
    flac = (root / "full.flac")
    write_audio(flac, (np.random.default_rng(0).standard_normal((2, SR * 3)) * 0.3).astype(np.float32), SR)
    (root / "truncated.flac").write_bytes(flac.read_bytes()[: flac.stat().st_size // 2])
    flac.unlink()
    (root / "noise.ogg").write_bytes(np.random.default_rng(1).bytes(5000))
    (root / "readme.mp3").write_text("This is a text file, not an MP3.\n" * 20)
    nan = np.full((1, SR), 0.1, np.float32)
    nan[0, 100] = np.nan
    sf.write(root / "nan.wav", nan.T, SR, subtype="FLOAT")
    os.symlink(root / "loop.wav", root / "loop.wav")


EXPECTED = {
    "empty.wav": ("decode", "file is empty (0 bytes)"),
    "header_only.wav": ("decode", "no audio samples"),
    "truncated.flac": ("decode", "truncated"),
    "noise.ogg": ("decode", "not a readable audio file"),
    "readme.mp3": ("decode", "not a readable audio file"),
    "nan.wav": ("decode", "NaN or infinite"),
    "loop.wav": ("scan", "symlink loop"),
}


def test_each_broken_input_is_recorded_and_good_files_load(tmp_path):
    _make_broken_folder(tmp_path)
    plan = _plan(tmp_path)
    ds = _dataset(plan.items)
    results = [ds[i] for i in range(len(ds))]
    failures = plan.failures + [r for r in results if isinstance(r, Failure)]
    got = {os.path.basename(f.path): (f.stage, f.reason) for f in failures}
    assert set(got) == set(EXPECTED)
    for name, (stage, words) in EXPECTED.items():
        assert got[name][0] == stage and words in got[name][1], (name, got[name])
    samples = [r for r in results if isinstance(r, WindowSample)]
    assert [os.path.basename(s.metadata["path"]) for s in samples] == ["good_a.wav", "good_z.flac"]
    assert all(s.audio.shape == (2, SR // 2) for s in samples)
    # every item is accounted for exactly once: no substitutes, no duplicates
    assert len(samples) + sum(isinstance(r, Failure) for r in results) == len(plan.items)
    batch = collate(results)
    assert batch.audio.shape == (2, 2, SR // 2) and len(batch.failures) == 6
    for f in failures:
        assert json.loads(f.to_json())["reason"] == f.reason


def test_failure_json_has_path_stage_reason_and_index():
    f = Failure("/x/a.wav", "decode", "file is empty (0 bytes)", index=7, dataset_id="d")
    assert json.loads(f.to_json()) == {"kind": "failure", "path": "/x/a.wav", "stage": "decode",
                                       "reason": "file is empty (0 bytes)", "index": 7, "dataset_id": "d"}


_AS_NOBODY = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, sys.argv[2])
    from preencode.data import Failure, AudioWindowDataset, build_plan, parse_dataset_config
    from preencode.audio import load_window, window_rng
    # import and warm up everything first: the interpreter's own files may not be readable by 'nobody'
    load_window(os.path.join(sys.argv[1], "good.wav"), sample_rate=16000, channels=1, sample_size=8000,
                random_crop=True, rng=window_rng(0, 0))
    os.setgid(65534); os.setuid(65534)
    config = {"dataset_type": "audio_dir", "datasets": [{"id": "p", "path": sys.argv[1]}]}
    plan = build_plan(parse_dataset_config(config))
    ds = AudioWindowDataset(plan.items, sample_rate=16000, channels=1, sample_size=8000)
    for f in plan.failures:
        print("SCAN", os.path.basename(f.path), f.reason)
    for r in (ds[i] for i in range(len(ds))):
        if isinstance(r, Failure):
            print("FAIL", os.path.basename(r.path), r.reason)
        else:
            print("OK", os.path.basename(r.metadata["path"]), "")
""")


def test_unreadable_file_and_folder_are_reported(tmp_path):
    """chmod 000 does not stop root, so as root the check runs in a child process as 'nobody'."""
    root = Path(tempfile.mkdtemp(prefix="preencode-perm-"))
    try:
        os.chmod(root, 0o755)
        write_audio(root / "good.wav", tone(1.0, SR), SR)
        write_audio(root / "secret.wav", tone(1.0, SR), SR)
        os.chmod(root / "secret.wav", 0o000)
        (root / "locked").mkdir()
        write_audio(root / "locked" / "inside.wav", tone(1.0, SR), SR)
        os.chmod(root / "locked", 0o000)
        if os.geteuid() != 0:
            cmd = [sys.executable, "-c", _AS_NOBODY.replace("os.setgid(65534); os.setuid(65534)", "pass"),
                   str(root), os.getcwd()]
        else:
            cmd = [sys.executable, "-c", _AS_NOBODY, str(root), str(Path(__file__).resolve().parents[2])]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0 and "Operation not permitted" in proc.stderr:
            pytest.skip("cannot drop privileges here, and root reads any file")
        assert proc.returncode == 0, proc.stderr
        lines = sorted(proc.stdout.splitlines())
        assert lines[0].startswith("FAIL secret.wav") and "Permission denied" in lines[0]
        assert lines[1] == "OK good.wav "
        assert lines[2].startswith("SCAN locked folder cannot be read (Permission denied)")
    finally:
        for p in (root / "locked", root / "secret.wav"):
            os.chmod(p, 0o755)
        subprocess.run(["rm", "-rf", str(root)], check=False)
