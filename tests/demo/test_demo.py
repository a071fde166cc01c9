"""``make demo`` as a user runs it, in fresh processes: the whole demo (encode, inspect, verify and the short
fine-tune, unwrap and generate) with each line of output once and none of the known noise, the summary's
time against the wall clock around the process, and a resumed demo with nothing left to do."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from preencode.demo.__main__ import encode_argv

ROOT = Path(__file__).resolve().parents[2]
ENV = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())}
#: What must never reach a user's terminal (issue 13): Lightning's banner and tips, its own "INFO:" copies,
#: the worker-count and zero-length loader warnings, warnings about our deliberate choices, tracebacks.
NOISE = ("GPU available", "TPU available", "HPU available", "Tip:", "litlogger", "INFO:", "worker processes in total",
         "does not have many workers", "Total length of `DataLoader`", "LeafSpec", "custom batch sampler",
         "Couldn't infer the batch indices", "Warning:", "Traceback",
         # training: Lightning's warnings about our choices, its epoch bar, the checkpoint default notice
         "validation_step", "eval mode", "weights_only", "Epoch ", "v_num", "it/s", "`Trainer.fit` stopped",
         # the demo model's scale fits its latents: no warning about std_data
         "far from 1")


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("demo") / "demo_data"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_demo_audio.py"), str(data / "audio")], check=True,
                   capture_output=True, env=ENV, timeout=120)
    return data


@pytest.fixture(scope="module")
def fresh_demo(demo_data, tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path, Path]:
    """`make demo` on a fresh checkout: the output and fine-tune folders do not exist yet."""
    root = tmp_path_factory.mktemp("fresh")
    out, finetuned = root / "demo_output", root / "demo_finetune"
    proc, _ = run(["-m", "preencode.demo", str(demo_data), str(out), str(finetuned)])
    return proc, out, finetuned


def run(argv: list[str]) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=600)
    return proc, time.monotonic() - start


def assert_clean(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    twice = [line for line, count in Counter(lines).items() if count > 1]
    assert not twice, f"printed more than once: {twice}"
    noise = [line for line in lines if any(n in line for n in NOISE)]
    assert not noise, f"noise on the console: {noise}"


def test_whole_demo_with_its_fine_tune_prints_each_line_once_and_no_warning(fresh_demo):
    proc, out, finetuned = fresh_demo
    assert_clean(proc)
    err = proc.stderr
    assert "Done: 4 encoded" in err and "OK: 4 latents" in proc.stdout and "suggested scale" in proc.stdout
    # training's own progress: step/max-steps, loss, steps/s and ETA, from the first step to the last
    steps = [line for line in err.splitlines() if line.startswith("step ")]
    assert steps[0].startswith("step 1/40 | loss ") and steps[-1].startswith("step 40/40 | loss ")
    assert all(" steps/s | ETA " in line for line in steps) and len(steps) <= 12
    assert f"Saved {finetuned}/run/checkpoints/last.ckpt at step 40" in err
    assert len(list(out.glob("0/*.npy"))) == 4 and (finetuned / "generated.wav").is_file()
    assert "Next, on your own data" in proc.stdout


def test_demo_encode_prints_each_line_once_and_reports_its_wall_time_then_resumes_with_nothing_to_do(demo_data,
                                                                                                      tmp_path,
                                                                                                      fresh_demo):
    out, summary_json = tmp_path / "demo_output", tmp_path / "summary.json"
    proc, wall = run(["-m", "preencode", "encode", *encode_argv(demo_data, out), "--summary-json", str(summary_json)])
    assert_clean(proc)
    summary = json.loads(summary_json.read_text())
    assert summary["encoded"] == 4
    assert summary["wall_seconds"] == pytest.approx(summary["startup_seconds"] + summary["encoding_seconds"])
    assert summary["startup_seconds"] < summary["first_batch_seconds"] < summary["wall_seconds"]
    # From the process's start: the time reported is the time the user waited (exit included, within 10 %).
    assert abs(summary["wall_seconds"] - wall) <= 0.1 * wall, (summary["wall_seconds"], wall)
    assert f"Time: {summary['wall_seconds']:.1f} s = start-up" in proc.stderr

    finetuned = fresh_demo[2]  # `make demo` again: nothing left to encode, the fine-tune not repeated
    proc, _ = run(["-m", "preencode.demo", str(demo_data), str(out), str(finetuned)])
    assert_clean(proc)
    assert "Nothing left to encode: all 4 inputs" in proc.stderr and "Time: " in proc.stderr
    assert "OK: 4 latents" in proc.stdout and "Next, on your own data" in proc.stdout
