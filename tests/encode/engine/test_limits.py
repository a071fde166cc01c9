"""Limits that protect the machine: a window too large for memory is refused up front, loader workers are
capped at the cores.

Old code: ``--sample-size 1024000000`` was accepted and exhausted memory; ``--num-workers`` above the core
count started that many processes (and torch warned twice).
"""

from __future__ import annotations

import json

import pytest

from preencode.cli import main
from preencode.encode.engine import limits
from preencode.models.config import load_autoencoder_config
from tests.encode_setup import encode_args
from tests.helpers import SPEC

SAO_WINDOW = 1320960


@pytest.mark.skipif(not (SPEC / "stable_audio_open_vae_config.json").exists(), reason="spec files not available")
def test_estimate_matches_the_measured_peak_of_stable_audio_opens_vae():
    """benchmarks/sao_window_memory.py, 30 s window, batch 1: peak RSS minus the model 4.8 GB (plain encoder)
    and 1.3 GB (fast CPU encoder). The estimate must not be below, nor far above."""
    config = load_autoencoder_config(SPEC / "stable_audio_open_vae_config.json")
    plain = limits.encoder_peak_bytes(config, SAO_WINDOW)
    fast = limits.encoder_peak_bytes(config, SAO_WINDOW, chunk=limits.DEFAULT_CHUNK)
    assert 4.8e9 <= plain <= 1.25 * 4.8e9
    assert 1.3e9 <= fast <= 1.25 * 1.3e9
    assert limits.encoder_peak_bytes(config, SAO_WINDOW, batch=4) == 4 * plain


def test_a_window_too_large_for_memory_is_refused_with_the_estimate(model_files, clips, tmp_path, monkeypatch,
                                                                    capsys):
    monkeypatch.setattr(limits, "available_memory", lambda on_gpu: (1 << 20, "RAM available"))
    assert main(encode_args(model_files, clips[1], tmp_path / "out", "--sample-size", "65536")) == 2
    err = capsys.readouterr().err
    assert "--sample-size 65536 with --batch-size 1 would need about" in err and "of RAM available" in err
    assert "Use a --sample-size of about" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_more_workers_than_cores_are_capped_with_one_notice(model_files, clips, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(limits, "usable_cores", lambda: 1)
    out = tmp_path / "out"
    assert main(encode_args(model_files, clips[1], out, "--limit-batches", "1", "--num-workers", "3")) == 0
    notices = [r.getMessage() for r in caplog.records if "--num-workers" in r.getMessage()]
    assert notices == ["--num-workers 3 is more than the 1 CPU core(s) this process may use; using 1 loader "
                       "worker(s)."]
    assert json.loads((out / "details.json").read_text())["args"]["num_workers"] == 1
