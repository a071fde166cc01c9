"""Unwrapping a training checkpoint into a plain model state dict with its config beside it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from ..errors import CheckpointError

log = logging.getLogger(__name__)


def unwrap_checkpoint(ckpt_path: str | Path, output: str | Path, use_ema: bool = True) -> list[Path]:
    """Write ``<output>.ckpt`` (``{"state_dict": ...}``), ``<output>.safetensors`` and ``<output>.json``.

    The state dict holds ``pretransform.*``, ``conditioner.*`` and ``model.*`` (the DiT; its EMA weights
    when the run used EMA and ``use_ema``).

    Raises:
        CheckpointError: the file is not a training checkpoint of this project.
    """
    from safetensors.torch import save_file

    try:
        ckpt = torch.load(str(ckpt_path), map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as err:
        raise CheckpointError(f"Cannot read training checkpoint {ckpt_path}: {err}.", "Check the path.") from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "model_config" not in ckpt:
        raise CheckpointError(f"{ckpt_path} is not a preencode training checkpoint (no state_dict/model_config).",
                              "Pass a checkpoint written by `preencode train`.")
    wrapped = ckpt["state_dict"]
    state = {k[len("model."):]: v for k, v in wrapped.items() if k.startswith("model.")}
    ema = {k[len("ema.shadow."):]: v for k, v in wrapped.items() if k.startswith("ema.shadow.")}
    if use_ema and ema:
        state.update({f"model.{k}": v for k, v in ema.items()})
        log.info("Using the EMA weights of the diffusion transformer")
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    paths = [output.with_suffix(".ckpt"), output.with_suffix(".safetensors"), output.with_suffix(".json")]
    torch.save({"state_dict": state}, paths[0])
    save_file({k: v.contiguous() for k, v in state.items()}, str(paths[1]))
    paths[2].write_text(json.dumps(ckpt["model_config"], indent=2), encoding="utf-8")
    return paths
