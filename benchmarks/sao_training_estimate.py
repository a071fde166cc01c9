"""What one training step of Stable Audio Open 1.0 costs on one GPU: FLOPs, memory, batch sizes that fit.

    PYTHONPATH=. python3 benchmarks/sao_training_estimate.py \
        [--model-config ../shared/spec/stable_audio_open_model_config.json] [--seconds 47.55] [--json]

Everything is computed from the config, on the ``meta`` device (no weights, no compute):

* FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` around one forward and one backward pass of the DiT at
  batch 1, with the real sequence (``sample_size / downsampling_ratio`` latent frames plus the prepended global
  token) and the real cross-attention context (T5's ``max_length`` tokens plus one per number conditioner).
  Matrix products and attention are counted; element-wise work (norms, activations, the optimiser) is not.
  The frozen T5 encoder adds ``2 x 85 M x 128`` FLOPs per sample (t5-base's matrices, counted by hand); the
  pretransform adds nothing when latents are pre-encoded (otherwise its encoder runs every step:
  :func:`benchmarks.flops.encoder_gflops_per_second_of_audio`).
* Activation memory per sample: the tensors autograd saves for the backward pass (parameters excluded),
  measured with ``saved_tensors_hooks``, without the attention-probability matrices (``[B, heads, N, N]``,
  ``[B, heads, N, S]``), which the math kernel used on ``meta`` saves but the flash / memory-efficient
  kernels PyTorch picks on GPUs do not. bf16-mixed is approximated by a bf16 model (autocast keeps norms and
  the rotary embedding in float32, as that model does). With ``--gradient-checkpointing`` a block's inputs
  are kept and one block is recomputed at a time: inputs of all blocks plus one block's activations.
* Static memory (any precision: Lightning's mixed precision keeps float32 master weights): DiT weights,
  gradients, AdamW's two moments and the EMA copy, all float32 (5 x 4 bytes per parameter), the frozen
  pretransform (float32) and T5 (float16), the conditioner's small trained layers, plus bf16-mixed's cached
  bf16 copies of the weights during the forward pass, plus 1.5 GB for the CUDA context and the allocator.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT.parent / "shared" / "spec" / "stable_audio_open_model_config.json"
T5_BASE_MATMUL_PARAMS = 85_000_000  # 12 layers x (4 x 768^2 attention + 2 x 768 x 3072 feed-forward)
RESERVED_GB = 1.5
GPUS_GB = (24, 40, 80)


def _inputs(config: Any, batch: int, dtype: torch.dtype) -> tuple[dict[str, torch.Tensor], int, int]:
    """Meta tensors for the network: latents, times and conditioning of Stable Audio Open's layout (the config
    must have a sample_size, a pretransform and conditioning, as Stable Audio Open's has)."""
    frames = config.sample_size // config.pretransform.autoencoder.downsampling_ratio
    cond = config.conditioning
    tokens = sum(c.tokens for c in cond.configs if c.id in config.cross_attention_cond_ids)
    with torch.device("meta"):
        kwargs: dict[str, torch.Tensor] = {"x": torch.randn(batch, config.io_channels, frames, dtype=dtype),
                                           "t": torch.rand(batch, dtype=dtype)}
        if config.cross_attention_cond_ids:
            kwargs["cross_attn_cond"] = torch.randn(batch, tokens, cond.cond_dim, dtype=dtype)
        if config.global_cond_ids:
            kwargs["global_cond"] = torch.randn(batch, config.dit.global_cond_dim, dtype=dtype)
    return kwargs, frames, tokens


def count_flops(network: torch.nn.Module, config: Any) -> tuple[float, float]:
    """(forward, backward) FLOPs of one sample."""
    from torch.utils.flop_counter import FlopCounterMode

    kwargs, _, _ = _inputs(config, 1, torch.float32)
    forward = FlopCounterMode(display=False)
    with forward:
        out = network(kwargs.pop("x"), kwargs.pop("t"), **kwargs)
    backward = FlopCounterMode(display=False)
    with backward:
        out.float().square().mean().backward()
    network.zero_grad(set_to_none=True)
    return float(forward.get_total_flops()), float(backward.get_total_flops())


def activation_bytes(network: torch.nn.Module, config: Any, dtype: torch.dtype) -> float:
    """Bytes autograd saves for one sample (see the module docstring for what is left out)."""
    network.to(dtype)
    params = {id(p) for p in network.parameters()}
    kwargs, frames, tokens = _inputs(config, 1, dtype)
    seq = frames + (1 if config.global_cond_ids and config.dit.global_cond_type == "prepend" else 0)
    seen: dict[int, tuple[torch.Tensor, int]] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        base = tensor._base if tensor._base is not None else tensor
        probabilities = base.ndim == 4 and base.shape[-2] == seq and base.shape[-1] in (seq, tokens)
        if id(base) not in params and id(tensor) not in params and not probabilities:
            seen[id(base)] = (base, base.numel() * base.element_size())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        network(kwargs.pop("x"), kwargs.pop("t"), **kwargs)
    network.to(torch.float32)
    return float(sum(size for _, size in seen.values()))


