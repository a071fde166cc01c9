"""stable-audio-tools' latent diffusion models (``diffusion_cond``, ``diffusion_uncond`` with a ``dit``),
with the reference's config format, state dict keys and numbers."""

from .checkpoint import load_diffusion_model
from .config import DiffusionConfig, load_diffusion_config, parse_diffusion_config
from .factory import build_diffusion_model
from .model import ConditionedDiffusionModel

__all__ = ["ConditionedDiffusionModel", "DiffusionConfig", "build_diffusion_model", "load_diffusion_config",
           "load_diffusion_model", "parse_diffusion_config"]
