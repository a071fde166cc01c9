"""A resume checks what it skips: damaged latents and shards are encoded again, under their ids.

Old code: a truncated ``.npy`` (or an unreadable ``.json``) beside its partner counted as done, so the resumed
run reported the output complete; a truncated shard stopped the run (or silently lost its last samples).
"""

from __future__ import annotations

import numpy as np

from preencode.cli import main
from preencode.store.reader import iter_records, open_tree, read_shard
from tests.encode_setup import encode_args, read_output


def test_a_truncated_latent_and_a_broken_json_are_encoded_again(model_files, clips, tmp_path, capsys, caplog):
    out = tmp_path / "out"
    args = encode_args(model_files, clips[1], out, "--posterior", "mean")
    assert main(args) == 0
    before = read_output(out)
    npy = out / "0" / "0000000000003.npy"
    npy.write_bytes(npy.read_bytes()[:-10])
    (out / "0" / "0000000000005.json").write_text('{"path": ')
    capsys.readouterr()
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "2 encoded, 5 skipped" in err and "2 damaged latent(s) or shard(s) found when resuming" in err
    assert "0000000000003.npy" in caplog.text and "0000000000005.json" in caplog.text  # each named once
    after = read_output(out)
    assert after.keys() == before.keys()
    for key in before:
        np.testing.assert_array_equal(after[key][0], before[key][0])
        assert after[key][1] == before[key][1]


def test_a_truncated_shard_is_replaced_and_its_samples_encoded_again(model_files, clips, tmp_path, capsys):
    out = tmp_path / "out"
    args = encode_args(model_files, clips[1], out, "--posterior", "mean", "--output-format", "wds",
                       "--shard-size", "3", "--batch-size", "7")

    def latents() -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for record in iter_records(open_tree(out), on_shard_error=lambda err: None):
            assert record.id not in found
            found[record.id] = record.load_latent()
        return found

    assert main(args) == 0
    before = latents()
    shard = sorted((out / "0").glob("shard-*.tar"))[0]
    held = read_shard(shard)
    last = max((part for record in held for part in record.parts.values()), key=lambda p: p.offset)
    data = shard.read_bytes()
    shard.write_bytes(data[:last.offset + last.size // 2])  # cut inside the last member's data
    capsys.readouterr()
    assert main(args) == 0
    assert f"{len(held)} encoded, {7 - len(held)} skipped" in capsys.readouterr().err
    after = latents()
    assert after.keys() == before.keys() and len(after) == 7
    for key in before:  # re-encoded in a smaller batch: float32 sums in another order
        np.testing.assert_allclose(after[key], before[key], atol=1e-4, rtol=1e-4)
