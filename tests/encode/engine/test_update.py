"""Datasets that grow: ``--update`` encodes only new and changed inputs under stable ids, ``--prune`` removes gone
ones; in one process and in two, in both output formats, and after a SIGKILL in the middle of an update."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from preencode.cli import main
from preencode.store.manifest import read_entries
from preencode.store.reader import iter_records, open_tree
from preencode.tools.verify import verify_tree
from tests.encode_setup import SR, dataset_config, encode_args, write_clips

ROOT = Path(__file__).resolve().parents[3]
LENGTHS = [90, 300, 256, 41, 700, 128, 222, 333, 64, 500]


def _stored(out: Path) -> dict[str, list[tuple[bytes, dict]]]:
    """{id: [(latent bytes, metadata)] for every stored copy}, loose or in shards."""
    found: dict[str, list[tuple[bytes, dict]]] = {}
    for record in iter_records(open_tree(out), lambda err: pytest.fail(str(err))):
        if record.is_latent():
            found.setdefault(record.id, []).append((record.read_bytes(".npy"), json.loads(record.read_bytes(".json"))))
    return found


def _single(out: Path) -> dict[str, tuple[bytes, dict]]:
    stored = _stored(out)
    assert all(len(copies) == 1 for copies in stored.values()), {k: len(v) for k, v in stored.items() if len(v) > 1}
    return {key: copies[0] for key, copies in stored.items()}


def _ids(out: Path) -> dict[str, int]:
    """{input file name: id} of the manifest's inputs that were not pruned (gone but kept ones too)."""
    return {Path(e.path).name: e.id for e in read_entries(out) or [] if e.pruned is None}


def _grow(folder: Path) -> tuple[list[str], str, str]:
    """Add three inputs (sorting among the old ones), change one, delete one; returns (added, changed, deleted)."""
    rng = np.random.default_rng(7)
    added = ["clip_000b.wav", "clip_004b.wav", "clip_999.wav"]
    for name, n in zip(added, (150, 260, 90), strict=True):
        sf.write(folder / name, (0.3 * rng.standard_normal((n, 2))).astype(np.float32), SR, subtype="FLOAT")
    changed = folder / "clip_003.wav"
    sf.write(changed, (0.3 * rng.standard_normal((77, 2))).astype(np.float32), SR, subtype="FLOAT")
    deleted = folder / "clip_006.wav"
    deleted.unlink()
    return added, changed.name, deleted.name


def _args(model_files, cfg: Path, out: Path, fmt: str, *extra: str) -> list[str]:
    return encode_args(model_files, cfg, out, "--output-format", fmt, "--shard-size", "3", "--posterior", "mean",
                       "--summary-json", str(out.parent / f"{out.name}-summary.json"), *extra)


def _summary(out: Path) -> dict:
    return json.loads((out.parent / f"{out.name}-summary.json").read_text())


def _check_update(out: Path, before: dict[str, tuple[bytes, dict]], ids_before: dict[str, int], added: list[str],
                  changed: str, deleted: str) -> None:
    after = _single(out)
    ids = _ids(out)
    unchanged = [name for name in ids_before if name != changed]
    assert len(unchanged) == 9 and deleted in unchanged
    for name in unchanged:  # same id, same bytes (the deleted input's latent is kept)
        key = f"{ids_before[name]:013d}"
        assert ids[name] == ids_before[name] and after[key][0] == before[key][0] and after[key][1] == before[key][1]
    assert ids[changed] == ids_before[changed]
    key = f"{ids[changed]:013d}"
    assert after[key][0] != before[key][0] and after[key][1]["input_fingerprint"] != before[key][1]["input_fingerprint"]
    assert [ids[name] for name in sorted(added)] == [10, 11, 12]  # after the largest id, in sorted order
    assert [e.vanished is not None for e in read_entries(out) or [] if Path(e.path).name == deleted] == [True]
    assert verify_tree(out).ok, verify_tree(out).problems


