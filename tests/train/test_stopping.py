"""SIGTERM and SIGINT during training: the run stops at the next optimiser step, saves last.ckpt, says how to
resume, and exits 143 / 130; resuming from that checkpoint finishes the run.

Old code: Lightning's SIGTERM handler left the loop at the end of the batch with exit 0 and no checkpoint (the
steps since the last periodic checkpoint were lost without a word); Ctrl-C exited 1 ("Detected KeyboardInterrupt")
with no checkpoint, and killed DataLoader workers printed tracebacks.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch

from preencode.errors import Interrupted
from preencode.train import run as train_run
from preencode.train.run import train
from tests.train.test_training import options

pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parents[2]


class _SignalAt(L.Callback):
    """Sends ``signum`` to this process at the end of batch ``batch`` (counted over the whole run)."""

    def __init__(self, signum: int, batch: int) -> None:
        self.signum, self.batch, self.seen = signum, batch, 0

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.seen += 1
        if self.seen == self.batch:
            os.kill(os.getpid(), self.signum)


def _step(path: Path) -> int:
    return int(torch.load(path, weights_only=True)["global_step"])


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_at_the_step_saves_last_ckpt_and_a_resume_finishes(tmp_path, signum, code):
    opts = options(tmp_path, 50, checkpoint_every=100)
    with pytest.raises(Interrupted) as stopped:
        train(opts, callbacks=[_SignalAt(signum, 3)])
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert stopped.value.exit_code == code
    assert str(stopped.value) == (f"interrupted: step 3 of 50 (saved {last}); re-run the same command with "
                                  f"--ckpt-path {last} to resume")
    assert _step(last) == 3
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL and signal.getsignal(signal.SIGINT) is \
        signal.default_int_handler  # put back
    opts.ckpt_path, opts.max_steps = str(last), 5
    assert _step(train(opts)) == 5


def test_with_gradient_accumulation_the_stop_waits_for_the_optimiser_step(tmp_path):
    opts = options(tmp_path, 50, accum_batches=2, batch_size=4, checkpoint_every=100)
    with pytest.raises(Interrupted, match="interrupted: step 2 of 50"):
        train(opts, callbacks=[_SignalAt(signal.SIGTERM, 3)])  # batch 3 is half of step 2
    assert _step(tmp_path / "run" / "checkpoints" / "last.ckpt") == 2


def test_a_signal_before_training_starts_stops_at_once(tmp_path, monkeypatch):
    build = train_run.build_dataset

    def build_then_signal(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return build(*args, **kwargs)

    monkeypatch.setattr(train_run, "build_dataset", build_then_signal)
    with pytest.raises(Interrupted, match=r"^interrupted by SIGTERM before training started$") as stopped:
        train(options(tmp_path, 5))
    assert stopped.value.exit_code == 143
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_ctrl_c_to_the_process_group_with_loader_workers(tmp_path):
    """A real Ctrl-C reaches the loader workers too: they stay quiet and the main process stops with a checkpoint."""
    opts = options(tmp_path, 100000, checkpoint_every=3)
    argv = ["train", "--model-config", opts.model_config, "--dataset-config", opts.dataset_config, "--save-dir",
            opts.save_dir, "--batch-size", "8", "--num-workers", "2", "--max-steps", "100000", "--logger", "none",
            "--checkpoint-every", "3"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "preencode", *argv], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    first = tmp_path / "run" / "checkpoints" / "step_00000003.ckpt"
    try:
        deadline = time.monotonic() + 180
        while not first.exists() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[0]
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, output
    assert "Traceback" not in output and "Error" not in output, output
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    step = int(re.search(r"interrupted: step (\d+) of 100000 \(saved (.+?)\); re-run the same command with "
                         r"--ckpt-path (.+?) to resume", output).group(1))
    assert step >= 3 and _step(last) == step
