"""preencode verify: a clean tree passes; each injected fault is reported with its path."""

import io
import json
import tarfile

import numpy as np
import pytest

from preencode.cli import main as cli
from preencode.store.sample import npy_bytes
from preencode.tools.verify import verify_tree
from tests.helpers import tiny_config, write_json
from tests.store.trees import details, make_items, write_tree


def run(capsys, root):
    code = cli(["verify", str(root)])
    return code, capsys.readouterr().out


@pytest.mark.parametrize("shards", [False, True])
def test_clean_tree_exits_zero_with_one_line(tmp_path, capsys, shards):
    write_tree(tmp_path, make_items(), shards=shards)
    code, out = run(capsys, tmp_path)
    assert code == 0, out
    assert out.strip().splitlines() == [f"OK: 5 latents in {tmp_path} verified" + (" (2 tar shards)" if shards else "")
                                        + ", no problems."]


def _truncated_npy(root):
    path = root / "0" / "0000000000001.npy"
    path.write_bytes(path.read_bytes()[:-17])
    return path, "truncated or corrupt"


def _orphan_json(root):
    path = root / "1" / "0010000000007.json"
    path.write_text(json.dumps({"padding_mask": [1] * 20}))
    return root / "1" / "0010000000007", "orphan .json without its .npy"


def _orphan_npy(root):
    (root / "0" / "0000000000002.json").unlink()
    return root / "0" / "0000000000002.npy", "orphan .npy without its .json"


def _duplicate_id(root):
    for suffix in (".npy", ".json"):
        (root / "1" / f"0000000000000{suffix}").write_bytes((root / "0" / f"0000000000000{suffix}").read_bytes())
    return root / "1" / "0000000000000.npy", "duplicate id 0000000000000"


def _nan_latent(root):
    latent = np.load(root / "0" / "0000000000000.npy")
    latent[1, 3] = np.nan
    np.save(root / "0" / "0000000000000.npy", latent)
    return root / "0" / "0000000000000.npy", "1 non-finite values"


def _temporary(root):
    path = root / "0" / ".0000000000005.npy.tmp"
    path.write_bytes(b"partial")
    return path, "leftover temporary"


def _mask_length(root):
    path = root / "0" / "0000000000000.json"
    meta = json.loads(path.read_text())
    meta["padding_mask"] = meta["padding_mask"][:-1]
    path.write_text(json.dumps(meta))
    return path, "padding_mask must be 20 values"


def _id_mismatch(root):
    path = root / "0" / "0000000000000.json"
    meta = json.loads(path.read_text())
    meta["id"] = "0000000000099"
    path.write_text(json.dumps(meta))
    return path, "but the file is named 0000000000000"


def _wrong_channels(root):
    np.save(root / "1" / "0010000000000.npy", np.zeros((3, 20), dtype=np.float32))
    return root / "1" / "0010000000000.npy", "3 channels, expected latent_dim 4 (from details.json latent section)"


def _wrong_dtype(root):
    np.save(root / "1" / "0010000000000.npy", np.zeros((4, 20), dtype=np.float64))
    return root / "1" / "0010000000000.npy", "dtype float64, expected float32 (from details.json"


def _bad_name(root):
    for suffix in (".npy", ".json"):
        (root / "0" / f"0000000000001{suffix}").rename(root / "0" / f"latent1{suffix}")
    return root / "0" / "latent1.npy", "is not a 13-digit id"


def _bad_std(root):
    with open(root / "0" / "0000000000000.std.npz", "wb") as f:
        np.savez(f, std=np.ones((4, 19)))
    return root / "0" / "0000000000000.std.npz", "std shape [4, 19] differs"


def _bad_failures_log(root):
    (root / "failures.jsonl").write_text('{"path": "/a", "stage": "load"}\n{not json\n')
    return root / "failures.jsonl", ":2: not valid JSON"


FAULTS = [_truncated_npy, _orphan_json, _orphan_npy, _duplicate_id, _nan_latent, _temporary, _mask_length,
          _id_mismatch, _wrong_channels, _wrong_dtype, _bad_name, _bad_std, _bad_failures_log]


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.__name__.strip("_"))
def test_each_injected_fault_is_reported_with_its_path(tmp_path, capsys, fault):
    write_tree(tmp_path, make_items())
    where, what = fault(tmp_path)
    code, out = run(capsys, tmp_path)
    assert code == 1, out
    problems = [line for line in out.splitlines() if not line.startswith(("warning:", "FAILED:"))]
    assert len(problems) == 1, out
    assert problems[0].startswith(str(where)) and what in problems[0], out
    assert out.splitlines()[-1].startswith("FAILED: 1 problem in")


