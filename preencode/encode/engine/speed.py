"""The speed features of a job: the fast inference encoder, padding skipping, length-grouped batching.

None of them changes what is stored (beyond float rounding); ids and outputs never depend on them.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from ...models.autoencoder import AudioAutoencoder
from ...models.config import OobleckConfig
from ..fast.encoder import optimize_for_inference
from ..fast.length_groups import length_batcher
from ..fast.padding import PaddingSkipper
from .job import Job

log = logging.getLogger(__name__)


def runs_on_cpu(accelerator: str) -> bool:
    """Whether Lightning will put the model on the CPU for this ``--accelerator``."""
    if accelerator == "cpu":
        return True
    if accelerator == "auto":
        mps = getattr(torch.backends, "mps", None)
        return not torch.cuda.is_available() and not (mps is not None and mps.is_available())
    return False


#: Measured on this project's 2-core CPU (benchmarks/startup.py): fusing SnakeBeta with torch.compile costs
#: about this many seconds per process even with torch's kernel cache warm (importing the compiler, tracing)...
COMPILE_SECONDS = 5.0
#: ... and saves about this many seconds per SnakeBeta value computed (an in-place SnakeBeta makes five passes
#: over memory, the fused kernel one).
SAVED_SECONDS_PER_VALUE = 4e-9


def snake_values_per_sample(encoder: OobleckConfig) -> float:
    """SnakeBeta values the encoder computes per input sample (per batch element): seven activations per block
    (three residual units of two, and one before the downsampling) at the block's width and rate, and the last."""
    if not encoder.use_snake:
        return 0.0
    widths, rate, total = encoder.widths, 1.0, 0.0
    for i, stride in enumerate(encoder.strides):
        total += 7 * widths[i] * rate
        rate /= stride
    return total + widths[-1] * rate


def compile_worth_it(job: Job, windows: int | None) -> bool:
    """Whether compiling SnakeBeta repays its cost for ``windows`` windows of ``--sample-size`` samples (an
    upper bound: padding is not encoded); ``None`` (unknown, e.g. ``--full-length``) counts as much."""
    if windows is None:
        return True
    per_sample = snake_values_per_sample(job.model_config.encoder)
    saved = windows * job.options.sample_size * per_sample * SAVED_SECONDS_PER_VALUE
    if saved < COMPILE_SECONDS:
        log.info("Not compiling SnakeBeta: %d window(s) to encode would save about %.1f s, compiling costs about "
                 "%.0f s (--compile on compiles anyway).", windows, saved, COMPILE_SECONDS)
        return False
    return True


def prepare_model(job: Job, model: AudioAutoencoder, windows: int | None = None) -> tuple[AudioAutoencoder, Any]:
    """Optimise ``model`` for inference and return it with the engine's pre-bottleneck function.

    The fast encoder (channels-last convolutions, SnakeBeta fused by ``torch.compile`` where that repays its
    cost for the ``windows`` still to encode, or per ``--compile``; chunked high-resolution blocks) is used on
    CPUs, where it is measured; GPUs run the plain encoder (cuDNN). The pre-bottleneck function skips the
    padding of short windows unless ``--no-skip-padding``.
    """
    opts = job.options
    if runs_on_cpu(opts.accelerator):
        compile_mode: bool | str = {"on": True, "off": False}.get(opts.compile, "auto")
        if compile_mode == "auto" and not compile_worth_it(job, windows):
            compile_mode = False
        model = optimize_for_inference(model, compile=compile_mode)
    if not opts.skip_padding:
        return model, None
    return model, PaddingSkipper(model)


def batching_for(job: Job, plan: Any) -> Any:
    """Batches of inputs of similar length (the file size stands in for the duration: no extra I/O).

    Only useful with padding skipped and more than one window per batch.
    """
    opts = job.options
    if not opts.skip_padding or opts.batch_size == 1:
        return None
    items = plan.items

    def size_of(index: int) -> int:
        item = items[index]
        member = getattr(item, "member", None)
        if member is not None:
            return int(member.size)
        return int(getattr(item.fingerprint, "size", None) or 0)

    return length_batcher(size_of)
