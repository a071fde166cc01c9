"""Under DDP a rank with no usable sample in its batch cannot skip its step alone (the other ranks would wait
for it in the gradient all-reduce): it adds zero gradients instead. Old code: the rank holding the NaN sample
returned None, which Lightning refuses under DDP ("Skipping the `training_step` by returning None in
distributed training is not supported"), and the run crashed with a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import write_json
from tests.train.conftest import dataset_config, make_latents, model_config

pytest.importorskip("transformers")
ROOT = Path(__file__).resolve().parents[2]


def test_under_ddp_the_ranks_skip_a_step_together_when_one_has_no_finite_sample(tmp_path):
    latents = make_latents(tmp_path / "lat")
    bad = next(iter(sorted(Path(latents).rglob("*.npy"))))
    values = np.load(bad)
    values[:] = np.nan
    np.save(bad, values)
    model = write_json(tmp_path / "model.json", model_config())
    data = write_json(tmp_path / "data.json", dataset_config(latents))
    argv = [sys.executable, "-m", "preencode", "train", "--model-config", str(model), "--dataset-config", str(data),
            "--save-dir", str(tmp_path / "run"), "--batch-size", "1", "--max-steps", "10", "--num-workers", "0",
            "--logger", "none", "--devices", "2", "--strategy", "ddp", "--checkpoint-every", "100"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["global_step"] == 10
    assert all(bool(torch.isfinite(v).all()) for v in state["state_dict"].values() if v.is_floating_point())