def test_all_faults_at_once_are_all_listed(tmp_path):
    write_tree(tmp_path, make_items())
    faults = [_truncated_npy, _orphan_json, _duplicate_id, _nan_latent, _temporary]
    for fault in faults:
        fault(tmp_path)
    assert len(verify_tree(tmp_path).problems) == len(faults)


def _shard_with(root, members):
    with tarfile.open(root / "0" / "extra.tar", "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return root / "0" / "extra.tar"


def test_shard_members_are_checked_like_loose_files(tmp_path):
    write_tree(tmp_path, make_items())
    bad = np.zeros((4, 20), dtype=np.float32)
    bad[0, 0] = np.inf
    meta = json.dumps({"padding_mask": [1] * 20, "id": "0000000000000"}).encode()
    shard = _shard_with(tmp_path, [("0000000000000.npy", npy_bytes(bad)), ("0000000000000.json", meta),
                                   ("0000000000077.json", meta)])
    problems = verify_tree(tmp_path).problems
    assert any(p.startswith(f"{shard}:0000000000000.npy") and "duplicate id" in p for p in problems)
    assert any(p.startswith(f"{shard}:0000000000000.npy") and "non-finite" in p for p in problems)
    assert any(p.startswith(f"{shard}:0000000000077") and "orphan .json" in p for p in problems)
    assert len(problems) == 3, problems


def test_truncated_shard_is_reported(tmp_path):
    write_tree(tmp_path, make_items(), shards=True)
    shard = tmp_path / "1" / "shard-000000.tar"
    shard.write_bytes(shard.read_bytes()[:700])
    problems = verify_tree(tmp_path).problems
    assert problems and all(str(shard) in p for p in problems), problems


def test_reference_tree_without_latent_section_checks_consistency(tmp_path, capsys):
    ref = {"model_config": "/gone/vae.json", "dataset_config": "ds.json", "sample_size": 160, "args": {}}
    write_tree(tmp_path, make_items(), details_json=ref)
    for meta_path in tmp_path.glob("*/*.json"):
        meta = json.loads(meta_path.read_text())
        del meta["sample_rate"], meta["dataset_id"], meta["input_fingerprint"]  # the reference writes none
        meta_path.write_text(json.dumps(meta))
    result = verify_tree(tmp_path)
    assert result.problems == [] and result.ok  # a moved reference output is still checked, not failed
    assert any("the model config it names (/gone/vae.json) is not readable" in w for w in result.warnings)
    assert any("written by stable-audio-tools" in w for w in result.warnings)
    np.save(tmp_path / "1" / "0010000000001.npy", np.zeros((5, 20), dtype=np.float32))
    assert any("5 channels, but" in p for p in verify_tree(tmp_path).problems)


def test_model_config_option_supplies_what_reference_details_lack(tmp_path, capsys):
    config = write_json(tmp_path / "vae.json", tiny_config(latent_dim=4))
    ref = {"model_config": "/gone/vae.json", "dataset_config": "ds.json", "sample_size": 160, "args": {}}
    write_tree(tmp_path / "out", make_items(), details_json=ref)
    assert cli(["verify", str(tmp_path / "out"), "--model-config", str(config)]) == 0
    np.save(tmp_path / "out" / "1" / "0010000000001.npy", np.zeros((5, 20), dtype=np.float32))
    assert cli(["verify", str(tmp_path / "out"), "--model-config", str(config)]) == 1
    assert f"5 channels, expected latent_dim 4 (from {config}" in capsys.readouterr().out


def test_missing_folder_is_a_usage_error(tmp_path, capsys):
    assert cli(["verify", str(tmp_path / "missing")]) == 2
    assert "Output folder not found" in capsys.readouterr().err


def test_empty_folder_is_a_problem(tmp_path, capsys):
    (tmp_path / "details.json").write_text(json.dumps(details()))
    code, out = run(capsys, tmp_path)
    assert code == 1 and "no rank folders" in out


def test_an_unfinished_output_gets_the_exact_command_that_finishes_it(model_files, clips, tmp_path, capsys):
    import shlex

    from tests.encode_setup import encode_args

    out = tmp_path / "out"
    first = encode_args(model_files, clips[1], out, "--batch-size", "2", "--posterior", "mean", "--no-skip-padding",
                        "--limit-batches", "1", "--overwrite", "--seed", "3")
    assert cli(first) == 0
    code, report = run(capsys, out)
    assert code == 1
    command = report.split("to finish them, run: ", 1)[1].splitlines()[0]
    words = shlex.split(command)
    assert words[:2] == ["preencode", "encode"]
    for flag in ("--no-skip-padding", "--posterior", "--seed", "--batch-size", "--compile"):
        assert flag in words
    assert not {"--limit-batches", "--overwrite", "--summary-json"} & set(words)
    assert cli(words[1:]) == 0
    code, report = run(capsys, out)
    assert code == 0 and report.startswith("OK: 7 latents"), report
