"""``model.bottleneck`` of an autoencoder config: its type and its ``config``, validated at parse time.

Every bottleneck type has a typed settings class with stable-audio-tools' keys and defaults; unknown
keys are reported with a did-you-mean and their JSON path, like the rest of the model config, and
options we do not implement are refused here rather than when the model is built.

    vae, l2_norm    no settings
    tanh            scale
    dac_rvq         input_dim, n_codebooks, codebook_size, codebook_dim, quantizer_dropout
                    (+ quantize_on_decode: false, noise_augment_dim: 0)
    fsq             levels, dim, num_codebooks (+ noise_augment_dim: 0, and vector-quantize-pytorch
                    options that do not change the tokens)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..schema import Node, describe

CONTINUOUS_BOTTLENECKS = ("vae", "tanh", "l2_norm", "l2")
DISCRETE_BOTTLENECKS = ("dac_rvq", "fsq")
BOTTLENECK_TYPES = CONTINUOUS_BOTTLENECKS + DISCRETE_BOTTLENECKS

# vector-quantize-pytorch's FSQ options that change the layout of its outputs or nothing at all
# here (we always quantise in float32, channels first, and return indices): accepted, not used.
_FSQ_NO_EFFECT = ("keep_num_codebooks_dim", "scale", "force_quantization_f32", "channel_first", "return_indices")


@dataclass(frozen=True)
class TanhSettings:
    scale: float = 1.0


@dataclass(frozen=True)
class DacRvqSettings:
    """descript-audio-codec's ``ResidualVectorQuantize`` (``codebook_dims``: one per quantizer)."""

    input_dim: int = 512
    n_codebooks: int = 9
    codebook_size: int = 1024
    codebook_dims: tuple[int, ...] = (8,) * 9
    quantizer_dropout: float = 0.0


@dataclass(frozen=True)
class FsqSettings:
    """vector-quantize-pytorch's ``FSQ``: ``dim`` None means ``len(levels) * num_codebooks``."""

    levels: tuple[int, ...] = ()
    dim: int | None = None
    num_codebooks: int = 1


Settings = TanhSettings | DacRvqSettings | FsqSettings | None


@dataclass(frozen=True)
class BottleneckConfig:
    """``model.bottleneck``: ``type`` (None: no bottleneck), ``config`` as given, ``settings`` parsed."""

    type: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    settings: Settings = None

    @property
    def is_discrete(self) -> bool:
        return self.type in DISCRETE_BOTTLENECKS

    @property
    def num_quantizers(self) -> int | None:
        """Tokens per frame of a discrete bottleneck (None for a continuous one)."""
        if isinstance(self.settings, DacRvqSettings):
            return self.settings.n_codebooks
        if isinstance(self.settings, FsqSettings):
            return self.settings.num_codebooks
        return None

    @property
    def codebook_size(self) -> int | None:
        """Distinct token values of a discrete bottleneck (None for a continuous one)."""
        if isinstance(self.settings, DacRvqSettings):
            return self.settings.codebook_size
        if isinstance(self.settings, FsqSettings):
            return math.prod(self.settings.levels)
        return None


def parse_bottleneck(node: Node | None) -> BottleneckConfig:
    """Validate ``model.bottleneck``; problems are recorded on ``node`` with their JSON paths."""
    if node is None:
        return BottleneckConfig()
    kind = node.choice("type", BOTTLENECK_TYPES, what="bottleneck type")
    node.bool("requires_grad", True)
    cfg = node.obj("config", required=False) or Node({}, node.key_path("config"), node.problems)
    node.check_unknown()
    settings: Settings = None
    if kind == "tanh":
        settings = TanhSettings(scale=_positive_number(cfg, "scale", 1.0))
    elif kind == "dac_rvq":
        settings = _dac_rvq(cfg)
    elif kind == "fsq":
        settings = _fsq(cfg)
    if kind is not None:  # an unknown type is reported already; its keys would only add noise
        cfg.check_unknown()
    return BottleneckConfig(type=kind, config=dict(cfg.data), settings=settings)


def _positive_number(cfg: Node, key: str, default: float) -> float:
    value = cfg.number(key, default)
    if cfg.valid(key) and value <= 0:
        cfg.problem(key, f"expected a number > 0, got {describe(value)}")
    return float(value)


def _only(cfg: Node, key: str, allowed: Any, why: str) -> None:
    """``key`` may be given, but only with the one value we implement."""
    value = cfg.raw(key, allowed)
    if value != allowed or isinstance(value, bool) != isinstance(allowed, bool):
        cfg.problem(key, f"only {describe(allowed)} is supported ({why}), got {describe(value)}")


def _dac_rvq(cfg: Node) -> DacRvqSettings:
    defaults = DacRvqSettings()
    n_codebooks = cfg.int("n_codebooks", defaults.n_codebooks, minimum=1)
    raw_dims = cfg.raw("codebook_dim", 8)
    if isinstance(raw_dims, int) and not isinstance(raw_dims, bool) and raw_dims >= 1:
        dims: tuple[int, ...] = (raw_dims,) * n_codebooks
    elif (isinstance(raw_dims, list) and raw_dims and len(raw_dims) == n_codebooks
          and all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in raw_dims)):
        dims = tuple(raw_dims)
    else:
        cfg.problem("codebook_dim", f"expected an integer >= 1 or a list of n_codebooks ({n_codebooks}) such "
                    f"integers, got {describe(raw_dims)}")
        dims = defaults.codebook_dims
    dropout = cfg.number("quantizer_dropout", defaults.quantizer_dropout)
    if cfg.valid("quantizer_dropout") and not 0 <= dropout <= 1:
        cfg.problem("quantizer_dropout", f"expected a number from 0 to 1, got {describe(dropout)}")
    _only(cfg, "quantize_on_decode", False, "quantisation happens when encoding")
    _only(cfg, "noise_augment_dim", 0, "noise augmentation is a training option")
    return DacRvqSettings(input_dim=cfg.int("input_dim", defaults.input_dim, minimum=1), n_codebooks=n_codebooks,
                          codebook_size=cfg.int("codebook_size", defaults.codebook_size, minimum=1),
                          codebook_dims=dims, quantizer_dropout=float(dropout))


def _fsq(cfg: Node) -> FsqSettings:
    levels = cfg.int_list("levels", minimum=2)
    if cfg.valid("levels") and not levels:
        cfg.problem("levels", "expected at least one level")
    settings = FsqSettings(levels=tuple(levels), dim=cfg.int("dim", None, minimum=1),
                           num_codebooks=cfg.int("num_codebooks", 1, minimum=1))
    _only(cfg, "noise_augment_dim", 0, "noise augmentation is a training option")
    _only(cfg, "projection_has_bias", True, "the projections have a bias")
    _only(cfg, "preserve_symmetry", False, "it quantises to other values")
    for key in _FSQ_NO_EFFECT:
        cfg.raw(key, None)
    return settings
