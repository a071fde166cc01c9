"""Unwrapping a training checkpoint into the files a diffusion model is shipped as.

``<output>.ckpt`` (``{"state_dict": ...}``), ``<output>.safetensors`` (the same tensors) and
``<output>.json`` (the model config) -- the layout of Stable Audio Open's released files, which
stable-audio-tools' ``create_model_from_config(config)`` + ``load_state_dict(state_dict, strict=True)``
loads. As the reference's ``export_model``: the network (``model.*``) is the EMA copy when the run used
EMA (unless ``use_ema=False``), the conditioner and the pretransform come from the online model. The
tensors are matched strictly against a model built (on the ``meta`` device, no memory) from the
checkpoint's embedded config, so an incomplete or foreign checkpoint is refused with the keys listed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError
from ..models.checkpoint import load_checkpoint_object, normalize_keys
from ..models.diffusion.checkpoint import select_state
from ..models.diffusion.config import load_diffusion_config
from ..models.diffusion.factory import build_diffusion_model

log = logging.getLogger(__name__)

_TRAINING_FIX = "Pass a checkpoint written by `preencode train` or stable-audio-tools' train.py."


def read_training_checkpoint(path: str | Path) -> dict[str, Any]:
    """A Lightning checkpoint (read with ``weights_only=True``).

    Raises:
        CheckpointError: unreadable, or not a training checkpoint.
    """
    ckpt = load_checkpoint_object(path, fix=_TRAINING_FIX)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise CheckpointError(f"{path} is not a training checkpoint (no state_dict).", _TRAINING_FIX)
    return ckpt


def unwrap_checkpoint(ckpt_path: str | Path, output: str | Path, use_ema: bool = True,
                      model_config: str | Path | dict[str, Any] | None = None) -> list[Path]:
    """Write ``<output>.ckpt``, ``<output>.safetensors`` and ``<output>.json``; returns their paths.

    Args:
        ckpt_path: a training checkpoint (``diffusion.*`` / ``diffusion_ema.*`` tensors).
        output: path without extension (an extension given is replaced).
        use_ema: the network's EMA weights when the checkpoint has them.
        model_config: the model config when the checkpoint does not embed one (``model_config``).

    Raises:
        CheckpointError, ConfigError: naming the file and the fix.
    """
    from safetensors.torch import save_file

    ckpt = read_training_checkpoint(ckpt_path)
    raw = model_config if model_config is not None else ckpt.get("model_config")
    if raw is None:
        raise CheckpointError(f"{ckpt_path} does not embed its model config.", "Pass --model-config.")
    config = load_diffusion_config(raw)
    with torch.device("meta"):
        own = build_diffusion_model(config).state_dict()
    state = normalize_keys({k: v for k, v in ckpt["state_dict"].items() if isinstance(v, torch.Tensor)})
    if not any(k.startswith("diffusion.") for k in state):
        raise CheckpointError(f"{ckpt_path} holds no diffusion.* tensors: it is not a diffusion training checkpoint.",
                              "Pass a checkpoint written by `preencode train` or stable-audio-tools' train.py.")
    picked = select_state(state, own, str(ckpt_path), prefer_ema=use_ema)
    if use_ema and not any(k.startswith("diffusion_ema.ema_model.") for k in state):
        log.warning("%s has no EMA weights (training.use_ema was false): exporting the online network.", ckpt_path)
    unwrapped = {k: picked[k].contiguous() for k in own}  # the model's key order
    output = Path(output)
    output = output.with_suffix("") if output.suffix in (".ckpt", ".safetensors", ".json") else output
    output.parent.mkdir(parents=True, exist_ok=True)
    paths = [output.with_name(output.name + ext) for ext in (".ckpt", ".safetensors", ".json")]
    torch.save({"state_dict": unwrapped}, paths[0])
    save_file(unwrapped, str(paths[1]))
    paths[2].write_text(json.dumps(config.raw, indent=2) + "\n", encoding="utf-8")
    log.info("Unwrapped %d tensors%s into %s", len(unwrapped), " (EMA network)" if use_ema else "", output)
    return paths
