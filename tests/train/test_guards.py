"""Non-finite numbers in training: a sample with NaN/Inf latents is skipped and counted (never replaced), a
non-finite loss stops the run with one line, and a checkpoint with non-finite weights is never written.

Old code: one NaN latent made the loss NaN, every weight NaN after the next step, and the run saved all-NaN
checkpoints (periodic and last.ckpt) with exit 0.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from preencode.cli import main as cli
from preencode.errors import TrainingDiverged
from preencode.train.guards import NonFiniteSamples
from preencode.train.run import train
from tests.train.conftest import model_weights
from tests.train.test_training import options

pytest.importorskip("transformers")


def _checkpoints(run: Path) -> dict[str, dict[str, torch.Tensor]]:
    files = sorted((run / "checkpoints").glob("*.ckpt"))
    return {p.name: torch.load(p, weights_only=True)["state_dict"] for p in files}


def _all_finite(state: dict[str, torch.Tensor]) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point())


def _metric(run: Path, name: str) -> list[float]:
    (metrics,) = (run / "csv").rglob("metrics.csv")
    with open(metrics, newline="") as f:
        return [float(r[name]) for r in csv.DictReader(f) if r.get(name)]


def test_a_nan_latent_is_skipped_and_counted_and_no_checkpoint_is_non_finite(tmp_path, caplog):
    opts = options(tmp_path, 6, checkpoint_every=2, logger="csv")  # 16 latents, batches of 8: 3 epochs
    bad = tmp_path / "lat" / "1" / f"{5:013d}.npy"
    latent = np.load(bad)
    latent[2, 7] = np.nan
    latent[0, 3] = np.inf
    np.save(bad, latent)
    with caplog.at_level(logging.WARNING, logger="preencode"):
        last = train(opts)
    saved = _checkpoints(tmp_path / "run")
    assert set(saved) == {"last.ckpt", "step_00000002.ckpt", "step_00000004.ckpt", "step_00000006.ckpt"}
    assert all(_all_finite(state) for state in saved.values())
    assert last.is_file() and np.isfinite(_metric(tmp_path / "run", "train/loss")).all()
    assert _metric(tmp_path / "run", "train/non_finite_samples")[-1] == 3  # once per epoch, counted each time
    first = [r for r in caplog.records if "not all finite" in r.getMessage()]
    assert len(first) == 1 and str(bad) in first[0].getMessage()  # logged once, not per sample
    assert "3 sample(s) with non-finite latents were skipped" in caplog.text


def test_non_finite_samples_are_dropped_not_replaced_and_logged_once_per_n(caplog):
    guard = NonFiniteSamples(log_every=3)
    x0 = torch.arange(4 * 2 * 3, dtype=torch.float32).reshape(4, 2, 3)
    x0[1, 0, 0] = float("nan")
    x0[3, 1, 2] = float("-inf")
    mask = torch.ones(4, 3, dtype=torch.bool)
    infos = [{"latent_filename": f"{i}.npy"} for i in range(4)]
    with caplog.at_level(logging.WARNING, logger="preencode"):
        kept = guard.keep_finite(x0, mask, infos)
        assert kept is not None
        assert torch.equal(kept[0], x0[[0, 2]]) and kept[1].shape == (2, 3)
        assert [i["latent_filename"] for i in kept[2]] == ["0.npy", "2.npy"]
        assert guard.keep_finite(x0[[1]], mask[[1]], infos[1:2]) is None  # none left: no batch, nothing in its place
        finite = guard.keep_finite(x0[[0, 2]], mask[[0, 2]], [infos[0], infos[2]])
        assert finite is not None and finite[0] is not None and guard.count == 3
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and "Skipping 1.npy" in messages[0] and messages[1].startswith("3 samples")


def _nan_weights(path: Path) -> Path:
    weights = model_weights(path)
    state = torch.load(weights, weights_only=True)["state_dict"]
    state["model.model.transformer.project_in.weight"][0, 0] = float("nan")
    torch.save({"state_dict": state}, weights)
    return weights


def test_a_non_finite_loss_stops_training_with_one_line_and_saves_nothing(tmp_path, capsys):
    opts = options(tmp_path, 4, checkpoint_every=1, pretrained_ckpt_path=str(_nan_weights(tmp_path / "w.ckpt")))
    argv = ["train", "--model-config", opts.model_config, "--dataset-config", opts.dataset_config, "--save-dir",
            opts.save_dir, "--batch-size", "8", "--num-workers", "0", "--max-steps", "4", "--logger", "none",
            "--pretrained-ckpt-path", str(opts.pretrained_ckpt_path), "--checkpoint-every", "1"]
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if "error:" in line]
    assert line.startswith("preencode train: error: Training stopped at step 0: the loss is not finite (nan)")
    assert "--gradient-clip-val" in line
    assert not list((tmp_path / "run").rglob("*.ckpt"))


class _Poison(L.Callback):
    """Makes one weight NaN after the optimiser step of ``step`` (a finite loss with overflowing gradients does
    this), before the checkpoint of that step is saved; ModelCheckpoint runs after the other callbacks."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            with torch.no_grad():
                module.diffusion.model.model.transformer.project_in.weight[0, 0] = float("nan")


def test_a_checkpoint_with_non_finite_weights_is_never_saved(tmp_path):
    opts = options(tmp_path, 4, checkpoint_every=1)
    weight = r"diffusion\.model\.model\.transformer\.project_in\.weight"
    with pytest.raises(TrainingDiverged, match=rf"step 2: the weights are no longer finite \({weight} hold") as err:
        train(opts, callbacks=[_Poison(2)])
    first = tmp_path / "run" / "checkpoints" / "step_00000001.ckpt"
    assert f"--ckpt-path {first}" in str(err.value)  # the last finite one
    saved = _checkpoints(tmp_path / "run")
    assert list(saved) == ["step_00000001.ckpt"] and _all_finite(saved["step_00000001.ckpt"])


def test_the_final_checkpoint_is_not_saved_with_non_finite_weights(tmp_path):
    class PoisonAtEnd(L.Callback):
        def on_train_end(self, trainer, module):
            with torch.no_grad():
                module.diffusion_ema.ema_model.model.transformer.project_in.weight[0, 0] = float("inf")

    with pytest.raises(TrainingDiverged, match=r"diffusion_ema\.ema_model\.model\.transformer\.project_in\.weight"):
        train(options(tmp_path, 1, checkpoint_every=100), callbacks=[PoisonAtEnd()])
    assert not list((tmp_path / "run").rglob("*.ckpt"))


def test_a_dataset_with_no_usable_sample_stops_with_one_line(tmp_path, monkeypatch, capsys):
    """Without the stop, a dataset of NaN latents "trained" to --max-steps with exit 0, every step skipped."""
    from preencode.train import module

    monkeypatch.setattr(module, "MAX_EMPTY_BATCHES", 5)
    opts = options(tmp_path, 10)
    for path in (tmp_path / "lat").rglob("*.npy"):
        values = np.load(path)
        values[:] = np.nan
        np.save(path, values)
    argv = ["train", "--model-config", opts.model_config, "--dataset-config", opts.dataset_config,
            "--save-dir", opts.save_dir, "--max-steps", "10", "--batch-size", "8", "--num-workers", "0",
            "--logger", "none"]
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert "No usable sample in 5 batches in a row" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()
