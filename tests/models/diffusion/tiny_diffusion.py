"""Tiny diffusion configs shaped like stable-audio-tools' released models, and deterministic weights.

``TINY_T5`` in a config stands for the committed tiny T5 folder (:func:`with_t5` substitutes the
path). The same configs and :func:`randomize` made the reference fixtures in ``data/``.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import torch

from tests.helpers import randomized, tiny_config
from tests.models.diffusion.tiny_t5 import TINY_T5

T5_PLACEHOLDER = "TINY_T5"


def _pretransform() -> dict[str, Any]:
    """Stable Audio Open's VAE structure, scaled down (stereo, latent_dim 4, ratio 8)."""
    return {"type": "autoencoder", "iterate_batch": True, "config": tiny_config(channels=2, latent_dim=4)["model"]}


def sao_like() -> dict[str, Any]:
    """Stable Audio Open 1.0's layout: t5 + seconds_start/seconds_total, cross-attention over all three,
    the two numbers as global conditioning (prepended), unprojected 32-wide context against 64-wide
    blocks (grouped-query cross-attention, as SAO's 768 against 1536), v objective."""
    return {
        "model_type": "diffusion_cond", "sample_size": 128, "sample_rate": 16000, "audio_channels": 2,
        "model": {
            "pretransform": _pretransform(),
            "conditioning": {"configs": [
                {"id": "prompt", "type": "t5", "config": {"t5_model_name": T5_PLACEHOLDER, "max_length": 8}},
                {"id": "seconds_start", "type": "number", "config": {"min_val": 0, "max_val": 512}},
                {"id": "seconds_total", "type": "number", "config": {"min_val": 0, "max_val": 512}},
            ], "cond_dim": 32},
            "diffusion": {
                "cross_attention_cond_ids": ["prompt", "seconds_start", "seconds_total"],
                "global_cond_ids": ["seconds_start", "seconds_total"],
                "type": "dit",
                "config": {"io_channels": 4, "embed_dim": 64, "depth": 2, "num_heads": 2, "cond_token_dim": 32,
                           "global_cond_dim": 64, "project_cond_tokens": False,
                           "transformer_type": "continuous_transformer"},
            },
            "io_channels": 4,
        },
        "training": {
            "use_ema": True, "log_loss_info": False,
            "optimizer_configs": {"diffusion": {
                "optimizer": {"type": "AdamW", "config": {"lr": 5e-5, "betas": [0.9, 0.999], "weight_decay": 1e-3}},
                "scheduler": {"type": "InverseLR", "config": {"inv_gamma": 1000000, "power": 0.5, "warmup": 0.99}}}},
            "demo": {"demo_every": 2000, "demo_steps": 250, "num_demos": 2, "demo_cond": [
                {"prompt": "amen break 174 bpm", "seconds_start": 0, "seconds_total": 12},
                {"prompt": "chill hip hop beat", "seconds_start": 0, "seconds_total": 160}],
                "demo_cfg_scales": [3, 6, 9]},
        },
    }


def small_like() -> dict[str, Any]:
    """stable-audio-open-small's layout: t5 + seconds_total, qk layer norm, rf_denoiser objective."""
    return {
        "model_type": "diffusion_cond", "sample_size": 128, "sample_rate": 16000, "audio_channels": 2,
        "model": {
            "pretransform": _pretransform(),
            "conditioning": {"configs": [
                {"id": "prompt", "type": "t5", "config": {"t5_model_name": T5_PLACEHOLDER, "max_length": 6}},
                {"id": "seconds_total", "type": "number", "config": {"min_val": 0, "max_val": 256}},
            ], "cond_dim": 32},
            "diffusion": {
                "cross_attention_cond_ids": ["prompt", "seconds_total"],
                "global_cond_ids": ["seconds_total"],
                "diffusion_objective": "rf_denoiser",
                "type": "dit",
                "config": {"io_channels": 4, "embed_dim": 64, "depth": 2, "num_heads": 2, "cond_token_dim": 32,
                           "global_cond_dim": 32, "transformer_type": "continuous_transformer",
                           "attn_kwargs": {"qk_norm": "ln"}},
            },
            "io_channels": 4,
        },
        "training": {"use_ema": True, "pre_encoded": True, "timestep_sampler": "trunc_logit_normal",
                     "optimizer_configs": {"diffusion": {"optimizer": {"type": "AdamW", "config": {"lr": 1e-4}}}}},
    }


