"""README's "Your own data" runs as written: its dataset config and custom metadata module, through an encode."""

from __future__ import annotations

import json
import re
from pathlib import Path

from preencode.cli import main
from tests.encode_setup import encode_args, read_output, write_clips
from tests.helpers import write_json

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks(text: str, language: str) -> list[str]:
    return [re.sub(r"^ {3}", "", b, flags=re.M) for b in re.findall(rf"```{language}\n(.*?)```", text, re.S)]


def test_your_own_data_example_runs_as_written(model_files, tmp_path):
    readme = README.read_text(encoding="utf-8")
    section = readme[readme.index("## Your own data"):readme.index("## Train on it")]
    config = json.loads(_blocks(section, "json")[0])
    music = tmp_path / "my_music"  # the layout the example's module expects: <genre>/<file>, outtakes rejected
    write_clips(music / "jazz", [300, 120])
    write_clips(music / "outtakes", [200])
    module = tmp_path / "my_metadata.py"
    module.write_text(_blocks(section, "python")[0], encoding="utf-8")
    config["datasets"][0].update(path=str(music), custom_metadata_module=str(module))
    out = tmp_path / "my_latents"
    assert main(encode_args(model_files, write_json(tmp_path / "my_dataset.json", config), out)) == 0
    prompts = sorted(meta["prompt"] for _, meta in read_output(out).values())
    assert prompts == ["jazz music, clip 000", "jazz music, clip 001"]
    rejected = [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()]
    assert [Path(r["path"]).parent.name for r in rejected] == ["outtakes"]
