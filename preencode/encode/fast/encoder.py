"""An inference-only Oobleck encoder that runs the same arithmetic faster on CPU.

What changes, and why:

* Convolutions run as ``conv2d`` on ``[B, C, 1, T]`` tensors in channels-last layout: oneDNN's
  time-major kernels are faster than its ``conv1d`` path for these shapes, and the 1x1 convs
  become plain matrix products over time.
* SnakeBeta uses precomputed ``exp(alpha)`` and ``1 / (exp(beta) + 1e-9)`` and runs as one fused
  kernel (``torch.compile``) or, without a compiler, with in-place ops on one temporary.
* Residual additions are done in place on the branch output, so the input is freed at once.
* The first ``chunk_blocks`` blocks (the largest activations) run over time in overlapping chunks
  (:mod:`.time_chunks`), exact by receptive field: less memory and fewer page faults on long windows.

Built from a folded encoder (see :meth:`AudioAutoencoder.fold_weight_norm`); the state-dict layout
of the original model is untouched because this is only built for inference.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ...models.autoencoder import AudioAutoencoder
from ...models.layers import SnakeBeta, WNConv1d
from ...models.oobleck import EncoderBlock, OobleckEncoder, ResidualUnit
from .receptive_field import ConvSpec, field_of
from .time_chunks import run_chunked

log = logging.getLogger(__name__)

SnakeFn = Callable[[Tensor, Tensor, Tensor], Tensor]
DEFAULT_CHUNK = 1 << 16  # input samples per chunk of the high-resolution blocks
DEFAULT_CHUNK_BLOCKS = 2


def snake_inplace(x: Tensor, alpha: Tensor, inv_beta: Tensor) -> Tensor:
    """``x + inv_beta * sin(alpha * x)^2`` with one temporary; ``x`` is left unchanged."""
    out = torch.mul(x, alpha)
    out.sin_().square_().mul_(inv_beta).add_(x)
    return out


def snake_expr(x: Tensor, alpha: Tensor, inv_beta: Tensor) -> Tensor:
    """The same as :func:`snake_inplace` as one expression, for ``torch.compile`` to fuse."""
    return x + inv_beta * torch.sin(x * alpha).square()


class FastSnake(nn.Module):
    """SnakeBeta with precomputed parameters. ``[B, C, 1, T]`` in and out."""

    alpha: Tensor  # [1, C, 1, 1] buffer
    inv_beta: Tensor  # [1, C, 1, 1] buffer

    def __init__(self, snake: SnakeBeta, fn: SnakeFn) -> None:
        super().__init__()
        self.register_buffer("alpha", snake.alpha.detach().exp().view(1, -1, 1, 1).clone())
        self.register_buffer("inv_beta", (1.0 / (snake.beta.detach().exp() + 1e-9)).view(1, -1, 1, 1))
        self.fn = fn

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x, self.alpha, self.inv_beta)


class FastConv(nn.Module):
    """A folded :class:`WNConv1d` as a channels-last ``conv2d``. ``[B, C_in, 1, T]`` -> ``[B, C_out, 1, T']``."""

    weight: Tensor  # [C_out, C_in, 1, K] buffer, channels-last
    bias: Tensor | None

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        if not isinstance(conv, WNConv1d):
            raise TypeError(f"expected a WNConv1d, got {type(conv).__name__}")
        if not conv.folded or conv.transposed or isinstance(conv.padding, str):
            raise ValueError("FastConv needs a folded, non-transposed WNConv1d with numeric padding")
        weight = conv.weight.detach().unsqueeze(2).contiguous(memory_format=torch.channels_last)
        self.register_buffer("weight", weight)
        self.register_buffer("bias", None if conv.bias is None else conv.bias.detach().clone())
        self.stride, self.padding, self.dilation = (1, conv.stride), (0, conv.padding), (1, conv.dilation)
        self.spec = ConvSpec(conv.kernel_size, conv.stride, conv.dilation, conv.padding)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)


def _activation(module: nn.Module, snake_fn: SnakeFn) -> nn.Module:
    if isinstance(module, SnakeBeta):
        return FastSnake(module, snake_fn)
    return module  # ELU is elementwise and layout-agnostic


class FastResidualUnit(nn.Module):
    def __init__(self, unit: nn.Module, snake_fn: SnakeFn) -> None:
        super().__init__()
        if not isinstance(unit, ResidualUnit):
            raise TypeError(f"expected a ResidualUnit, got {type(unit).__name__}")
        act1, conv1, act2, conv2 = unit.layers
        self.layers = nn.Sequential(_activation(act1, snake_fn), FastConv(conv1),
                                    _activation(act2, snake_fn), FastConv(conv2))

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x).add_(x)


