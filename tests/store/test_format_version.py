"""The details file's format version is checked when it is read: a newer one is refused with one line
naming both versions by encode (resume), verify, inspect and train; the reference's (no version) is read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from preencode.cli import main
from preencode.data.config import parse_dataset_config
from preencode.data.loaders import build_pre_encoded_dataset
from preencode.errors import UserError
from preencode.store.details import (
    FORMAT_VERSION,
    READABLE_FORMAT_VERSIONS,
    check_compatible,
    read_details,
)
from preencode.store.names import DETAILS
from tests.encode_setup import encode_args
from tests.store.trees import details, make_items, write_tree

NEWER = FORMAT_VERSION + 1
ROOT = Path(__file__).resolve().parents[2]


def _set_version(root: Path, version) -> None:
    data = json.loads((root / DETAILS).read_text())
    data["format_version"] = version
    (root / DETAILS).write_text(json.dumps(data, indent=2))


def _one_line_naming_both_versions(text: str) -> None:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert f"format_version {NEWER}" in lines[0] and f"format_version {FORMAT_VERSION}" in lines[0], text
    assert "Traceback" not in text


@pytest.fixture
def newer_tree(tmp_path, monkeypatch):
    monkeypatch.setenv("PREENCODE_CACHE_DIR", str(tmp_path / "cache"))
    root = write_tree(tmp_path / "out", make_items())
    _set_version(root, NEWER)
    return root


def test_read_details_refuses_a_newer_format_and_reads_the_listed_ones(tmp_path):
    assert FORMAT_VERSION in READABLE_FORMAT_VERSIONS
    root = write_tree(tmp_path / "out", make_items())
    assert read_details(root).format_version == FORMAT_VERSION
    _set_version(root, NEWER)
    with pytest.raises(UserError, match=f"format_version {NEWER}, newer than .* reads \\(format_version 1\\)"):
        read_details(root)
    _set_version(root, 0)  # older than any format this version still reads
    with pytest.raises(UserError, match="no longer reads"):
        read_details(root)
    _set_version(root, "1")
    assert any("format_version must be an integer" in p for p in read_details(root).problems)


def test_reference_details_are_read_but_not_resumed(tmp_path):
    reference = ROOT / "tests" / "data" / "fixtures" / "reference_output"
    found = read_details(reference)
    assert found.is_reference and found.format_version is None and found.model_config is None
    assert not found.problems and found.warnings  # its config path does not exist here
    with pytest.raises(UserError, match="holds output of another tool"):
        check_compatible(reference, details())


@pytest.mark.parametrize("tool", ["verify", "inspect"])
def test_verify_and_inspect_refuse_a_newer_format(newer_tree, capsys, tool):
    assert main([tool, str(newer_tree)]) == 2
    _one_line_naming_both_versions(capsys.readouterr().err)


def test_training_refuses_a_newer_format(newer_tree, tmp_path, capsys):
    config = parse_dataset_config({"dataset_type": "pre_encoded", "datasets": [{"id": "x", "path": str(newer_tree)}]})
    with pytest.raises(UserError) as err:
        build_pre_encoded_dataset(config)
    _one_line_naming_both_versions(str(err.value))
    dataset_config = tmp_path / "data.json"
    dataset_config.write_text(json.dumps({"dataset_type": "pre_encoded", "latent_crop_length": 16,
                                          "datasets": [{"id": "x", "path": str(newer_tree)}]}))
    argv = ["train", "--model-config", str(ROOT / "configs" / "tiny_sao.json"), "--dataset-config",
            str(dataset_config), "--save-dir", str(tmp_path / "run"), "--max-steps", "1", "--logger", "none"]
    assert main(argv) == 2
    _one_line_naming_both_versions(capsys.readouterr().err)
    assert not (tmp_path / "run").exists()


def test_encode_refuses_to_resume_a_newer_format(model_files, clips, tmp_path, capsys):
    out = tmp_path / "out"
    argv = encode_args(model_files, clips[1], out)
    assert main(argv) == 0
    _set_version(out, NEWER)
    before = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    capsys.readouterr()
    assert main(argv) == 2
    _one_line_naming_both_versions(capsys.readouterr().err)
    assert {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} == before
