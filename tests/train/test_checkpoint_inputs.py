"""`train --ckpt-path` and `unwrap --ckpt-path` of something that is not a training checkpoint: one line, exit 2.

Old code: `unwrap` of a text file ended in a KeyError traceback (exit 1) from torch's weights-only unpickler, and
of random bytes in advice to load it with ``weights_only=False`` (which can run code); `train --ckpt-path` of a
text file crashed the same way, and of a model's weights in Lightning's KeyError on the missing training state.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from preencode.cli import main as cli
from tests.train.conftest import model_weights
from tests.train.test_training import options

pytest.importorskip("transformers")


def _junk(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.ckpt").write_text("hello\n")
    (folder / "random.ckpt").write_bytes(bytes(range(256)) * 8)
    (folder / "cut.ckpt").write_bytes(b"PK\x03\x04" + b"\0" * 40)
    torch.save({"where": Path("x")}, folder / "objects.ckpt")
    return sorted(folder.iterdir())


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    return lines[0]


def test_unwrap_of_a_non_checkpoint_is_one_line_exit_2(tmp_path, capsys):
    for path in _junk(tmp_path / "junk"):
        assert cli(["unwrap", "--ckpt-path", str(path), "--output", str(tmp_path / "out")]) == 2, path
        line = _error_line(capsys)
        assert str(path) in line and ("is not a PyTorch checkpoint" in line or "holds Python objects" in line)
        assert "weights_only` set to `False`" not in line
    assert not (tmp_path / "out.ckpt").exists()


def _train_argv(tmp_path: Path, ckpt: Path) -> list[str]:
    opts = options(tmp_path, 2)
    return ["train", "--model-config", opts.model_config, "--dataset-config", opts.dataset_config, "--save-dir",
            opts.save_dir, "--num-workers", "0", "--max-steps", "2", "--logger", "none", "--ckpt-path", str(ckpt)]


def test_train_ckpt_path_of_a_non_checkpoint_is_one_line_exit_2(tmp_path, capsys):
    for path in _junk(tmp_path / "junk")[:2]:  # a text file, random bytes
        assert cli(_train_argv(tmp_path, path)) == 2
        line = _error_line(capsys)
        assert f"{path} is not a PyTorch checkpoint" in line
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_train_ckpt_path_of_model_weights_points_at_pretrained_ckpt_path(tmp_path, capsys):
    weights = model_weights(tmp_path / "model.ckpt")
    assert cli(_train_argv(tmp_path, weights)) == 2
    line = _error_line(capsys)
    assert "holds model weights but no training state" in line and "--pretrained-ckpt-path" in line
