"""The top-level command: dispatch, usage errors, one-line user errors and --debug."""

import subprocess
import sys
from pathlib import Path

import pytest

from preencode.cli import main
from preencode.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def test_help_and_unknown_command(capsys):
    assert main(["--help"]) == 0
    assert "encode" in capsys.readouterr().out
    assert main(["encdoe"]) == 2
    assert "did you mean 'encode'" in capsys.readouterr().err


def test_user_error_is_one_line_without_traceback_and_debug_shows_it(tmp_path, capsys):
    argv = ["encode", "--model-config", str(tmp_path / "none.json"), "--ckpt-path", "x.ckpt",
            "--dataset-config", "d.json", "--output-path", str(tmp_path / "o")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: Model config not found") and "Check the path" in err
    with pytest.raises(UserError):
        main(["--debug", *argv])


def test_pre_encode_script_has_the_spec_flags():
    out = subprocess.run([sys.executable, str(ROOT / "pre_encode.py"), "--help"], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    for flag in ("--model-config", "--ckpt-path", "--model-half", "--dataset-config", "--output-path",
                 "--batch-size", "--sample-size", "--is-discrete", "--num-nodes", "--num-workers", "--strategy",
                 "--limit-batches", "--shuffle"):
        assert flag in out
    assert "1320960" in out


def test_missing_required_flag_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["encode", "--output-path", "x"])
    assert exc.value.code == 2