@pytest.mark.parametrize("fmt", ["npy", "wds"])
def test_update_encodes_only_new_and_changed_inputs_and_prune_removes_gone_ones(model_files, tmp_path, capsys, fmt):
    folder = tmp_path / "audio"
    write_clips(folder, LENGTHS)
    cfg = dataset_config(tmp_path, folder)
    out = tmp_path / "out"
    assert main(_args(model_files, cfg, out, fmt)) == 0
    before, ids_before = _single(out), _ids(out)
    assert sorted(ids_before.values()) == list(range(10))
    added, changed, deleted = _grow(folder)

    assert main(_args(model_files, cfg, out, fmt)) == 2  # without --update: refused, nothing written
    assert "--update" in capsys.readouterr().err
    assert _single(out) == before

    assert main(_args(model_files, cfg, out, fmt, "--update")) == 0
    err = capsys.readouterr().err
    assert _summary(out)["encoded"] == 4 and _summary(out)["update"] == {"added": 3, "changed": 1, "vanished": 1,
                                                                           "pruned": 0}
    assert deleted in err and "gone" in err  # reported
    _check_update(out, before, ids_before, added, changed, deleted)

    assert main(_args(model_files, cfg, out, fmt, "--update")) == 0  # again: nothing to do
    assert _summary(out)["encoded"] == 0

    assert main(_args(model_files, cfg, out, fmt, "--update", "--prune")) == 0
    assert _summary(out)["encoded"] == 0
    gone = f"{ids_before[deleted]:013d}"
    assert gone not in _single(out) and len(_single(out)) == 12
    pruned = [e for e in read_entries(out) or [] if e.pruned is not None]
    assert [(Path(e.path).name, e.id) for e in pruned] == [(deleted, ids_before[deleted])]
    assert verify_tree(out).ok, verify_tree(out).problems
    runs = json.loads((out / "details.json").read_text())["runs"]
    counts = [r["counts"] for r in runs]  # the refused run and the one with nothing to do are not listed
    assert [c["encoded"] for c in counts] == [10, 4, 0] and counts[1]["changed"] == 1 and counts[2]["pruned"] == 1
    assert [e.run for e in read_entries(out) or [] if Path(e.path).name in (changed, deleted)] == [2, 1]
    assert not list(out.glob(f"*/{gone}.*"))


def _run(argv: list[str], **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "preencode", *argv], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def _finish(proc: subprocess.Popen, timeout: float = 240) -> str:
    text, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, text
    return text


