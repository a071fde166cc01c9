"""NaN or Inf never reaches disk: such a sample is a failure record, and broken weights stop the run early.

Old code: a checkpoint with NaN weights wrote all-NaN latents and exited 0.
"""

from __future__ import annotations

import json

import pytest
import torch

from preencode.cli import main
from tests.encode_setup import encode_args, read_output
from tests.helpers import save_ckpt


def _failures(out):
    return [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("extra", [[], ["--full-length"]])
def test_nan_weights_stop_early_with_failures_and_no_file(model_files, clips, tmp_path, capsys, extra):
    config, _, model = model_files
    with torch.no_grad():
        model.encoder.layers[0].weight_v.view(-1)[0] = float("nan")
    broken = save_ckpt(model, tmp_path / "nan.ckpt")
    out = tmp_path / "out"
    assert main(encode_args((config, broken, None), clips[1], out, "--batch-size", "1", *extra)) == 3
    err = capsys.readouterr().err
    assert "Stopped early" in err and str(broken) in err and "4 input(s) were not tried" in err
    assert "Traceback" not in err
    assert not list(out.rglob("*.npy"))
    failures = _failures(out)
    assert len(failures) == 3
    assert all(f["stage"] == "encode" and f["reason"] == "non-finite latents" for f in failures)


def test_a_non_finite_sample_in_a_mixed_batch_is_a_failure_the_rest_is_written(model_files, clips, tmp_path,
                                                                               monkeypatch, capsys):
    """Checked per sample: the encoder never mixes the samples of a batch, so the finite ones are sound."""
    from preencode.encode.engine import module

    plain = module.bottleneck_outputs

    def poisoned(model, settings, pre, indices):  # inputs 1 and 4 encode to NaN / Inf
        latents, std = plain(model, settings, pre, indices)
        for row, index in enumerate(indices):
            if index in (1, 4):
                latents[row, :, 3] = float("inf") if index == 4 else float("nan")
        return latents, std

    monkeypatch.setattr(module, "bottleneck_outputs", poisoned)
    out = tmp_path / "out"
    args = encode_args(model_files, clips[1], out, "--batch-size", "3")
    assert main(args) == 3
    assert sorted(read_output(out)) == [f"{i:013d}" for i in (0, 2, 3, 5, 6)]
    assert sorted(f["index"] for f in _failures(out)) == [1, 4]
    assert "2 input(s) failed" in capsys.readouterr().err
    monkeypatch.undo()
    assert main(args) == 0  # failures are retried by a re-run
    assert len(read_output(out)) == 7 and _failures(out) == []
