"""Loading autoencoder checkpoints strictly: never run with weights that were not loaded.

Accepted: an unwrapped ``.ckpt`` (``{"state_dict": ...}`` or a bare state dict), read with
``torch.load(weights_only=True)`` so a checkpoint can never run code; ``.safetensors``. Weight-norm
parameters may use either naming (``weight_g``/``weight_v`` or ``parametrizations.weight.original0/1``).
Wrapped checkpoints (training wrapper ``autoencoder.*``, diffusion ``pretransform.model.*``) are
detected and their autoencoder part is taken, with a notice.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import CheckpointError, UserError
from .autoencoder import AudioAutoencoder
from .config import AutoencoderConfig, load_autoencoder_config
from .factory import build_autoencoder

log = logging.getLogger(__name__)

# Prefixes under which wrapped checkpoints keep an autoencoder, most specific first.
WRAPPER_PREFIXES = (
    "model.pretransform.model.",
    "pretransform.model.",
    "autoencoder_ema.ema_model.",
    "autoencoder.",
    "model.",
)
_LIST_LIMIT = 10


def _unwrap_hint(path: Path) -> str:
    return (f"Export the autoencoder's own state dict (e.g. `preencode unwrap` or stable-audio-tools' "
            f"unwrap_model.py) and pass that file instead of {path}.")


def load_state_dict_file(path: str | Path) -> dict[str, Tensor]:
    """Read the tensors of a checkpoint file, with weight-norm keys in the ``weight_g``/``weight_v`` naming.

    Raises:
        CheckpointError: the file is missing, not a checkpoint, or holds more than plain tensors.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"Checkpoint not found: {path}.", "Check --ckpt-path.")
    if path.is_dir():
        raise CheckpointError(f"Checkpoint {path} is a folder, expected a .ckpt or .safetensors file.",
                              "Pass the checkpoint file itself.")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as err:
            raise CheckpointError(f"{path} is not a readable safetensors file ({err}).",
                                  "Check that the download is complete.") from err
    else:
        state = _torch_load(path)
    return normalize_keys(state)


def load_checkpoint_object(path: str | Path,
                           fix: str = "Pass an unwrapped autoencoder .ckpt or .safetensors file.") -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, for every loader of ``.ckpt`` files (autoencoder,
    training, unwrap): whatever a file that is not a checkpoint makes torch raise (its weights-only
    unpickler raises KeyError, IndexError, TypeError... on junk) becomes one :class:`CheckpointError`.

    Args:
        path: the file.
        fix: what to pass instead, for the message.

    Raises:
        CheckpointError: missing, a folder, not a PyTorch checkpoint, or holding Python objects.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder, expected a checkpoint file" if path.is_dir() else "not found"
        raise CheckpointError(f"Checkpoint {path} {what}.", "Check --ckpt-path.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "Unsupported global" in str(err):  # a pickle of objects; anything else is not a checkpoint at all
            raise CheckpointError(
                f"{path} holds Python objects that a weights-only load refuses (it could run code when loaded); "
                "it was not loaded.", "Use a checkpoint that stores plain tensors, or convert it to .safetensors."
            ) from err
        raise CheckpointError(f"{path} is not a PyTorch checkpoint (unreadable pickle).", fix) from err
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError, IndexError, TypeError,
            AttributeError, UnicodeDecodeError, ImportError, MemoryError, OverflowError) as err:
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise CheckpointError(f"{path} is not a PyTorch checkpoint ({type(err).__name__}: {first}).", fix) from err


def _torch_load(path: Path) -> dict[str, Any]:
    obj = load_checkpoint_object(path)
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise CheckpointError(f"{path} does not contain a state dict of tensors.",
                              "Pass an unwrapped autoencoder checkpoint (a dict with 'state_dict').")
    return obj


