"""Bottlenecks between encoder and decoder: continuous (vae, tanh, l2_norm) and discrete (dac_rvq, fsq).

Parameter names follow stable-audio-tools so checkpoints load strictly. Each bottleneck declares how
many channels it expects from the encoder (:meth:`Bottleneck.input_channels`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .bottleneck_config import BottleneckConfig, DacRvqSettings, FsqSettings, TanhSettings
from .layers import WNConv1d

POSTERIORS = ("sample", "mean")


class Bottleneck(nn.Module):
    """Maps pre-bottleneck latents ``[B, C_enc, N]`` to latents ``[B, latent_dim, N]``."""

    is_discrete = False

    def encode(self, x: Tensor, posterior: str = "sample", noise: Tensor | None = None) -> Tensor:
        return x

    def decode(self, z: Tensor) -> Tensor:
        return z


class VAEBottleneck(Bottleneck):
    """Diagonal Gaussian posterior: the input splits into mean and scale; std = softplus(scale) + 1e-4."""

    @staticmethod
    def posterior_params(x: Tensor) -> tuple[Tensor, Tensor]:
        """``[B, 2D, N]`` -> mean ``[B, D, N]``, std ``[B, D, N]``."""
        mean, scale = x.chunk(2, dim=1)
        return mean, F.softplus(scale) + 1e-4

    def encode(self, x: Tensor, posterior: str = "sample", noise: Tensor | None = None) -> Tensor:
        mean, std = self.posterior_params(x)
        if posterior == "mean":
            return mean
        if noise is None:
            noise = torch.randn_like(mean)
        return mean + std * noise.to(mean.dtype)


class TanhBottleneck(Bottleneck):
    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale

    def encode(self, x: Tensor, posterior: str = "sample", noise: Tensor | None = None) -> Tensor:
        return torch.tanh(x / self.scale) * self.scale


class L2Bottleneck(Bottleneck):
    def encode(self, x: Tensor, posterior: str = "sample", noise: Tensor | None = None) -> Tensor:
        return F.normalize(x, dim=1)


class DiscreteBottleneck(Bottleneck):
    is_discrete = True
    num_quantizers: int
    codebook_size: int

    def tokens(self, x: Tensor) -> Tensor:
        """Integer tokens ``[B, num_quantizers, N]`` (int64) for pre-bottleneck latents ``[B, C, N]``."""
        raise NotImplementedError

    @property
    def token_dtype(self) -> np.dtype:
        """The smallest integer dtype that holds every token of the codebook."""
        for dtype in (np.uint8, np.uint16, np.int32):
            if self.codebook_size - 1 <= np.iinfo(dtype).max:
                return np.dtype(dtype)
        return np.dtype(np.int64)


class _VectorQuantizer(nn.Module):
    """One stage of DAC's residual VQ: project, nearest (cosine) codeword, project back."""

    def __init__(self, input_dim: int, codebook_size: int, codebook_dim: int) -> None:
        super().__init__()
        self.in_proj = WNConv1d(input_dim, codebook_dim, kernel_size=1)
        self.out_proj = WNConv1d(codebook_dim, input_dim, kernel_size=1)
        self.codebook = nn.Embedding(codebook_size, codebook_dim)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``[B, D, N]`` -> (quantized ``[B, D, N]``, indices ``[B, N]``)."""
        z_e = self.in_proj(z)
        b, d, n = z_e.shape
        enc = F.normalize(z_e.transpose(1, 2).reshape(b * n, d).float(), dim=1)
        book = F.normalize(self.codebook.weight.float(), dim=1)
        dist = enc.pow(2).sum(1, keepdim=True) - 2 * enc @ book.t() + book.pow(2).sum(1, keepdim=True).t()
        indices = dist.argmin(dim=1).view(b, n)
        z_q = self.codebook(indices).transpose(1, 2).to(z.dtype)
        return self.out_proj(z_q), indices


class _Quantizers(nn.Module):
    """Holds the quantizers under the reference's key names (``quantizer.quantizers.<i>``)."""

    quantizers: nn.ModuleList


class _Projections(nn.Module):
    """Holds FSQ's projections under the reference's key names (``quantizer.project_in/out``)."""

    project_in: nn.Module
    project_out: nn.Module


