"""docs/training.md's quick start runs as written on a fresh clone: its bash block, in a copy of the tracked
files, with the installed environment's ``python3`` and ``preencode`` on PATH (what ``make install`` and
activating ``.venv`` give a user)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "training.md"
#: Lines a user must not see: warnings of Lightning or Python, its epoch bar, tracebacks, our scale warning.
NOISE = ("Warning:", "Traceback", "validation_step", "eval mode", "weights_only", "Epoch ", "v_num", "it/s",
         "INFO:", "Tip:", "far from 1")


def quick_start() -> str:
    text = DOC.read_text(encoding="utf-8")
    return re.findall(r"```bash\n(.*?)```", text[:text.index("\n## ")], re.S)[0]


def fresh_clone(dest: Path) -> Path:
    """The files a clone of the checkout holds (tracked files, as they are in the working tree)."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():  # a file deleted in the working tree is not in a clone of it either
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def test_quick_start_runs_as_written_on_a_fresh_clone(tmp_path):
    clone = fresh_clone(tmp_path / "preencode")
    assert not (clone / "demo_output").exists() and not (clone / "demo_data").exists()
    venv_bin = Path(sys.executable).parent
    assert (venv_bin / "preencode").is_file(), "the test runs with an environment where preencode is installed"
    env = {"PATH": f"{venv_bin}:/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(clone)}
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", quick_start()], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=900)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    noise = [line for line in output.splitlines() if any(n in line for n in NOISE)]
    assert not noise, f"noise on the console: {noise}"
    assert "Done: 4 encoded" in output and "Saved runs/tiny/checkpoints/last.ckpt at step 50" in output
    assert re.search(r"^step 50/50 \| loss \S+ \| \S+ steps/s \| ETA 00:00:00$", output, re.M)
    assert sorted(p.name for p in (clone / "runs" / "tiny").glob("model.*")) == [
        "model.ckpt", "model.json", "model.safetensors"]
    audio, rate = sf.read(clone / "drone.wav")
    assert rate == 44100 and audio.shape == (5 * 44100, 2)
