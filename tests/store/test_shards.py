"""``--output-format wds``: tar shards per rank, read back by webdataset, stable-audio-tools' decoding and our
reader; resume at shard granularity after a kill."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
import webdataset as wds

from preencode.cli import main
from preencode.store.layout import done_indices
from preencode.store.names import temp_name
from preencode.store.reader import iter_records, open_tree
from tests.encode_setup import encode_args, read_output

IDS = [f"{i:013d}" for i in range(7)]


def _shards(out):
    return sorted(p.relative_to(out).as_posix() for p in out.glob("*/*") if p.is_file())


def _npy_decoder(key, value):
    """stable-audio-tools' ``npy_decoder`` (data/dataset.py), used with ``pre_encoded: true``."""
    if key.split(".")[-1] == "npy":
        return np.lib.format.read_array(io.BytesIO(value))
    return None


def _read_wds(out, decoder=None):
    urls = [str(p) for p in sorted(out.glob("*/*.tar"))]
    pipeline = wds.DataPipeline(wds.SimpleShardList(urls), wds.tarfile_to_samples(),
                                wds.decode(decoder) if decoder else wds.decode())
    return {s["__key__"]: s for s in pipeline}


@pytest.fixture
def reference(model_files, clips, tmp_path):
    """The same job written as loose .npy files."""
    out = tmp_path / "npy"
    assert main(encode_args(model_files, clips[1], out, "--store-std")) == 0
    return read_output(out), out


def test_shards_round_trip_through_webdataset_and_our_reader(model_files, clips, tmp_path, reference):
    loose, loose_dir = reference
    out = tmp_path / "wds"
    assert main(encode_args(model_files, clips[1], out, "--output-format", "wds", "--shard-size", "3",
                            "--store-std")) == 0
    assert _shards(out) == ["0/shard-000000.tar", "0/shard-000001.tar", "0/shard-000002.tar"]
    samples = _read_wds(out)
    assert sorted(samples) == IDS
    for key, sample in samples.items():
        latent, meta = loose[key]
        np.testing.assert_array_equal(sample["npy"], latent)
        assert sample["json"] == meta
        with np.load(loose_dir / "0" / f"{key}.std.npz") as npz:
            np.testing.assert_array_equal(sample["std.npz"]["std"], npz["std"])
    # stable-audio-tools' pre_encoded pipeline: npy_decoder, then sample["npy"] and sample["json"]["padding_mask"]
    for key, sample in _read_wds(out, _npy_decoder).items():
        assert sample["npy"].shape[-1] == len(sample["json"]["padding_mask"])
        np.testing.assert_array_equal(sample["npy"], loose[key][0])
    tree = open_tree(out)
    seen = []
    for record in iter_records(tree, on_shard_error=pytest.fail):
        np.testing.assert_array_equal(record.load_latent(), loose[record.id][0])
        assert record.load_meta().to_dict() == loose[record.id][1]
        assert record.load_std().shape == record.load_latent().shape
        seen.append(record.id)
    assert sorted(seen) == IDS and not tree.loose
    assert main(["verify", str(out)]) == 0
    assert done_indices(out) == set(range(7))


def test_shard_byte_limit_closes_shards_early(model_files, clips, tmp_path):
    out = tmp_path / "wds"
    assert main(encode_args(model_files, clips[1], out, "--output-format", "wds", "--shard-bytes", "1")) == 0
    assert _shards(out) == [f"0/shard-{i:06d}.tar" for i in range(7)]


def test_killed_run_leaves_no_truncated_shard_and_resume_completes_identically(model_files, clips, tmp_path):
    first = tmp_path / "first"
    argv = encode_args(model_files, clips[1], first, "--output-format", "wds", "--shard-size", "3")
    assert main(argv) == 0
    expected = _read_wds(first)
    # What a kill while writing the second shard leaves: the first shard committed, the second a partial
    # temporary (never under a .tar name a loader would read), the third not started.
    rank = first / "0"
    first_shard = {r.id for r in iter_records(open_tree(rank / "shard-000000.tar"), pytest.fail)}
    partial = (rank / "shard-000001.tar").read_bytes()[:1500]
    (rank / "shard-000001.tar").unlink()
    (rank / "shard-000002.tar").unlink()
    (rank / temp_name("shard-000001.tar")).write_bytes(partial)
    assert done_indices(first) == {int(i) for i in first_shard}
    assert sorted(_read_wds(first)) == sorted(first_shard)  # a loader sees only complete samples
    assert main(argv) == 0
    assert not any(p.name.startswith(".") for p in rank.iterdir())
    # The killed shard never took its number: the numbers stay contiguous, and shards.txt lists them.
    assert _shards(first) == ["0/shard-000000.tar", "0/shard-000001.tar", "0/shard-000002.tar"]
    assert (first / "shards.txt").read_text() == "0/shard-000000.tar\n0/shard-000001.tar\n0/shard-000002.tar\n"
    resumed = _read_wds(first)
    assert sorted(resumed) == IDS
    for key, sample in expected.items():
        np.testing.assert_array_equal(resumed[key]["npy"], sample["npy"])
        assert resumed[key]["json"] == sample["json"]