class DACRVQBottleneck(DiscreteBottleneck):
    """Residual vector quantisation in the layout of stable-audio-tools' ``dac_rvq``."""

    def __init__(self, input_dim: int = 512, n_codebooks: int = 9, codebook_size: int = 1024,
                 codebook_dim: int | list[int] = 8) -> None:
        super().__init__()
        dims = codebook_dim if isinstance(codebook_dim, list) else [codebook_dim] * n_codebooks
        self.num_quantizers, self.codebook_size = n_codebooks, codebook_size
        self.quantizer = _Quantizers()
        self.quantizer.quantizers = nn.ModuleList(
            _VectorQuantizer(input_dim, codebook_size, d) for d in dims)

    def _run(self, x: Tensor) -> tuple[Tensor, Tensor]:
        residual, z_q, codes = x, torch.zeros_like(x), []
        for quantizer in self.quantizer.quantizers:
            q, idx = quantizer(residual)
            z_q = z_q + q
            residual = residual - q
            codes.append(idx)
        return z_q, torch.stack(codes, dim=1)

    def encode(self, x: Tensor, posterior: str = "sample", noise: Tensor | None = None) -> Tensor:
        return self._run(x)[0]

    def tokens(self, x: Tensor) -> Tensor:
        return self._run(x)[1]


class FSQBottleneck(DiscreteBottleneck):
    """Finite scalar quantisation (as vector-quantize-pytorch's ``FSQ``, one codebook per frame).

    ``dim`` is the latent size; when it differs from ``len(levels) * num_codebooks`` linear projections
    ``quantizer.project_in``/``project_out`` map to and from the quantised space.
    """

    _levels: Tensor  # [L] float32, buffer
    _basis: Tensor  # [L] int64, buffer

    def __init__(self, levels: list[int], dim: int | None = None, num_codebooks: int = 1) -> None:
        super().__init__()
        self.levels = list(levels)
        self.num_quantizers = num_codebooks
        self.codebook_size = math.prod(self.levels)
        inner = len(self.levels) * num_codebooks
        dim = dim or inner
        self.quantizer = _Projections()
        self.quantizer.project_in = nn.Linear(dim, inner) if dim != inner else nn.Identity()
        self.quantizer.project_out = nn.Linear(inner, dim) if dim != inner else nn.Identity()
        lv = torch.tensor(self.levels, dtype=torch.float32)
        self.register_buffer("_levels", lv, persistent=False)
        basis = torch.cumprod(torch.tensor([1] + self.levels[:-1], dtype=torch.float64), 0)
        self.register_buffer("_basis", basis.to(torch.int64), persistent=False)

    def _quantize(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``[B, D, N]`` -> (latents ``[B, D, N]``, tokens ``[B, num_codebooks, N]``)."""
        dtype = x.dtype
        z = self.quantizer.project_in(x.float().transpose(1, 2))  # [B, N, Q*L]
        b, n, _ = z.shape
        z = z.view(b, n, self.num_quantizers, len(self.levels))
        half_l = (self._levels - 1) * (1 + 1e-3) / 2
        offset = torch.where(self._levels % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half_l)
        q = torch.round(torch.tanh(z + shift) * half_l - offset)
        half_width = torch.div(self._levels, 2, rounding_mode="floor")
        codes = q / half_width
        idx = ((q + half_width).to(torch.int64) * self._basis).sum(-1)  # [B, N, Q]
        out = self.quantizer.project_out(codes.view(b, n, -1)).transpose(1, 2)
        return out.to(dtype), idx.transpose(1, 2)

    def encode(self, x: Tensor, posterior: str = "sample", noise: Tensor | None = None) -> Tensor:
        return self._quantize(x)[0]

    def tokens(self, x: Tensor) -> Tensor:
        return self._quantize(x)[1]


def build_bottleneck(config: BottleneckConfig) -> Bottleneck:
    """Build the bottleneck of a validated ``model.bottleneck`` (type None: no bottleneck)."""
    settings = config.settings
    if config.type == "vae":
        return VAEBottleneck()
    if config.type in ("l2_norm", "l2"):
        return L2Bottleneck()
    if isinstance(settings, TanhSettings):
        return TanhBottleneck(settings.scale)
    if isinstance(settings, DacRvqSettings):
        return DACRVQBottleneck(settings.input_dim, settings.n_codebooks, settings.codebook_size,
                                list(settings.codebook_dims))
    if isinstance(settings, FsqSettings):
        return FSQBottleneck(list(settings.levels), settings.dim, settings.num_codebooks)
    if config.type is None:
        return Bottleneck()
    raise ValueError(f"bottleneck {config.type!r} has no settings; parse the config with parse_bottleneck")
