"""The t5 conditioner with a tiny random T5 saved to a local folder (nothing is downloaded)."""

from __future__ import annotations

import copy

import pytest
import torch

pytest.importorskip("transformers")

from preencode.errors import UserError
from preencode.train.config import parse_model_config
from preencode.train.module import LatentDiffusionModule
from tests.train.conftest import TINY


@pytest.fixture(scope="module")
def tiny_t5(tmp_path_factory):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

    folder = tmp_path_factory.mktemp("tiny_t5")
    words = ["<pad>", "</s>", "<unk>", "a", "dog", "barks", "piano", "slow"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>",
                            unk_token="<unk>").save_pretrained(folder)
    torch.manual_seed(0)
    config = T5Config(vocab_size=len(words), d_model=8, d_kv=4, d_ff=16, num_layers=1, num_heads=2,
                      decoder_start_token_id=0)
    T5EncoderModel(config).save_pretrained(folder)
    return str(folder)


def t5_config(folder: str) -> dict:
    cfg = copy.deepcopy(TINY)
    cfg["model"]["conditioning"]["configs"].insert(
        0, {"id": "prompt", "type": "t5", "config": {"t5_model_name": folder, "max_length": 6}})
    cfg["model"]["diffusion"]["cross_attention_cond_ids"] = ["prompt", "seconds_start", "seconds_total"]
    cfg["training"]["demo"] = None
    return cfg


def test_t5_conditioner_trains_one_step(tiny_t5):
    module = LatentDiffusionModule(parse_model_config(t5_config(tiny_t5)))
    infos = [{"prompt": "a dog barks", "seconds_start": 0, "seconds_total": 3},
             {"prompt": "slow piano", "seconds_start": 1, "seconds_total": 9}]
    cond = module.model.condition(infos, "cpu")
    emb, mask = cond["prompt"]
    assert emb.shape == (2, 6, 16) and mask.shape == (2, 6)
    assert mask[0].tolist() == [True] * 3 + [False] * 3  # 3 words, then padding
    assert not any(k.startswith("conditioner.conditioners.prompt.encoder") for k in module.state_dict())
    inputs = module.model.dit_inputs(cond)
    assert inputs["cross_cond"].shape == (2, 8, 16)
    out = module.model(torch.randn(2, 4, 16), torch.rand(2), inputs)
    out.pow(2).mean().backward()
    assert module.model.conditioner.conditioners["prompt"].proj.weight.grad is not None
    latents = module.generate(infos, frames=16, steps=2, cfg_scale=3.0)
    assert latents.shape == (2, 4, 16) and torch.isfinite(latents).all()


def test_unknown_t5_name_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="neither a local folder nor in the local Hugging Face cache"):
        LatentDiffusionModule(parse_model_config(t5_config(str(tmp_path / "missing"))))
