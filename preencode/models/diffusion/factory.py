"""Build a diffusion model from a validated config (fresh weights; nothing is loaded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..factory import build_autoencoder
from .conditioners import MultiConditioner
from .config import DiffusionConfig, load_diffusion_config
from .dit import GuidedDiT
from .model import ConditionedDiffusionModel
from .pretransform import AutoencoderPretransform


def build_diffusion_model(config: DiffusionConfig | dict[str, Any] | str | Path) -> ConditionedDiffusionModel:
    """The model of a ``diffusion_cond``/``diffusion_uncond`` config, with the reference's initialisation.

    T5 encoders are not loaded here (see :meth:`MultiConditioner.load`), so this works on the ``meta``
    device (``with torch.device("meta"): build_diffusion_model(cfg)``) without them.

    Raises:
        ConfigError: the config has problems (all of them are listed).
    """
    if not isinstance(config, DiffusionConfig):
        config = load_diffusion_config(config)
    network = GuidedDiT(config.dit, config.objective)
    if config.model_type == "diffusion_uncond":  # the reference halves every initial weight of these
        for p in network.parameters():
            p.data.mul_(0.5)
    conditioner = MultiConditioner(config.conditioning) if config.conditioning is not None else None
    pretransform = None
    if config.pretransform is not None:
        pt = config.pretransform
        pretransform = AutoencoderPretransform(build_autoencoder(pt.autoencoder), pt.scale, pt.model_half,
                                               pt.iterate_batch)
    return ConditionedDiffusionModel(config, network, conditioner, pretransform)
