"""What an output tree says about its latents: ``details.json``, ours or the reference's.

Our ``details.json`` has a ``latent`` section (latent_dim, downsampling_ratio, sample_rate, dtype,
is_discrete, num_quantizers, posterior) and the full model config. The reference's holds only the
*path* of the model config; when that file (or one passed by the user) can be read, the numbers are
taken from it, otherwise they stay unknown and the tools degrade (fewer checks, estimated hours).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..schema import load_json

log = logging.getLogger(__name__)

DETAILS_NAME = "details.json"
_DISCRETE_BOTTLENECKS = ("dac_rvq", "fsq")


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


@dataclass
class Details:
    """The parsed ``details.json`` of an output tree.

    Attributes:
        path: where it is (or would be).
        exists: whether the file is there.
        data: its JSON object (empty when missing or unreadable).
        latent: the latent description gathered from it.
        problems: why it, or the model config it names, could not be used.
        warnings: what limits the checks without making the tree unusable.
    """

    path: Path
    exists: bool
    data: dict[str, Any] = field(default_factory=dict)
    latent: LatentInfo = field(default_factory=LatentInfo)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def is_reference(self) -> bool:
        """True for a reference-written file (model config stored as a path, no format version)."""
        return self.exists and "format_version" not in self.data


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


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
    model = config.get("model") if isinstance(config.get("model"), dict) else {}
    pretransform = model.get("pretransform")
    if isinstance(pretransform, dict) and isinstance(pretransform.get("config"), dict):
        model = pretransform["config"]  # a diffusion config: its autoencoder is the pretransform
    bottleneck = model.get("bottleneck") if isinstance(model.get("bottleneck"), dict) else {}
    kind = bottleneck.get("type")
    settings = bottleneck.get("config") if isinstance(bottleneck.get("config"), dict) else {}
    discrete = kind in _DISCRETE_BOTTLENECKS if kind is not None else is_discrete
    quantizers = None
    if kind == "dac_rvq":
        quantizers = _int(settings.get("n_codebooks", 9))
    elif kind == "fsq":
        quantizers = _int(settings.get("num_codebooks", 1))
    return LatentInfo(
        latent_dim=_int(model.get("latent_dim")),
        downsampling_ratio=_int(model.get("downsampling_ratio")),
        sample_rate=_int(config.get("sample_rate")),
        is_discrete=discrete,
        num_quantizers=quantizers,
        source=source,
    )


def _merge(primary: LatentInfo, fallback: LatentInfo) -> LatentInfo:
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


def _model_config_file(reference: str, root: Path) -> Path | None:
    """The model config a reference ``details.json`` names: as stored, else relative to the output tree."""
    for candidate in (Path(reference), root / reference):
        if candidate.is_file():
            return candidate
    return None


def read_details(root: str | Path, model_config: str | Path | None = None) -> Details:
    """Read ``<root>/details.json`` and gather what it says about the latents.

    Args:
        root: the output tree.
        model_config: an autoencoder config file given by the user; its numbers win over the tree's
            (useful for reference output whose stored config path no longer exists).

    Raises:
        UserError: ``model_config`` was given but cannot be read.
    """
    root = Path(root)
    details = Details(path=root / DETAILS_NAME, exists=(root / DETAILS_NAME).is_file())
    latent = LatentInfo()
    if details.exists:
        try:
            data = json.loads(details.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            details.problems.append(f"{details.path}: unreadable ({err})")
            data = {}
        if not isinstance(data, dict):
            details.problems.append(f"{details.path}: expected a JSON object")
            data = {}
        details.data = data
        args = data.get("args") if isinstance(data.get("args"), dict) else {}
        flag = args.get("is_discrete")
        flag = flag if isinstance(flag, bool) else None
        if isinstance(data.get("latent"), dict):
            latent = latent_from_section(data["latent"], f"{DETAILS_NAME} latent section")
        stored = data.get("model_config")
        if isinstance(stored, dict):
            latent = _merge(latent, latent_from_model_config(stored, f"{DETAILS_NAME} model_config", flag))
        elif isinstance(stored, str):
            found = _model_config_file(stored, root)
            if found is None and model_config is None:
                # Typical once a reference output has moved machines: the latents are still checked
                # for consistency with each other.
                details.warnings.append(f"{details.path}: the model config it names ({stored}) is not readable; "
                                        "shapes are checked for consistency only (pass --model-config to check "
                                        "them against the model)")
            elif found is not None:
                try:
                    parsed = json.loads(found.read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
                    details.problems.append(f"{found}: unreadable model config ({err})")
                    parsed = None
                latent = _merge(latent, latent_from_model_config(parsed, str(found), flag))
        if latent.is_discrete is None and flag is not None:
            latent = _merge(latent, LatentInfo(is_discrete=flag, source=f"{DETAILS_NAME} args"))
    if model_config is not None:
        given = latent_from_model_config(load_json(model_config, "Model config"), str(model_config))
        latent = _merge(given, latent)
    details.latent = latent
    log.debug("latent description: %s", latent)
    return details
