"""Limits that protect the machine: a window whose encoding would not fit in memory is refused, and no
more loader workers than cores are started.

The encoder's peak memory is estimated from the Oobleck config, before anything is built. At each
stage of the encoder (the stem, then one block per stride) a few tensors of the stage's width and
length are alive at once (the block input kept for the residual, the activation, the convolution's
output and SnakeBeta's temporaries): :data:`LIVE_TENSORS` of them. The fast CPU encoder runs its first
blocks over time chunks (:mod:`preencode.encode.fast.time_chunks`), so there the chunk's length counts,
plus the full-length output of those blocks. Measured for Stable Audio Open's VAE on a 30 s window at
batch size 1 (``benchmarks/sao_window_memory.py``, peak RSS minus the loaded model): plain encoder 4.8 GB,
estimate 5.4 GB; fast encoder 1.3 GB, estimate 1.5 GB. The model's weights are not counted. Decoded
windows waiting in the loader's queue count too (:data:`INPUT_COPIES` per window of the batch being
encoded, one per queued batch).
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any

from ...errors import UserError
from ...models.config import AutoencoderConfig
from ..fast.encoder import DEFAULT_CHUNK, DEFAULT_CHUNK_BLOCKS
from ..fast.receptive_field import encoder_convs, field_of
from .options import EncodeOptions

log = logging.getLogger(__name__)

LIVE_TENSORS = 8
#: The collated batch, its copy in the model's dtype/layout, the channels-last copy of the fast encoder.
INPUT_COPIES = 3
#: Batches each loader worker decodes ahead (the DataLoader's prefetch_factor).
PREFETCH_BATCHES = 4
_GIB = 1 << 30


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, which containers and ``taskset`` set)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def cap_workers(requested: int) -> int:
    """``--num-workers`` capped at the usable cores, with one notice when it is lowered.

    More decoding processes than cores only compete with each other and with the encoder.
    """
    cores = usable_cores()
    if requested <= cores:
        return requested
    log.info("--num-workers %d is more than the %d CPU core(s) this process may use; using %d loader worker(s).",
             requested, cores, cores)
    return cores


def encoder_peak_bytes(config: AutoencoderConfig, samples: int, batch: int = 1, chunk: int | None = None,
                       bytes_per_value: int = 4) -> int:
    """Estimated peak bytes of the encoder's activations for ``batch`` windows of ``samples`` samples.

    Args:
        config: the autoencoder config (an Oobleck encoder).
        samples: input samples per window.
        batch: windows per forward pass.
        chunk: the time chunk of the fast CPU encoder's first blocks (None: whole windows, as on GPUs).
        bytes_per_value: 4 for float32, 2 for float16.
    """
    enc = config.encoder
    widths, strides = enc.widths, enc.strides
    head_blocks = min(DEFAULT_CHUNK_BLOCKS, len(strides))
    chunk_samples = None
    head_output = 0
    if chunk:
        left, right = field_of(encoder_convs(enc)[:1 + 4 * head_blocks])
        chunk_samples = chunk + left + right
        head_output = widths[head_blocks] * (samples // math.prod(strides[:head_blocks]))
    peak, hop = 0, 1
    for i, stride in enumerate(strides):
        length = samples // hop
        if chunk_samples is not None and i < head_blocks:
            length = min(length, chunk_samples // hop)
        peak = max(peak, LIVE_TENSORS * widths[i] * length)
        hop *= stride
    return batch * (peak + head_output) * bytes_per_value


def input_bytes(config: AutoencoderConfig, samples: int, batch: int, workers: int) -> int:
    """Bytes of decoded windows in flight: the batch being encoded and the batches queued by the workers."""
    queued = workers * PREFETCH_BATCHES
    return batch * config.in_channels * samples * 4 * (INPUT_COPIES + queued)


def _available_ram() -> int | None:
    """Memory this process can still get: MemAvailable, capped by a cgroup (container) limit."""
    available = None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current", encoding="ascii") as f:
            used = int(f.read().strip())
        if limit.isdigit():
            left = int(limit) - used
            available = left if available is None else min(available, left)
    except (OSError, ValueError):
        pass
    return available


def _gpu_memory() -> int | None:
    import torch

    if not torch.cuda.is_available():
        return None
    return min(torch.cuda.get_device_properties(i).total_memory for i in range(torch.cuda.device_count()))


def available_memory(on_gpu: bool) -> tuple[int | None, str]:
    """(bytes, what) the encoder may use: a GPU's memory where it runs on one, else the RAM available."""
    if on_gpu:
        gpu = _gpu_memory()
        if gpu is not None:
            return gpu, "GPU memory"
    return _available_ram(), "RAM available"


def _plan(opts: EncodeOptions, config: AutoencoderConfig, samples: int) -> dict[str, Any]:
    from .speed import runs_on_cpu

    on_cpu = runs_on_cpu(opts.accelerator)
    chunk = DEFAULT_CHUNK if on_cpu and opts.compile != "none" else None
    half = opts.model_half and not on_cpu
    encoder = encoder_peak_bytes(config, samples, opts.batch_size, chunk, 2 if half else 4)
    inputs = input_bytes(config, samples, opts.batch_size, min(opts.num_workers, usable_cores()))
    return {"on_gpu": not on_cpu, "encoder": encoder, "inputs": inputs}


def check_window_memory(opts: EncodeOptions, config: AutoencoderConfig) -> None:
    """Refuse a ``--sample-size`` (times ``--batch-size``) whose encoding would not fit in memory.

    With ``--full-length`` the encoder sees chunks of ``--sample-size`` plus the receptive-field margins.

    Raises:
        UserError: with the estimate, the memory available and the largest sample size that fits.
    """
    margin = 0
    if opts.full_length:
        from ..full_length.chunks import chunk_margin

        margin = 2 * chunk_margin(config)
    plan = _plan(opts, config, opts.sample_size + margin)
    available, what = available_memory(plan["on_gpu"])
    if available is None:
        return
    need = plan["encoder"] + (0 if plan["on_gpu"] else plan["inputs"])
    if need <= available:
        return
    ratio = config.downsampling_ratio
    # The suggestion leaves half the memory for the model, the loader and everything else.
    fits = max(ratio, int(opts.sample_size * available / 2 / need) // ratio * ratio)
    raise UserError(f"--sample-size {opts.sample_size} with --batch-size {opts.batch_size} would need about "
                    f"{need / _GIB:.1f} GiB to encode (estimated from the model config), more than the "
                    f"{available / _GIB:.1f} GiB of {what}.",
                    f"Use a --sample-size of about {fits} or less (or a smaller --batch-size); to encode long "
                    "files completely, add --full-length: they are then encoded in chunks of --sample-size.")
