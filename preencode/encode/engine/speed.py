"""The speed features of a job: the fast inference encoder, padding skipping, length-grouped batching.

None of them changes what is stored (beyond float rounding); ids and outputs never depend on them.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from ...models.autoencoder import AudioAutoencoder
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


def prepare_model(job: Job, model: AudioAutoencoder) -> tuple[AudioAutoencoder, Any]:
    """Optimise ``model`` for inference and return it with the engine's pre-bottleneck function.

    The fast encoder (channels-last convolutions, fused SnakeBeta, chunked high-resolution blocks) is used
    on CPUs, where it is measured; GPUs run the plain encoder (cuDNN). The pre-bottleneck function skips
    the padding of short windows unless ``--no-skip-padding``.
    """
    opts = job.options
    if runs_on_cpu(opts.accelerator) and opts.compile != "none":
        modes: dict[str, bool | str] = {"auto": "auto", "on": True, "off": False}
        compile_mode = modes[opts.compile]
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