def normalize_keys(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename ``parametrizations.weight.original0/1`` to ``weight_g``/``weight_v``."""
    out = {}
    for key, value in state.items():
        key = key.replace(".parametrizations.weight.original0", ".weight_g")
        key = key.replace(".parametrizations.weight.original1", ".weight_v")
        out[key] = value
    return out


def _summarise(keys: list[str]) -> str:
    shown = ", ".join(keys[:_LIST_LIMIT])
    more = len(keys) - _LIST_LIMIT
    return shown + (f" and {more} more" if more > 0 else "")


def select_autoencoder_keys(state: dict[str, Tensor], expected: set[str], source: str) -> dict[str, Tensor]:
    """Take the autoencoder part of a wrapped checkpoint (with a notice); an unwrapped one passes through."""
    direct = len(expected & state.keys())
    best_prefix, best = "", direct
    for prefix in WRAPPER_PREFIXES:
        count = sum(1 for k in state if k.startswith(prefix) and k[len(prefix):] in expected)
        if count > best:
            best_prefix, best = prefix, count
    if not best_prefix:
        return state
    log.warning("%s is a wrapped checkpoint: using the %d autoencoder tensors under '%s' and ignoring the "
                "other %d.", source, best, best_prefix, len(state) - best)
    return {k[len(best_prefix):]: v for k, v in state.items() if k.startswith(best_prefix)}


def load_strict(model: nn.Module, state: dict[str, Tensor], source: str, *, allow_missing: str = "") -> None:
    """Load ``state`` into ``model``: every key present, none unknown, every shape the model's.

    The one strict loader, for autoencoders and diffusion models alike. Values are cast to the
    model's dtypes.

    Args:
        model: the module to fill.
        state: tensors by key (see :func:`load_state_dict_file`).
        source: the checkpoint's path, for the message.
        allow_missing: a key prefix that may be absent from ``state`` (e.g. ``"pretransform."`` when
            those weights come from another checkpoint); those parameters keep their values.

    Raises:
        CheckpointError: listing missing keys, unexpected keys and shape mismatches (10 of each at most).
    """
    own = model.state_dict()
    missing = sorted(k for k in set(own) - state.keys() if not (allow_missing and k.startswith(allow_missing)))
    unexpected = sorted(state.keys() - set(own))
    mismatched = [f"{k} (checkpoint {list(state[k].shape)}, model {list(own[k].shape)})"
                  for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing: {_summarise(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected: {_summarise(unexpected)}")
        if mismatched:
            parts.append(f"{len(mismatched)} with another shape: {_summarise(mismatched)}")
        raise CheckpointError(
            f"Checkpoint {source} does not match the model config ({'; '.join(parts)}).",
            "Pass the config that was trained with this checkpoint (or the checkpoint of this config).")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=not allow_missing)


def load_autoencoder_state(model: nn.Module, state: dict[str, Tensor], source: str) -> None:
    """:func:`load_strict` for an autoencoder, taking the autoencoder part of a wrapped checkpoint."""
    load_strict(model, select_autoencoder_keys(state, set(model.state_dict()), source), source)


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` picks CUDA, then MPS, then CPU."""
    if str(device) != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def load_autoencoder(model_config: str | Path | dict | AutoencoderConfig, ckpt_path: str | Path | None,
                     half: bool = False, device: str | torch.device = "cpu") -> AudioAutoencoder:
    """Build an autoencoder from its config and load its checkpoint strictly, ready for inference.

    Args:
        model_config: a config path, a parsed config dict, or an :class:`AutoencoderConfig`.
        ckpt_path: an unwrapped ``.ckpt`` or ``.safetensors`` checkpoint.
        half: float16 weights on CUDA; on other devices float32 is kept (CPUs lack fast half
            arithmetic) with a notice.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"auto"``...

    Returns:
        The model in eval mode, weight norm folded, gradients off.

    Raises:
        ConfigError, CheckpointError: with the path and the fix.
    """
    if ckpt_path is None:
        raise UserError("No checkpoint given; refusing to encode with random weights.",
                        "Pass --ckpt-path with the unwrapped autoencoder checkpoint.")
    config = model_config if isinstance(model_config, AutoencoderConfig) else load_autoencoder_config(model_config)
    state = load_state_dict_file(ckpt_path)
    model = build_autoencoder(config)
    load_autoencoder_state(model, state, str(ckpt_path))
    model.eval().requires_grad_(False).fold_weight_norm()
    target = resolve_device(device)
    model.to(target)
    if half:
        if target.type == "cuda":
            model.to(torch.float16)
        else:
            log.warning("Half precision requested on %s: computing in float32 instead (this device has no fast "
                        "float16/bfloat16 arithmetic).", target.type)
    return model
