"""A ``--store-std`` output's suggested scale gives training data of std about 1, and training says when the
scale does not fit (once, naming the scale that does)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import lightning as L
import pytest

from preencode.cli import main
from preencode.demo.__main__ import encode_argv
from preencode.demo.finetune import demo_model_config, write_dataset_config
from preencode.train.data_scale import HIGH, LOW, advice
from preencode.train.run import TrainOptions, train
from tests.train.conftest import ROOT, write_json


class StdData(L.Callback):
    """Records ``train/std_data`` of every batch."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self.values.append(float(trainer.callback_metrics["train/std_data"]))


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> tuple[Path, dict[str, Any]]:
    """The demo audio encoded with ``--store-std`` and ``inspect --json``'s report of it."""
    root = tmp_path_factory.mktemp("store_std")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_demo_audio.py"), str(root / "data" / "audio")],
                   check=True, capture_output=True, timeout=120)
    out = root / "latents"
    assert main([*encode_argv(root / "data", out), "--store-std", "--progress", "none"], command="encode") == 0
    report = root / "inspect.json"
    proc = subprocess.run([sys.executable, "-m", "preencode", "inspect", str(out), "--json"], capture_output=True,
                          text=True, check=True, timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    report.write_text(proc.stdout)
    return out, json.loads(proc.stdout)


def train_with_scale(latents: Path, folder: Path, scale: float) -> list[float]:
    """Four steps of the demo model over ``latents`` with the pretransform's ``scale``; std_data of each batch."""
    config = demo_model_config()
    config["model"]["pretransform"]["scale"] = scale
    model_config = write_json(folder / "model_config.json", config)
    data = write_dataset_config(latents, folder / "dataset.json", crop_frames=128)
    recorder = StdData()
    train(TrainOptions(model_config=str(model_config), dataset_config=str(data), save_dir=str(folder / "run"),
                       batch_size=4, num_workers=0, max_steps=4, checkpoint_every=100, logger="none", seed=0,
                       progress="none"), callbacks=[recorder])
    return recorder.values


def scale_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "preencode.train.data_scale"]


def test_store_std_suggested_scale_gives_first_batches_std_data_near_one(stored, tmp_path, caplog):
    latents, report = stored
    assert report["stored_std_rms"] is not None  # the posterior std is counted
    suggested = report["suggested_scale"]
    with caplog.at_level(logging.INFO):
        values = train_with_scale(latents, tmp_path, suggested)
    assert len(values) == 4 and all(LOW <= v <= HIGH for v in values), values
    assert scale_warnings(caplog) == []


def test_a_scale_that_ignores_the_stored_std_is_warned_about_once_with_the_scale_to_use(stored, tmp_path, caplog):
    latents, report = stored
    means_only = report["statistics"]["overall_std"]  # what inspect suggested before counting the stored std
    with caplog.at_level(logging.INFO):
        values = train_with_scale(latents, tmp_path, means_only)
    assert all(v > HIGH for v in values), values
    (warning,) = scale_warnings(caplog)
    named = float(warning.split('"scale": ')[1].split()[0])
    assert named == pytest.approx(report["suggested_scale"], rel=0.15), (warning, report["suggested_scale"])
    assert f"scale {means_only:.4g}" in warning and "model.pretransform" in warning


@pytest.mark.parametrize(("std", "scale", "expected"), [
    (1.0, 1.0, None), (0.8, 2.0, None), (1.25, 0.5, None),
    (0.5, 1.0, '"scale": 0.5 '), (3.9, 0.2, '"scale": 0.78 '), (0.1, None, "no pretransform"),
])
def test_advice_names_the_scale_that_brings_std_data_to_one(std, scale, expected):
    text = advice(std, scale, batches=4)
    if expected is None:
        assert text is None
    else:
        assert text is not None and expected in text and "first 4 batch(es)" in text
