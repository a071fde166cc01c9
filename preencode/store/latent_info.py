"""The numbers that describe stored latents (:class:`LatentInfo`), gathered loosely from what a tree holds.

Our details file has a ``latent`` section (latent_dim, downsampling_ratio, sample_rate, dtype,
is_discrete, num_quantizers, posterior) and the full model config. The reference's holds only the
*path* of the model config; when that file (or one passed by the user) can be read, the numbers are
taken from it, otherwise they stay unknown and the tools degrade (fewer checks, estimated hours).
Nothing here raises on odd values: they become unknown.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from ..models.bottleneck_config import DISCRETE_BOTTLENECKS, parse_bottleneck
from ..schema import Node


@dataclass(frozen=True)
class LatentInfo:
    """The numbers that describe the stored latents; ``None`` where unknown.

    Attributes:
        latent_dim: latent channels of a continuous latent ``[latent_dim, N]``.
        downsampling_ratio: audio samples per latent frame.
        sample_rate: audio sample rate in Hz.
        dtype: numpy dtype name of the stored arrays (``"float32"``, ``"uint16"``...).
        is_discrete: whether the arrays are integer tokens ``[num_quantizers, N]``.
        num_quantizers: rows of a token array.
        posterior: ``"sample"`` or ``"mean"`` for a VAE, else ``None``.
        source: where these numbers were read from (for reports).
    """

    latent_dim: int | None = None
    downsampling_ratio: int | None = None
    sample_rate: int | None = None
    dtype: str | None = None
    is_discrete: bool | None = None
    num_quantizers: int | None = None
    posterior: str | None = None
    source: str = "unknown"

    @property
    def channels(self) -> int | None:
        """Expected rows of a stored array: ``num_quantizers`` for tokens, else ``latent_dim``."""
        return self.num_quantizers if self.is_discrete else self.latent_dim

    @property
    def seconds_per_frame(self) -> float | None:
        if self.downsampling_ratio and self.sample_rate:
            return self.downsampling_ratio / self.sample_rate
        return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _section(data: dict[str, Any], key: str) -> dict[str, Any]:
    """``data[key]`` when it is an object, else an empty one."""
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def latent_from_section(section: dict[str, Any], source: str) -> LatentInfo:
    """A :class:`LatentInfo` from our ``details.json`` ``latent`` section (wrong types become unknown)."""
    dtype = section.get("dtype")
    posterior = section.get("posterior")
    is_discrete = section.get("is_discrete")
    return LatentInfo(
        latent_dim=_int(section.get("latent_dim")),
        downsampling_ratio=_int(section.get("downsampling_ratio")),
        sample_rate=_int(section.get("sample_rate")),
        dtype=dtype if isinstance(dtype, str) else None,
        is_discrete=is_discrete if isinstance(is_discrete, bool) else None,
        num_quantizers=_int(section.get("num_quantizers")),
        posterior=posterior if isinstance(posterior, str) else None,
        source=source,
    )


def latent_from_model_config(config: Any, source: str, is_discrete: bool | None = None) -> LatentInfo:
    """A :class:`LatentInfo` read loosely from an autoencoder config (or a diffusion config's pretransform).

    Nothing is validated here: missing or odd values become unknown.
    """
    if not isinstance(config, dict):
        return LatentInfo(source=source)
    model = _section(config, "model")
    pretransform = _section(model, "pretransform")
    if isinstance(pretransform.get("config"), dict):
        model = _section(pretransform, "config")  # a diffusion config: its autoencoder is the pretransform
    bottleneck = _section(model, "bottleneck")
    kind = bottleneck.get("type")
    kind = kind if isinstance(kind, str) else None
    discrete = kind in DISCRETE_BOTTLENECKS if kind is not None else is_discrete
    # Parsed leniently (problems ignored): a stored config only needs to say how many rows a token array has.
    quantizers = _int(parse_bottleneck(Node(bottleneck, "bottleneck")).num_quantizers) if discrete else None
    return LatentInfo(
        latent_dim=_int(model.get("latent_dim")),
        downsampling_ratio=_int(model.get("downsampling_ratio")),
        sample_rate=_int(config.get("sample_rate")),
        is_discrete=discrete,
        num_quantizers=quantizers,
        source=source,
    )


def merge(primary: LatentInfo, fallback: LatentInfo) -> LatentInfo:
    """``primary`` with its unknown fields taken from ``fallback``."""
    values = {f.name: getattr(primary, f.name) for f in fields(LatentInfo)}
    filled = [f.name for f in fields(LatentInfo) if f.name != "source" and values[f.name] is None
              and getattr(fallback, f.name) is not None]
    for name in filled:
        values[name] = getattr(fallback, name)
    if filled and primary.source == "unknown":
        values["source"] = fallback.source
    elif filled:
        values["source"] = f"{primary.source} + {fallback.source}"
    return LatentInfo(**values)