def estimate(model_config: str | Path, seconds: float | None = None) -> dict[str, Any]:
    from benchmarks.flops import encoder_gflops_per_second_of_audio
    from preencode.models.diffusion import build_diffusion_model, load_diffusion_config

    config = load_diffusion_config(model_config)
    with torch.device("meta"):
        model = build_diffusion_model(config)
    network = model.model.train()
    dit_params = sum(p.numel() for p in network.parameters())
    cond_params = sum(p.numel() for p in model.conditioner.parameters()) if model.conditioner is not None else 0
    pre_params = sum(p.numel() for p in model.pretransform.parameters()) if model.pretransform is not None else 0
    forward, backward = count_flops(network, config)
    _, frames, tokens = _inputs(config, 1, torch.float32)
    audio_seconds = seconds or (config.sample_size or 0) / config.sample_rate
    t5 = 2 * T5_BASE_MATMUL_PARAMS * tokens
    encoder = 0.0
    if config.pretransform is not None:
        encoder = encoder_gflops_per_second_of_audio(config.pretransform.autoencoder.encoder, config.sample_rate) \
            * 1e9 * audio_seconds
    acts = {"fp32": activation_bytes(network, config, torch.float32),
            "bf16": activation_bytes(network, config, torch.bfloat16)}
    depth = config.dit.depth
    network.model.transformer.gradient_checkpointing = True
    block_inputs = {"fp32": activation_bytes(network, config, torch.float32),
                    "bf16": activation_bytes(network, config, torch.bfloat16)}
    per_sample = {}
    for prec in ("fp32", "bf16"):
        per_sample[prec] = acts[prec] / 1e9
        per_sample[f"{prec}+ckpt"] = (block_inputs[prec] + acts[prec] / depth) / 1e9
    static_fp32 = (5 * 4 * dit_params + 5 * 4 * cond_params + 4 * pre_params + 2 * 110_000_000) / 1e9
    static = {"fp32": static_fp32, "bf16": static_fp32 + 2 * dit_params / 1e9}
    batches: dict[str, dict[int, int]] = {}
    for kind, per in per_sample.items():
        base = static[kind.split("+")[0]]
        batches[kind] = {gb: max(math.floor((gb - RESERVED_GB - base) / per), 0) for gb in GPUS_GB}
    return {"dit_params": dit_params, "conditioner_params": cond_params, "pretransform_params": pre_params,
            "latent_frames": frames, "sequence": frames + 1, "context_tokens": tokens, "audio_seconds": audio_seconds,
            "forward_tflop": forward / 1e12, "backward_tflop": backward / 1e12,
            "step_tflop_per_sample": (forward + backward + t5) / 1e12, "t5_tflop_per_sample": t5 / 1e12,
            "on_the_fly_encoder_tflop_per_sample": encoder / 1e12,
            "static_gb": static, "activation_gb_per_sample": per_sample, "max_batch": batches}


def report(r: dict[str, Any], tflops: float = 125.0) -> str:
    seconds = r["step_tflop_per_sample"] / tflops
    lines = [
        (f"DiT {r['dit_params'] / 1e9:.3f} B parameters; sequence {r['latent_frames']} latent frames "
        f"({r['audio_seconds']:.2f} s) + 1 global token; cross-attention context {r['context_tokens']} tokens"),
        (f"FLOPs per sample: forward {r['forward_tflop']:.2f} T, backward {r['backward_tflop']:.2f} T "
        f"({r['backward_tflop'] / r['forward_tflop']:.2f}x), T5 {r['t5_tflop_per_sample'] * 1e3:.0f} G: "
        f"one training step = {r['step_tflop_per_sample']:.2f} TFLOP per sample "
        f"(encoding on the fly would add {r['on_the_fly_encoder_tflop_per_sample']:.2f} TFLOP, forward only)"),
        (f"at a sustained {tflops:g} TFLOP/s (about 40 % of an A100's bf16 peak): {seconds:.3f} s per sample, "
        f"{3600 / seconds:.0f} samples ({3600 / seconds * r['audio_seconds'] / 3600:.0f} h of audio) per hour"),
        f"static memory: {r['static_gb']['fp32']:.1f} GB (32-true), {r['static_gb']['bf16']:.1f} GB (bf16-mixed)",
        ("activations per sample and the largest batch that fits (GB of the GPU, "
        f"{RESERVED_GB} GB kept for CUDA):"),
    ]
    for kind, per in r["activation_gb_per_sample"].items():
        fits = ", ".join(f"{gb} GB: {n}" for gb, n in r["max_batch"][kind].items())
        lines.append(f"  {kind:10s} {per:6.2f} GB/sample   {fits}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-config", default=str(DEFAULT_CONFIG))
    p.add_argument("--seconds", type=float, default=None, help="audio per sample (default: the config's sample_size)")
    p.add_argument("--tflops", type=float, default=125.0, help="sustained TFLOP/s of the GPU for the time estimate")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    result = estimate(args.model_config, args.seconds)
    print(json.dumps(result, indent=2) if args.json else report(result, args.tflops))


if __name__ == "__main__":
    main()
