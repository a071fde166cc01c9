"""Running the high-resolution layers of an encoder over time in overlapping chunks, exactly.

The first layers of an Oobleck encoder hold the largest activations (128 channels at the full sample
rate for Stable Audio Open: 676 MB per tensor for a 30 s window). Running them on chunks keeps those
tensors small (less memory, fewer page faults, better cache use). Output frame ``j`` of a conv chain
reads inputs ``[j*S - left, j*S + right]``; computed from a slice of the input it is exact when that
range lies inside the slice, or the slice edge it crosses is the signal's own edge (where the
chain pads exactly as on the whole signal). Each chunk is widened by ``left``/``right`` for that.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def run_chunked(fn: Callable[[Tensor], Tensor], x: Tensor, stride: int, left: int, right: int,
                chunk: int) -> Tensor:
    """``fn(x)`` computed over time chunks of about ``chunk`` input samples.

    Args:
        fn: a conv chain ``[B, C, 1, T] -> [B, C', 1, T // stride]`` for ``T`` a multiple of ``stride``.
        x: ``[B, C, 1, T]``, ``T`` a multiple of ``stride``.
        stride, left, right: the chain's total stride and receptive field (see ``field_of``).
        chunk: output frames per chunk times ``stride`` (rounded up to a multiple of ``stride``).

    Returns:
        ``[B, C', 1, T // stride]``, equal to ``fn(x)`` up to float rounding.
    """
    total = x.shape[-1]
    frames = total // stride
    per_chunk = max(1, -(-chunk // stride))
    if frames <= per_chunk:
        return fn(x)
    out: Tensor | None = None
    for a in range(0, frames, per_chunk):
        b = min(frames, a + per_chunk)
        lo = max(0, a * stride - left) // stride * stride
        hi = min(total, -(-((b - 1) * stride + right + 1) // stride) * stride)
        y = fn(x[..., lo:hi])
        if out is None:
            out = torch.empty(*y.shape[:-1], frames, dtype=y.dtype, device=y.device,
                              memory_format=torch.channels_last if y.ndim == 4 else torch.contiguous_format)
        out[..., a:b] = y[..., a - lo // stride:b - lo // stride]
    assert out is not None
    return out
