"""Training's progress: step/max-steps, loss, steps/s and ETA, as log lines every tenth of the run."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
import torch

from preencode.train import progress as progress_module
from preencode.train.progress import TrainingProgress, clock, log_interval


def fake_trainer(max_steps: int, rank_zero: bool = True) -> SimpleNamespace:
    return SimpleNamespace(global_step=0, max_steps=max_steps, is_global_zero=rank_zero, callback_metrics={})


def run_steps(callback: TrainingProgress, trainer: SimpleNamespace, batches: int, accumulate: int = 1,
              seconds_per_batch: float = 0.5, monkeypatch=None) -> None:
    now = [100.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: now[0])
    callback.on_train_start(trainer, None)  # type: ignore[arg-type]
    for batch in range(1, batches + 1):
        now[0] += seconds_per_batch
        trainer.global_step = batch // accumulate
        trainer.callback_metrics = {"train/loss": torch.tensor(1.0 / batch)}
        callback.on_train_batch_end(trainer, None, None, object(), batch - 1)  # type: ignore[arg-type]
    callback.on_train_end(trainer, None)  # type: ignore[arg-type]


def lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "preencode.train.progress"]


def test_log_lines_at_the_first_step_every_tenth_and_the_last(caplog, monkeypatch):
    with caplog.at_level(logging.INFO, logger="preencode.train.progress"):
        run_steps(TrainingProgress("log"), fake_trainer(40), 40, monkeypatch=monkeypatch)
    shown = lines(caplog)
    assert [line.split(" |")[0] for line in shown] == ["step 1/40"] + [f"step {n}/40" for n in range(4, 41, 4)]
    assert shown[0] == "step 1/40 | loss 1 | ? steps/s | ETA ?"
    assert shown[-1] == "step 40/40 | loss 0.025 | 2.00 steps/s | ETA 00:00:00"
    assert shown[1] == "step 4/40 | loss 0.25 | 2.00 steps/s | ETA 00:00:18"


def test_gradient_accumulation_counts_optimiser_steps_once(caplog, monkeypatch):
    with caplog.at_level(logging.INFO, logger="preencode.train.progress"):
        run_steps(TrainingProgress("log", every=1), fake_trainer(5), 10, accumulate=2, monkeypatch=monkeypatch)
    assert [line.split(" |")[0] for line in lines(caplog)] == [f"step {n}/5" for n in range(1, 6)]


@pytest.mark.parametrize("mode", ["none", "log"])
def test_nothing_from_other_ranks_or_with_none(caplog, monkeypatch, mode):
    with caplog.at_level(logging.INFO, logger="preencode.train.progress"):
        run_steps(TrainingProgress(mode), fake_trainer(10, rank_zero=mode == "none"), 10, monkeypatch=monkeypatch)
    assert lines(caplog) == []


def test_unbounded_run_has_no_eta(monkeypatch, caplog):
    with caplog.at_level(logging.INFO, logger="preencode.train.progress"):
        run_steps(TrainingProgress("log", every=2), fake_trainer(-1), 4, monkeypatch=monkeypatch)
    assert lines(caplog)[-1] == "step 4 | loss 0.25 | 2.00 steps/s"


def test_interval_and_clock():
    assert [log_interval(n) for n in (None, -1, 5, 40, 200, 10**6)] == [100, 100, 1, 4, 20, 1000]
    assert clock(0) == "00:00:00" and clock(3725.4) == "01:02:05" and clock(float("inf")) == "?"
    with pytest.raises(ValueError, match="valid: auto, bar, log, none"):
        TrainingProgress("fancy")


def test_bar_shows_steps_loss_rate_and_eta_on_one_line(capsys, monkeypatch):
    run_steps(TrainingProgress("bar"), fake_trainer(40), 40, monkeypatch=monkeypatch)
    err = capsys.readouterr().err
    last = err.replace("\r", "\n").strip().splitlines()[-1]
    assert last.startswith("training: 40/40 steps |") and last.endswith("loss 0.025 | 2.00 steps/s | ETA 00:00:00")
