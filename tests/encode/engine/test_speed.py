"""The speed choices of a job: whether compiling SnakeBeta repays its cost."""

from __future__ import annotations

from dataclasses import replace

import pytest

from preencode.encode.engine import speed
from preencode.encode.engine.job import validate
from preencode.encode.engine.options import EncodeOptions
from preencode.models.config import OobleckConfig
from tests.encode_setup import dataset_config


def test_snake_values_per_sample_follow_widths_and_rates():
    cfg = OobleckConfig(channels=4, c_mults=(2,), strides=(2,), use_snake=True)  # widths [4, 8]
    assert speed.snake_values_per_sample(cfg) == 7 * 4 + 8 / 2
    assert speed.snake_values_per_sample(replace(cfg, use_snake=False)) == 0


@pytest.fixture
def job(model_files, clips, tmp_path):
    opts = EncodeOptions(model_config=str(model_files[0]), ckpt_path=str(model_files[1]),
                         dataset_config=str(dataset_config(tmp_path, clips[0])), output_path=str(tmp_path / "out"),
                         sample_size=256)
    return validate(opts)


def test_compiling_is_skipped_for_small_jobs_and_kept_for_large_or_unknown_ones(job, caplog):
    per_window = job.options.sample_size * speed.snake_values_per_sample(job.model_config.encoder)
    repaying = int(speed.COMPILE_SECONDS / (per_window * speed.SAVED_SECONDS_PER_VALUE)) + 1
    assert not speed.compile_worth_it(job, 7)
    assert "Not compiling SnakeBeta: 7 window(s)" in caplog.text
    assert speed.compile_worth_it(job, repaying) and not speed.compile_worth_it(job, repaying - 2)
    assert speed.compile_worth_it(job, None)
