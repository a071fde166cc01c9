"""SIGTERM and SIGINT stop a run at a batch boundary, keep what was committed, and a re-run finishes it as
a clean run would.

Old code: SIGTERM to the main process was ignored (the run went on to the end, exit 0); Ctrl-C exited 1
with no message (Lightning's handler), with tracebacks from the loader workers.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from preencode.cli import main
from preencode.store.names import LOCK
from preencode.store.reader import iter_records, open_tree
from tests.encode_setup import dataset_config, encode_args, write_clips

ROOT = Path(__file__).resolve().parents[3]


def _start(argv: list[str]) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "preencode", *argv], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _latents(out: Path) -> dict[str, np.ndarray]:
    """{id: latent} over loose files and shards; an id twice fails."""
    found: dict[str, np.ndarray] = {}
    for record in iter_records(open_tree(out), on_shard_error=lambda err: (_ for _ in ()).throw(err)):
        assert record.id not in found, record.id
        found[record.id] = record.load_latent()
    return found


def _wait_for(count_files, at_least: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and count_files() < at_least:
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.05)


def _interrupt(model_files, tmp_path, capsys, signum: int, group: bool, extra: list[str]) -> None:
    folder = tmp_path / "audio"
    write_clips(folder, [300 + 37 * i for i in range(40)])
    cfg = dataset_config(tmp_path, folder)
    out, clean = tmp_path / "out", tmp_path / "clean"
    args = encode_args(model_files, cfg, out, "--batch-size", "1", *extra)
    proc = _start(args)
    try:
        _wait_for(lambda: len([p for p in out.glob("0/*") if not p.name.startswith(".")]), 6, proc)
        os.killpg(proc.pid, signum) if group else os.kill(proc.pid, signum)
        output, _ = proc.communicate(timeout=60)  # within seconds: the next batch boundary
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + signum, output
    assert "Traceback" not in output and "Error" not in output, output
    done = int(re.search(r"interrupted: (\d+) of 40 encoded; re-run the same command to resume", output).group(1))
    kept = _latents(out)
    assert 3 <= len(kept) == done < 40
    assert not (out / LOCK).exists()
    capsys.readouterr()
    assert main(args) == 0  # the same command
    assert f"{40 - done} encoded, {done} skipped" in capsys.readouterr().err
    assert main(encode_args(model_files, cfg, clean, "--batch-size", "1", *extra)) == 0
    resumed, reference = _latents(out), _latents(clean)
    assert resumed.keys() == reference.keys() and len(resumed) == 40
    for key in resumed:
        np.testing.assert_array_equal(resumed[key], reference[key])
    leftovers = [p for p in out.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]
    assert leftovers == []


def test_sigterm_to_the_main_process_stops_at_a_batch_boundary_and_a_rerun_completes(model_files, tmp_path, capsys):
    _interrupt(model_files, tmp_path, capsys, signal.SIGTERM, group=False, extra=[])


def test_ctrl_c_to_the_whole_group_with_workers_keeps_the_open_shard(model_files, tmp_path, capsys):
    """SIGINT reaches the loader workers too (as Ctrl-C does); they stay quiet and the open shard, whose
    records are whole, is committed."""
    _interrupt(model_files, tmp_path, capsys, signal.SIGINT, group=True,
               extra=["--num-workers", "2", "--output-format", "wds", "--shard-size", "4"])