def test_full_length_in_shards(model_files, clips, tmp_path):
    a, b = tmp_path / "npy", tmp_path / "wds"
    assert main(encode_args(model_files, clips[1], a, "--full-length")) == 0
    assert main(encode_args(model_files, clips[1], b, "--full-length", "--output-format", "wds")) == 0
    loose, samples = read_output(a), _read_wds(b)
    assert sorted(samples) == sorted(loose) == IDS
    for key, sample in samples.items():
        np.testing.assert_array_equal(sample["npy"], loose[key][0])


def test_a_damaged_committed_shard_is_replaced_on_resume(model_files, clips, tmp_path, capsys, caplog):
    """Issue 11: the resume removes the damaged shard and encodes its samples again (it used to stop)."""
    out = tmp_path / "wds"
    argv = encode_args(model_files, clips[1], out, "--output-format", "wds", "--shard-size", "3")
    assert main(argv) == 0
    expected = _read_wds(out)
    shard = out / "0" / "shard-000001.tar"
    shard.write_bytes(b"\x01" * 700)
    assert main(argv) == 0
    assert "1 damaged latent(s) or shard(s)" in capsys.readouterr().err and shard.name in caplog.text
    resumed = _read_wds(out)
    assert sorted(resumed) == IDS
    for key, sample in expected.items():
        np.testing.assert_array_equal(resumed[key]["npy"], sample["npy"])
    # The damaged shard's number is taken again: no gap.
    assert _shards(out) == ["0/shard-000000.tar", "0/shard-000001.tar", "0/shard-000002.tar"]
    shutil.rmtree(out)


def test_a_failed_write_drops_the_open_shard_instead_of_committing_it(tmp_path, monkeypatch):
    """Issue 11: on a full disk the old writer kept the open shard and committed it at close(), with a
    member cut short."""
    import errno

    from preencode.store import shards
    from preencode.store.writer import open_writer
    from tests.store.trees import make_items

    items = make_items(ranks=(3,))
    writer = open_writer("wds", tmp_path / "0", shard_size=10)
    writer.write(items[0].sample())
    real_add = shards._add

    def disk_full(tar, name, payload):
        real_add(tar, name, payload[: len(payload) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shards, "_add", disk_full)
    with pytest.raises(OSError):
        writer.write(items[1].sample())
    monkeypatch.undo()
    writer.close()
    assert list((tmp_path / "0").iterdir()) == []  # nothing committed, no temporary left


def test_numbered_shards_open_through_the_printed_pattern_and_members_decode(model_files, clips, tmp_path, capsys):
    import soundfile as sf

    out = tmp_path / "wds"
    summary_json = tmp_path / "summary.json"
    assert main(encode_args(model_files, clips[1], out, "--output-format", "wds", "--shard-size", "2",
                            "--summary-json", str(summary_json))) == 0
    assert _shards(out) == [f"0/shard-{n:06d}.tar" for n in range(4)]  # 7 samples, 2 per shard, in write order
    assert (out / "shards.txt").read_text().split() == _shards(out)
    url = next(line for line in capsys.readouterr().err.splitlines() if "WebDataset URL: " in line)
    url = url.split("WebDataset URL: ", 1)[1]
    assert url == f"{out}/0/shard-{{000000..000003}}.tar" == json.loads(summary_json.read_text())["shard_urls"]
    samples = {s["__key__"]: s for s in wds.WebDataset(url, shardshuffle=False).decode()}
    assert sorted(samples) == IDS

    first = sorted(r.id for r in iter_records(open_tree(out / "0" / "shard-000000.tar"), pytest.fail))
    wav = tmp_path / "member.wav"
    assert main(["decode", f"{out}/0/shard-000000.tar:{first[0]}", "--ckpt-path", str(model_files[1]),
                 "-o", str(wav)]) == 0
    audio, rate = sf.read(wav)
    assert rate == 16000 and audio.shape[0] == sum(samples[first[0]]["json"]["padding_mask"]) * 8
    capsys.readouterr()
    # A shard of several latents names them; a member that is not there is named; nothing is "damaged".
    assert main(["decode", f"{out}/0/shard-000000.tar", "--ckpt-path", str(model_files[1]), "-o", str(wav)]) == 2
    assert f"holds 2 latents ({first[0]}, {first[1]}); name one" in capsys.readouterr().err
    assert main(["decode", f"{out}/0/shard-000000.tar:0000000000099", "--ckpt-path", str(model_files[1]),
                 "-o", str(wav)]) == 2
    err = capsys.readouterr().err
    assert "has no member '0000000000099'" in err and "damaged" not in err and "corrupt" not in err

    assert main(["inspect", f"{out}/0/shard-000000.tar:{first[0]}", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["latents"] == 1 and report["shards"] == 1
    assert main(["inspect", f"{out}/0/shard-000001.tar", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["latents"] == 2
    assert main(["verify", f"{out}/0/shard-000001.tar"]) == 0
    assert "OK: 2 latents" in capsys.readouterr().out
