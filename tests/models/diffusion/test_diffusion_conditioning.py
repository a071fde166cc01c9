"""Conditioners and guidance behaviour beyond the stored reference values: metadata handling, errors,
dropout, and the frozen T5 staying out of the module tree."""

from __future__ import annotations

import pytest
import torch

from preencode.errors import UserError
from preencode.models.diffusion import build_diffusion_model
from tests.models.diffusion.tiny_diffusion import options_a, randomize, sao_like, with_t5

pytest.importorskip("transformers")

META = [{"prompt": "a dog barks", "seconds_start": 0, "seconds_total": 30},
        {"prompt": "slow piano", "seconds_start": [4], "seconds_total": [20]}]  # one-element lists are unwrapped


@pytest.fixture(scope="module")
def sao():
    return randomize(build_diffusion_model(with_t5(sao_like())), seed=3).eval()


def test_shapes_masks_and_the_frozen_t5(sao):
    cond = sao.conditioner(META, "cpu")
    emb, mask = cond["prompt"]
    assert emb.shape == (2, 8, 32) and mask.dtype == torch.bool
    assert mask.tolist()[1] == [True] * 3 + [False] * 5  # "slow piano" + </s>, then padding
    assert torch.count_nonzero(emb[1, 3:]) == 0  # padding positions are zeroed
    assert cond["seconds_start"][0].shape == (2, 1, 32) and cond["seconds_start"][1].dtype == torch.float32
    encoder = sao.conditioner.conditioners["prompt"]._frozen[1]
    assert encoder.dtype == torch.float16 and not any(p.requires_grad for p in encoder.parameters())
    assert not any(k.startswith("conditioner.conditioners.prompt") for k in sao.state_dict())
    assert all(not n.startswith("conditioner.conditioners.prompt") for n, _ in sao.named_parameters())
    sao.double()
    try:
        assert encoder.dtype == torch.float16  # .double()/.to() leave the frozen encoder alone
    finally:
        sao.float()


def test_missing_metadata_and_bad_values_are_user_errors(sao):
    with pytest.raises(UserError, match="needs the metadata field 'seconds_total', missing in sample 1"):
        sao.conditioner([META[0], {"prompt": "a", "seconds_start": 0}], "cpu")
    with pytest.raises(UserError, match="needs text prompts"):
        sao.conditioner([dict(META[0], prompt=None)], "cpu")
    with pytest.raises(UserError, match="expected a number"):
        sao.conditioner([dict(META[0], seconds_total="long")], "cpu")


def test_default_keys_and_pre_encoded_keys():
    config = with_t5(options_a())
    config["model"]["conditioning"]["default_keys"] = {"seconds_total": "duration"}
    config["model"]["conditioning"]["pre_encoded_keys"] = ["tempo"]
    model = randomize(build_diffusion_model(config), seed=1).eval()
    tempo = torch.randn(1, 6)
    meta = [{"prompt": "a", "duration": 5, "genre": "rock", "tempo": tempo},
            {"prompt": "b", "seconds_total": 9, "genre": "jazz", "tempo": tempo}]
    cond = model.conditioner(meta, "cpu")
    assert torch.equal(cond["tempo"][0], torch.stack([tempo, tempo])) and cond["tempo"][1] is None
    other = model.conditioner([dict(meta[0], seconds_total=5), meta[1]], "cpu")
    assert torch.equal(cond["seconds_total"][0], other["seconds_total"][0])
    inputs = model.get_conditioning_inputs(cond)
    assert inputs["input_concat_cond"].shape == (2, 1, 6)
    with torch.no_grad():
        assert model(torch.randn(2, 3, 12), torch.rand(2), cond, cfg_scale=2.0).shape == (2, 3, 12)


def test_cfg_dropout_replaces_the_tokens_by_zeros(sao):
    cond = sao.conditioner(META, "cpu")
    x, t = torch.randn(2, 4, 8), torch.tensor([0.4, 0.6])
    with torch.no_grad():
        dropped = sao(x, t, cond, cfg_dropout_prob=1.0, generator=torch.Generator().manual_seed(0))
        kept = sao(x, t, cond, cfg_dropout_prob=1e-9, generator=torch.Generator().manual_seed(0))
        plain = sao(x, t, cond)
        inputs = sao.get_conditioning_inputs(cond)
        inputs["cross_attn_cond"] = torch.zeros_like(inputs["cross_attn_cond"])
        unconditional = sao.model(x, t, **inputs)
    assert torch.equal(kept, plain)
    assert torch.equal(dropped, unconditional)  # global conditioning is kept, as in the reference
    assert not torch.equal(dropped, plain)


def test_guidance_outside_the_interval_is_the_conditional_output(sao):
    cond = sao.conditioner(META, "cpu")
    x = torch.randn(2, 4, 8)
    t = torch.tensor([0.05, 0.9])  # only t[0] decides, as in the reference
    with torch.no_grad():
        assert torch.equal(sao(x, t, cond, 5.0, cfg_interval=(0.5, 1.0)), sao(x, t, cond))
        assert not torch.equal(sao(x, t, cond, 5.0, cfg_interval=(0.0, 0.5)), sao(x, t, cond))


def test_gradient_checkpointing_gives_the_same_gradients(sao):
    x, t = torch.randn(2, 4, 8), torch.tensor([0.4, 0.6])

    def grads() -> list[torch.Tensor]:
        sao.zero_grad()
        sao(x, t, sao.conditioner(META, "cpu")).square().mean().backward()
        return [p.grad.clone() for p in sao.model.parameters()]

    sao.train()
    try:
        plain = grads()
        sao.model.model.transformer.gradient_checkpointing = True
        checkpointed = grads()
    finally:
        sao.model.model.transformer.gradient_checkpointing = False
        sao.eval()
        sao.zero_grad()
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(plain, checkpointed, strict=True))
    assert not sao.pretransform.model.training  # the pretransform stays frozen in eval mode


def test_wrong_latent_shapes_are_named(sao):
    cond = sao.conditioner(META, "cpu")
    with pytest.raises(ValueError, match=r"expected latents \[B, 4, L\], got \[2, 3, 8\]"):
        sao(torch.randn(2, 3, 8), torch.rand(2), cond)
