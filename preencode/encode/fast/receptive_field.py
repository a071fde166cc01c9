"""Receptive fields of the Oobleck encoder, derived from its config.

Every layer is a 1-D convolution ``(kernel, stride, dilation, padding)``: output ``i`` reads inputs
``i*stride - padding ... i*stride - padding + dilation*(kernel-1)``. A residual unit ``x + f(x)``
reads the union of what ``x`` and ``f(x)`` read, which is what ``f`` reads (its convs are centred).
Composing the layers backwards gives, for latent frame ``j``, the input samples
``[j*hop - left, j*hop + right]`` (positions outside ``[0, T)`` are the encoder's zero padding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ...models.config import OobleckConfig

RESIDUAL_DILATIONS = (1, 3, 9)
RESIDUAL_KERNEL = 7
STEM_KERNEL = 7
HEAD_KERNEL = 3


@dataclass(frozen=True)
class ConvSpec:
    kernel: int
    stride: int = 1
    dilation: int = 1
    padding: int = 0


def encoder_convs(cfg: OobleckConfig) -> list[ConvSpec]:
    """The encoder's convolutions in order, as far as they shape the receptive field.

    The k=1 convs of residual units change nothing and are left out.
    """
    convs = [ConvSpec(STEM_KERNEL, padding=STEM_KERNEL // 2)]
    for stride in cfg.strides:
        convs += [ConvSpec(RESIDUAL_KERNEL, dilation=d, padding=d * (RESIDUAL_KERNEL // 2))
                  for d in RESIDUAL_DILATIONS]
        convs.append(ConvSpec(2 * stride, stride=stride, padding=math.ceil(stride / 2)))
    convs.append(ConvSpec(HEAD_KERNEL, padding=HEAD_KERNEL // 2))
    return convs


def field_of(convs: list[ConvSpec]) -> tuple[int, int]:
    """``(left, right)`` of a chain of convs: output ``j`` reads inputs ``[j*S - left, j*S + right]``,
    ``S`` the product of the strides."""
    lo = hi = 0
    for conv in reversed(convs):
        lo = conv.stride * lo - conv.padding
        hi = conv.stride * hi - conv.padding + conv.dilation * (conv.kernel - 1)
    return -lo, hi


def receptive_field(cfg: OobleckConfig) -> tuple[int, int]:
    """``(left, right)``: latent frame ``j`` depends on input samples ``[j*hop - left, j*hop + right]``.

    For Stable Audio Open's VAE (strides 2, 4, 4, 8, 8) this is ``(14885, 16932)`` samples, about 7.3
    and 8.3 latent frames of 2048.
    """
    return field_of(encoder_convs(cfg))
