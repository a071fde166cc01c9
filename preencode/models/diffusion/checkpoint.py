"""Loading diffusion model checkpoints strictly, unwrapping training checkpoints by a table of layouts.

Accepted files: ``.ckpt`` (``{"state_dict": ...}``, a Lightning checkpoint, or a bare state dict; read
with ``torch.load(weights_only=True)``) and ``.safetensors``. The tensors are matched against the
model by the first layout of :data:`LAYOUTS` that explains the most of them: an unwrapped model
(stable-audio-tools' ``unwrap_model.py`` output, the released ``model.ckpt``/``model.safetensors``), or
a training checkpoint (``diffusion.*`` and ``diffusion_ema.*``: stable-audio-tools' layout, which
``preencode train`` writes too), which is unwrapped with a notice. Missing, unexpected and mis-shaped tensors
are errors that list them: a model never runs with weights that were not loaded.

EMA: when a training checkpoint holds EMA weights of the network, they are used (like the reference's
``unwrap_model.py``, which exports ``diffusion_ema`` whenever the run used EMA, its default); pass
``prefer_ema=False`` to take the online weights instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ...errors import CheckpointError
from ..checkpoint import load_checkpoint_object, normalize_keys, resolve_device
from .config import DiffusionConfig, load_diffusion_config
from .factory import build_diffusion_model
from .model import ConditionedDiffusionModel

log = logging.getLogger(__name__)
_LIST_LIMIT = 5


@dataclass(frozen=True)
class Layout:
    """Where a checkpoint keeps the model's tensors.

    Attributes:
        name: for messages.
        rules: ``(model prefix, checkpoint prefix)`` pairs, most specific model prefix first: a model
            key ``k`` is read from ``checkpoint prefix + k[len(model prefix):]`` of the first matching rule.
        ignored: checkpoint keys (prefixes) that are knowingly not used (e.g. the online weights when
            the EMA ones are taken, EMA counters).
        ema: whether the layout takes EMA weights.
    """

    name: str
    rules: tuple[tuple[str, str], ...]
    ignored: tuple[str, ...] = ()
    ema: bool = False

    def source(self, key: str) -> str:
        for ours, theirs in self.rules:
            if key.startswith(ours):
                return theirs + key[len(ours):]
        return key

    def claims(self, key: str) -> bool:
        """Whether an unused checkpoint key under this layout's prefixes is unexpected."""
        if any(key.startswith(prefix) for prefix in self.ignored):
            return False
        return any(key.startswith(theirs) for _, theirs in self.rules)


LAYOUTS = (
    Layout("an unwrapped model", (("", ""),)),
    Layout("a stable-audio-tools training checkpoint (EMA weights)",
           (("model.", "diffusion_ema.ema_model."), ("", "diffusion.")),
           ignored=("diffusion.model.", "diffusion_ema.initted", "diffusion_ema.step"), ema=True),
    Layout("a stable-audio-tools training checkpoint", (("", "diffusion."),), ignored=("diffusion_ema.",)),
)


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """The tensors of a checkpoint file (weight-norm keys in the ``weight_g``/``weight_v`` naming).

    Raises:
        CheckpointError: missing file, not a checkpoint, or a pickle holding more than tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint not found: {path}.", "Check the checkpoint path.")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return normalize_keys(load_file(str(path)))
        except (SafetensorError, OSError, ValueError) as err:
            raise CheckpointError(f"{path} is not a readable safetensors file ({err}).",
                                  "Check that the download is complete.") from err
    obj = load_checkpoint_object(path, fix="Pass a .ckpt or .safetensors diffusion model checkpoint.")
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise CheckpointError(f"{path} does not contain a state dict of tensors.",
                              "Pass a model checkpoint (a dict of tensors, or a dict with 'state_dict').")
    return normalize_keys(obj)


def _summarise(keys: list[str]) -> str:
    more = len(keys) - _LIST_LIMIT
    return ", ".join(keys[:_LIST_LIMIT]) + (f" and {more} more" if more > 0 else "")


def select_state(state: dict[str, Tensor], own: dict[str, Tensor], source: str,
                 prefer_ema: bool = True, allow_missing: tuple[str, ...] = ()) -> dict[str, Tensor]:
    """The model's tensors from ``state`` under the best layout (a notice when it is a training one).

    Args:
        allow_missing: model key prefixes that may be absent (e.g. ``pretransform.`` when its weights
            come from another file).

    Raises:
        CheckpointError: listing missing, unexpected and mis-shaped tensors.
    """
    layouts = [lay for lay in LAYOUTS if prefer_ema or not lay.ema]
    scores = [sum(1 for k in own if layout.source(k) in state) for layout in layouts]
    layout = layouts[scores.index(max(scores))]
    picked = {k: state[layout.source(k)] for k in own if layout.source(k) in state}
    used = {layout.source(k) for k in picked}
    missing = sorted(k for k in own if k not in picked and not k.startswith(allow_missing))
    unexpected = sorted(k for k in state if k not in used and layout.claims(k))
    mismatched = [f"{k} (checkpoint {list(v.shape)}, model {list(own[k].shape)})"
                  for k, v in picked.items() if v.shape != own[k].shape]
    if missing or unexpected or mismatched:
        parts = [f"{len(keys)} {what}: {_summarise(keys)}" for what, keys in
                 (("missing", missing), ("unexpected", unexpected), ("with another shape", mismatched)) if keys]
        raise CheckpointError(f"Checkpoint {source} ({layout.name}) does not match the model config "
                              f"({'; '.join(parts)}).",
                              "Pass the model config this checkpoint was trained with.")
    if layout is not LAYOUTS[0]:
        log.warning("%s is %s: using its %d model tensors%s and ignoring the other %d.", source, layout.name,
                    len(picked), " (the network's EMA weights)" if layout.ema else "", len(state) - len(picked))
    return picked


def load_diffusion_model(model_config: str | Path | dict[str, Any] | DiffusionConfig,
                         ckpt_path: str | Path | None = None, device: str | torch.device = "cpu", *,
                         prefer_ema: bool = True) -> ConditionedDiffusionModel:
    """Build a diffusion model from its config and load its checkpoint strictly.

    Args:
        model_config: a config path, a parsed config dict, or a :class:`DiffusionConfig`.
        ckpt_path: ``.ckpt`` or ``.safetensors``: an unwrapped model or a training checkpoint (see the
            module docstring). None keeps the fresh initialisation (with a notice).
        device: ``"cpu"``, ``"cuda"``, ``"auto"``...
        prefer_ema: take the EMA weights of a training checkpoint that has them.

    Returns:
        The model in eval mode on ``device``; its T5 encoders are loaded (float16, frozen).

    Raises:
        ConfigError, CheckpointError, UserError (a T5 model that is not available locally).
    """
    config = model_config if isinstance(model_config, DiffusionConfig) else load_diffusion_config(model_config)
    model = build_diffusion_model(config)
    if model.conditioner is not None:
        model.conditioner.load()  # a missing T5 is reported before a large checkpoint is read
    if ckpt_path is None:
        log.warning("No checkpoint given: the diffusion model keeps its fresh (random) initialisation.")
    else:
        own = model.state_dict()
        state = select_state(read_state_dict(ckpt_path), own, str(ckpt_path), prefer_ema)
        model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=True)
    return model.to(resolve_device(device)).eval()