class FastOobleckEncoder(nn.Module):
    """Inference-only twin of a folded :class:`OobleckEncoder`: ``[B, C, T]`` -> ``[B, C_enc, T / hop]``.

    Args:
        encoder: folded encoder to copy the weights from.
        snake_fn: the SnakeBeta implementation.
        chunk: input samples per chunk for the first ``chunk_blocks`` blocks; None runs them whole.
    """

    def __init__(self, encoder: OobleckEncoder, snake_fn: SnakeFn = snake_inplace,
                 chunk: int | None = DEFAULT_CHUNK, chunk_blocks: int = DEFAULT_CHUNK_BLOCKS) -> None:
        super().__init__()
        self.cfg = encoder.cfg
        head: list[nn.Module] = []
        tail: list[nn.Module] = []
        blocks = 0
        for module in encoder.layers:
            target = head if blocks < chunk_blocks else tail
            if isinstance(module, WNConv1d):
                target.append(FastConv(module))
            elif isinstance(module, EncoderBlock):
                *units, act, down = module.layers
                target += [FastResidualUnit(u, snake_fn) for u in units]
                target += [_activation(act, snake_fn), FastConv(down)]
                blocks += 1
            else:
                target.append(_activation(module, snake_fn))
        self.head, self.tail = nn.Sequential(*head), nn.Sequential(*tail)
        specs = [m.spec for m in self.head.modules() if isinstance(m, FastConv)]
        self.head_stride = math.prod(c.stride for c in specs)
        self.head_left, self.head_right = field_of(specs)
        self.chunk = chunk

    def forward(self, x: Tensor) -> Tensor:
        x = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        if self.chunk:
            x = run_chunked(self.head, x, self.head_stride, self.head_left, self.head_right, self.chunk)
        else:
            x = self.head(x)
        return self.tail(x).squeeze(2).contiguous()


def compiled_snake() -> SnakeFn | None:
    """:func:`snake_expr` compiled into one kernel, or None where ``torch.compile`` does not work here."""
    try:
        fn = torch.compile(snake_expr, dynamic=True)
        # Probed as it is used (parameters made outside, activations inside inference mode, batch
        # 1, channels-last) so that the graph compiled here is the one used later.
        a, b = torch.rand(1, 3, 1, 1) + 0.5, torch.rand(1, 3, 1, 1) + 0.5
        with torch.inference_mode():
            x = torch.randn(1, 3, 1, 5).contiguous(memory_format=torch.channels_last)
            ok = torch.allclose(fn(x, a, b), snake_inplace(x, a, b), atol=1e-6)
    except Exception as err:
        log.info("torch.compile is not usable here (%s: %s); using the eager SnakeBeta.",
                 type(err).__name__, str(err).splitlines()[0] if str(err) else "")
        return None
    return fn if ok else None


def set_cpu_threads() -> int:
    """Use one thread per physical core unless the user chose (``OMP_NUM_THREADS``); returns the count."""
    if "OMP_NUM_THREADS" in os.environ:
        return torch.get_num_threads()
    cores = _physical_cores()
    if cores and torch.get_num_threads() != cores:
        torch.set_num_threads(cores)
    return torch.get_num_threads()


def _physical_cores() -> int | None:
    try:
        with open("/proc/cpuinfo") as f:
            ids = {line.split(":", 1)[1].strip() for line in f if line.startswith("core id")}
            f.seek(0)
            packages = {line.split(":", 1)[1].strip() for line in f if line.startswith("physical id")}
    except OSError:
        return os.cpu_count()
    return len(ids) * max(len(packages), 1) if ids else os.cpu_count()


def optimize_for_inference(model: AudioAutoencoder, compile: bool | str = "auto",
                           chunk: int | str | None = "auto") -> AudioAutoencoder:
    """Swap in a faster encoder (same numbers within float rounding); returns ``model``.

    Call after the weights are loaded and folded (:func:`load_autoencoder` does both). Only the
    encoder changes; the model is for inference from then on.

    Args:
        model: a folded autoencoder with an Oobleck encoder.
        compile: ``True`` fuses SnakeBeta with ``torch.compile`` (raises if that fails), ``False``
            never compiles, ``"auto"`` compiles on CPU where a compiler works.
        chunk: input samples per time chunk of the high-resolution blocks, None for no chunking,
            ``"auto"``: 65536 on CPU, None elsewhere.

    Raises:
        ValueError: the model is not folded, or ``compile`` is not a bool or ``"auto"``.
        TypeError: the encoder is not an Oobleck encoder.
        RuntimeError: ``compile=True`` and ``torch.compile`` does not work here.
    """
    if compile not in (True, False, "auto"):
        raise ValueError(f"compile must be True, False or 'auto', got {compile!r}")
    encoder = model.encoder
    if isinstance(encoder, FastOobleckEncoder):
        return model
    if not isinstance(encoder, OobleckEncoder):
        raise TypeError(f"expected an OobleckEncoder, got {type(encoder).__name__}")
    if not all(m.folded for m in encoder.modules() if isinstance(m, WNConv1d)):
        raise ValueError("fold the weight norm first (model.fold_weight_norm(), done by load_autoencoder)")
    if model.device.type == "cpu":
        set_cpu_threads()
    snake_fn: SnakeFn = snake_inplace
    if compile is True or (compile == "auto" and model.device.type == "cpu"):
        fused = compiled_snake()
        if fused is None and compile is True:
            raise RuntimeError("torch.compile does not work on this machine; pass compile=False")
        snake_fn = fused or snake_inplace
    chunk_size = (DEFAULT_CHUNK if model.device.type == "cpu" else None) if chunk == "auto" else chunk
    if isinstance(chunk_size, str):
        raise ValueError(f"chunk must be 'auto', None or a number of samples, got {chunk!r}")
    model.encoder = FastOobleckEncoder(encoder, snake_fn, chunk=chunk_size).to(model.device)
    model.eval().requires_grad_(False)
    log.info("Encoder optimised for inference (%s SnakeBeta, %d threads).",
             "compiled" if snake_fn is not snake_inplace else "in-place", torch.get_num_threads())
    return model