def options_a() -> dict[str, Any]:
    """Many of the reference's options at once: adaptive layer norm, patches of 2, prepended and
    input-concat conditioning, a projected t5 (32 -> 48), l2 qk-norm, conformer, memory tokens,
    sinusoidal positions, a convolutional non-gated feed-forward, biased float32 norms."""
    return {
        "model_type": "diffusion_cond", "sample_rate": 16000,
        "model": {
            "conditioning": {"configs": [
                {"id": "prompt", "type": "t5", "config": {"t5_model_name": T5_PLACEHOLDER, "max_length": 5}},
                {"id": "seconds_total", "type": "number", "config": {"min_val": 0, "max_val": 64}},
                {"id": "genre", "type": "list", "config": {"options": ["rock", "jazz"]}},
                {"id": "tempo", "type": "number", "config": {"min_val": 60, "max_val": 200}},
            ], "cond_dim": 48},
            "diffusion": {
                "cross_attention_cond_ids": ["prompt"], "global_cond_ids": ["seconds_total"],
                "prepend_cond_ids": ["genre"], "input_concat_ids": ["tempo"],
                "type": "dit",
                "config": {"io_channels": 3, "patch_size": 2, "embed_dim": 64, "depth": 2, "num_heads": 2,
                           "cond_token_dim": 48, "global_cond_dim": 48, "prepend_cond_dim": 48,
                           "input_concat_dim": 1, "global_cond_type": "adaLN", "conformer": True,
                           "num_memory_tokens": 2, "use_sinusoidal_emb": True,
                           "attn_kwargs": {"qk_norm": "l2"},
                           "ff_kwargs": {"glu": False, "use_conv": True, "conv_kernel_size": 3, "mult": 2},
                           "norm_kwargs": {"bias": True, "force_fp32": True, "eps": 1e-6}},
            },
            "io_channels": 3,
        },
    }


def options_b() -> dict[str, Any]:
    """More options: timestep as an input channel, an unprojected 64-wide global token, an int
    conditioner, differential attention with feature scaling and dyt qk-norm, layer scale, dynamic tanh
    instead of norms, per-block rotary embeddings only, learned absolute positions, cross-attention
    in the first block only, gated convolutional feed-forward, rectified flow."""
    return {
        "model_type": "diffusion_cond", "sample_rate": 16000,
        "model": {
            "conditioning": {"configs": [
                {"id": "prompt", "type": "t5", "config": {"t5_model_name": T5_PLACEHOLDER, "max_length": 4,
                                                           "project_out": True}},
                {"id": "steps", "type": "int", "config": {"min_val": 0, "max_val": 9}},
            ], "cond_dim": 64},
            "diffusion": {
                "cross_attention_cond_ids": ["prompt"], "global_cond_ids": ["steps"],
                "diffusion_objective": "rectified_flow",
                "type": "dit",
                "config": {"io_channels": 4, "embed_dim": 64, "depth": 2, "num_heads": 2, "cond_token_dim": 64,
                           "project_cond_tokens": False, "global_cond_dim": 64, "project_global_cond": False,
                           "timestep_cond_type": "input_concat", "timestep_embed_dim": 1,
                           "rotary_pos_emb": False, "add_rope": True, "use_abs_pos_emb": True,
                           "abs_pos_emb_max_length": 64, "final_cross_attn_ix": 0, "layer_scale": True,
                           "remove_norms": True,
                           "attn_kwargs": {"qk_norm": "dyt", "differential": True, "feat_scale": True},
                           "ff_kwargs": {"use_conv": True, "no_bias": True}},
            },
            "io_channels": 4,
        },
    }


CONFIGS = {"sao_like": sao_like, "small_like": small_like, "options_a": options_a, "options_b": options_b}


def with_t5(config: dict[str, Any], folder: str | None = None) -> dict[str, Any]:
    """A copy of ``config`` with the t5 placeholder replaced by ``folder`` (the committed tiny T5)."""
    text = json.dumps(config).replace(json.dumps(T5_PLACEHOLDER), json.dumps(str(folder or TINY_T5)))
    return json.loads(text)


@torch.no_grad()
def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Deterministic non-trivial weights for every parameter: matrices ``~ N(0, 1 / fan_in)``, gains
    ``1 + 0.2 N(0, 1)``, other vectors ``0.2 N(0, 1)``; the pretransform as in the autoencoder tests."""
    gen = torch.Generator().manual_seed(seed)
    pretransform = getattr(model, "pretransform", None)
    skip = {id(p) for p in pretransform.parameters()} if pretransform is not None else set()
    for name, p in sorted(model.named_parameters()):
        if id(p) in skip:
            continue
        noise = torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype)
        if p.ndim >= 2:
            p.copy_(noise / p[0].numel() ** 0.5)
        elif name.endswith(("gamma", "norm.weight", ".scale", "alpha")):
            p.copy_(1 + 0.2 * noise)
        else:
            p.copy_(0.2 * noise)
    if pretransform is not None:
        randomized(pretransform.model, seed=seed + 1)
    return model


def deep_copy(config: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(config)
