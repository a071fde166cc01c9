"""Several processes and killed runs: every input encoded exactly once, same ids and latents."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from tests.encode_setup import dataset_config, encode_args, read_output, write_clips

ROOT = Path(__file__).resolve().parents[3]


def _run(argv: list[str], **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "preencode", *argv], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def _finish(proc: subprocess.Popen, timeout: float = 240) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out
    return out


def _same(a: dict, b: dict, atol: float = 1e-4) -> None:
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key][0], b[key][0], atol=atol, rtol=1e-4)
        assert a[key][1] == b[key][1]


def test_two_ddp_processes_match_one_process_without_duplicates(model_files, tmp_path):
    folder = tmp_path / "audio"
    write_clips(folder, [90, 300, 256, 41, 700, 128, 222, 333, 64, 500, 77])  # 11: not a multiple of 3 x 2
    cfg = dataset_config(tmp_path, folder)
    one, two = tmp_path / "one", tmp_path / "two"
    _finish(_run(encode_args(model_files, cfg, one, "--batch-size", "3")))
    _finish(_run(encode_args(model_files, cfg, two, "--batch-size", "3", "--devices", "2", "--strategy", "ddp")))
    ranks = sorted(p.name for p in two.iterdir() if p.is_dir())
    assert ranks == ["0", "1"]
    per_rank = [len(list((two / r).glob("*.npy"))) for r in ranks]
    assert sum(per_rank) == 11 and min(per_rank) >= 5  # split evenly, nothing repeated
    _same(read_output(one), read_output(two))  # posterior samples too: noise depends only on seed and id
    # A resume with fewer pending inputs than ranks: one rank has nothing to do.
    removed = next((two / "1").glob("*.npy"))
    removed.unlink()
    removed.with_suffix(".json").unlink()
    out = _finish(_run(encode_args(model_files, cfg, two, "--batch-size", "3", "--devices", "2", "--strategy", "ddp")))
    assert "1 encoded, 10 skipped" in out
    _same(read_output(one), read_output(two))


def test_sigkill_midway_then_rerun_gives_the_uninterrupted_result(model_files, tmp_path):
    folder = tmp_path / "audio"
    write_clips(folder, [200 + 37 * i for i in range(40)])
    cfg = dataset_config(tmp_path, folder)
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    args = encode_args(model_files, cfg, killed, "--posterior", "mean", "--batch-size", "1")
    proc = _run(args, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(killed.glob("0/*.npy"))) < 5:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    partial = len(list(killed.glob("0/*.npy")))
    assert 5 <= partial < 40, partial
    out = _finish(_run(args))
    skipped = int(re.search(r"(\d+) skipped", out).group(1))
    assert partial <= skipped < 40
    _finish(_run(encode_args(model_files, cfg, clean, "--posterior", "mean", "--batch-size", "1")))
    _same(read_output(killed), read_output(clean))
    leftovers = [p.name for p in killed.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]
    assert leftovers == []
    names = {p.name for p in (killed / "0").iterdir()}
    assert all(n.replace(".json", ".npy") in names for n in names if n.endswith(".json"))
