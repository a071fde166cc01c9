"""Building blocks: weight-normalised convolutions and the Snake/ELU activations.

Parameter names follow stable-audio-tools exactly (``weight_g``, ``weight_v``, ``bias``, ``alpha``,
``beta``) so that released checkpoints load strictly.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class WNConv1d(nn.Module):
    """A weight-normalised 1-D convolution (or transposed convolution).

    The effective weight is ``g * v / ||v||`` with the norm over every dim but 0 (for a transposed
    convolution dim 0 is the input channels, as in ``torch.nn.utils.weight_norm``). After
    :meth:`fold` the weight is stored once as a plain tensor and ``g``/``v`` are dropped.

    Shapes: input ``[B, C_in, T]``, output ``[B, C_out, T']``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int | str = 0, dilation: int = 1, bias: bool = True, transposed: bool = False) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding, self.dilation = kernel_size, stride, padding, dilation
        self.transposed = transposed
        shape = (in_channels, out_channels, kernel_size) if transposed else (out_channels, in_channels, kernel_size)
        v = torch.empty(shape)
        nn.init.kaiming_uniform_(v, a=math.sqrt(5))
        self.weight_v = nn.Parameter(v)
        self.weight_g = nn.Parameter(v.norm(dim=(1, 2), keepdim=True).clone())
        if bias:
            fan_in = shape[1] * kernel_size
            bound = 1 / math.sqrt(fan_in)
            self.bias = nn.Parameter(torch.empty(out_channels).uniform_(-bound, bound))
        else:
            self.register_parameter("bias", None)
        self.folded = False

    def effective_weight(self) -> Tensor:
        if self.folded:
            return self.weight
        v = self.weight_v
        return self.weight_g * v / v.norm(dim=(1, 2), keepdim=True)

    @torch.no_grad()
    def fold(self) -> None:
        """Replace ``weight_g``/``weight_v`` by the plain weight they define (inference speed)."""
        if self.folded:
            return
        weight = self.effective_weight().detach().clone()
        del self.weight_v, self.weight_g
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.folded = True

    def forward(self, x: Tensor) -> Tensor:
        w = self.effective_weight()
        if self.transposed:
            if isinstance(self.padding, str):  # the decoder's configs give numbers; "same" is conv1d's alone
                raise ValueError(f"a transposed convolution needs numeric padding, got {self.padding!r}")
            return F.conv_transpose1d(x, w, self.bias, self.stride, self.padding, dilation=self.dilation)
        return F.conv1d(x, w, self.bias, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        kind = "transposed, " if self.transposed else ""
        return (f"{kind}{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, folded={self.folded}")


def snake_beta(x: Tensor, alpha: Tensor, beta: Tensor) -> Tensor:
    """SnakeBeta with already exponentiated ``alpha``/``beta`` of shape ``[1, C, 1]``."""
    return x + (1.0 / (beta + 1e-9)) * torch.sin(x * alpha).pow(2)


class SnakeBeta(nn.Module):
    """SnakeBeta activation, ``x + 1/beta * sin(alpha * x)^2``, with log-scale ``alpha``/``beta``.

    Shapes: ``[B, C, T]`` in and out.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        alpha = self.alpha.exp()[None, :, None]
        beta = self.beta.exp()[None, :, None]
        return snake_beta(x, alpha, beta)


def activation(use_snake: bool, channels: int) -> nn.Module:
    return SnakeBeta(channels) if use_snake else nn.ELU()


def fold_weight_norm(module: nn.Module) -> nn.Module:
    """Fold every :class:`WNConv1d` in ``module`` in place; returns ``module``."""
    for sub in module.modules():
        if isinstance(sub, WNConv1d):
            sub.fold()
    return module