def _same(a: dict[str, tuple[bytes, dict]], b: dict[str, tuple[bytes, dict]]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(np.load(_io(a[key][0])), np.load(_io(b[key][0])), atol=1e-4, rtol=1e-4)
        assert a[key][1] == b[key][1]


def _io(data: bytes):
    import io

    return io.BytesIO(data)


@pytest.mark.parametrize("fmt", ["npy", "wds"])
def test_update_under_two_processes_matches_one_process(model_files, tmp_path, fmt):
    folder = tmp_path / "audio"
    write_clips(folder, LENGTHS)
    cfg = dataset_config(tmp_path, folder)
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(_args(model_files, cfg, one, fmt)) == 0
    shutil.copytree(one, two)
    before, ids_before = _single(two), _ids(two)
    added, changed, deleted = _grow(folder)
    assert main(_args(model_files, cfg, one, fmt, "--update")) == 0
    ddp = ("--devices", "2", "--strategy", "ddp", "--batch-size", "2")
    text = _finish(_run(_args(model_files, cfg, two, fmt, "--update", *ddp)))
    assert _summary(two)["encoded"] == 4 and deleted in text
    assert sorted(p.name for p in two.iterdir() if p.is_dir()) == ["0", "1"]  # both ranks wrote
    _check_update(two, before, ids_before, added, changed, deleted)
    assert _ids(one) == _ids(two)
    _same(_single(one), _single(two))


@pytest.mark.parametrize("fmt", ["npy", "wds"])
def test_sigkill_during_an_update_then_a_rerun_gives_the_uninterrupted_result(model_files, tmp_path, fmt):
    folder = tmp_path / "audio"
    write_clips(folder, LENGTHS)
    cfg = dataset_config(tmp_path, folder)
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    assert main(_args(model_files, cfg, killed, fmt)) == 0
    shutil.copytree(killed, clean)
    rng = np.random.default_rng(3)
    for i in range(0, 10, 2):  # five changed inputs, and 18 new ones among them
        sf.write(folder / f"clip_{i:03d}.wav", (0.3 * rng.standard_normal((120 + i, 2))).astype(np.float32), SR,
                 subtype="FLOAT")
    for i in range(18):
        sf.write(folder / f"clip_{i // 3:03d}_{i}.wav", (0.3 * rng.standard_normal((100 + 7 * i, 2))).astype(
            np.float32), SR, subtype="FLOAT")
    (folder / "clip_009.wav").unlink()
    args = _args(model_files, cfg, killed, fmt, "--update", "--batch-size", "1", "--shard-size", "2")
    start = len(list(killed.glob("0/*")))
    proc = _run(args, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(killed.glob("0/*"))) < start + 6 and proc.poll() is None:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL  # killed in the middle, not finished
    assert main(args) == 0
    assert _summary(killed)["skipped"] > 4 and _summary(killed)["encoded"] < 23  # 4 unchanged; went on where it stopped
    assert main(_args(model_files, cfg, clean, fmt, "--update", "--batch-size", "1", "--shard-size", "2")) == 0
    assert _ids(killed) == _ids(clean) and len(_ids(killed)) == 28
    _same(_single(killed), _single(clean))
    assert verify_tree(killed).ok, verify_tree(killed).problems
    leftovers = [p.name for p in killed.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]
    assert leftovers == []


@pytest.mark.parametrize("fmt", ["npy", "wds"])
def test_readers_skip_a_copy_an_interrupted_update_left_and_the_next_run_removes_it(model_files, tmp_path, fmt):
    """The state a kill leaves between committing a changed input's new copy and removing its old one, and a
    prune killed before its files went: verify, inspect and both training datasets take the manifest's word."""
    from preencode.data.latent_sample import LatentSource
    from preencode.data.latent_shards import LatentShardDataset, LatentStreamLoader
    from preencode.data.pre_encoded import PreEncodedDataset
    from preencode.tools.summary import summarise

    folder = tmp_path / "audio"
    write_clips(folder, LENGTHS)
    cfg = dataset_config(tmp_path, folder)
    out = tmp_path / "out"
    assert main(_args(model_files, cfg, out, fmt)) == 0
    saved = {p.name: p.read_bytes() for p in (out / "0").iterdir()}
    ids_before = _ids(out)
    _, changed, deleted = _grow(folder)
    assert main(_args(model_files, cfg, out, fmt, "--update", "--prune")) == 0
    after = _single(out)
    stale, gone = f"{ids_before[changed]:013d}", f"{ids_before[deleted]:013d}"
    if fmt == "npy":  # the old copy as a second rank would have left it, and the pruned one
        (out / "1").mkdir()
        for name, data in saved.items():
            if name.startswith((stale, gone)):
                (out / "1" / name).write_bytes(data)
    else:  # the old shards as they were before the update rewrote them (its new shards have other numbers)
        for name, data in saved.items():
            (out / "0" / name).write_bytes(data)
    copies = _stored(out)
    assert len(copies[stale]) == 2 and len(copies[gone]) == 1

    result = verify_tree(out)
    assert result.ok and result.latents == 12, result.problems
    assert sum("superseded" in w for w in result.warnings) == 2
    summary = summarise(out)
    assert sum(n for cause, n in summary.notes.items() if "superseded" in cause) == 2
    if fmt == "npy":
        loose = PreEncodedDataset([LatentSource("d", str(out))], use_index_cache=False)
        found = sorted(Path(r.parts[".npy"].path).name for r in loose.records)
        assert len(found) == 12 and f"{gone}.npy" not in found
        assert next(r for r in loose.records if r.key == stale).parts[".npy"].read() == after[stale][0]
    else:
        stream = LatentShardDataset([LatentSource("d", str(out))], shuffle=False)
        seen = [info["latent_filename"] for batch in LatentStreamLoader(stream, batch_size=1) for info in batch.infos]
        ids = [name.rsplit(":", 1)[1].split(".")[0] for name in seen]
        assert ids.count(stale) == 1 and gone not in ids

    assert main(_args(model_files, cfg, out, fmt)) == 0  # any next run removes them
    assert _stored(out)[stale] == [after[stale]] and gone not in _stored(out)


def test_update_of_an_s3_output_is_refused_before_any_work(model_files, tmp_path, capsys):
    write_clips(tmp_path / "audio", [100, 200])
    cfg = dataset_config(tmp_path, tmp_path / "audio")
    argv = encode_args(model_files, cfg, "s3://bucket/latents", "--output-format", "wds", "--update")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--update is not supported for an s3:// output" in err and "Traceback" not in err
