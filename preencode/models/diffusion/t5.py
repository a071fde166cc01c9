"""The ``t5`` conditioner: prompts -> frozen T5 encoder states ``[B, max_length, cond_dim]`` and mask
``[B, max_length]``.

The tokenizer and encoder are loaded only from a local folder or the local Hugging Face cache
(``local_files_only``; e.g. ``t5-base`` cached under ``$HF_HOME``), never downloaded, and only when
first needed, so that a model can be built (e.g. on the ``meta`` device, to check its keys) without
them. The encoder is frozen and kept out of the module tree: it is not in the state dict, not moved by
``.to()``, not seen by optimizers (as in the reference).

Precision, matched to the reference: stable-audio-tools converts the T5 encoder to float16 when it
loads it, on every device, and runs it under ``torch.cuda.amp.autocast(...) and
torch.set_grad_enabled(...)`` -- a Python ``and`` of two context managers, which evaluates to the
second one, so autocast is never entered. The encoder therefore runs in plain float16 on CUDA and on
the CPU alike, and returns float16 states. We do exactly the same (float16 weights and activations on
every device; PyTorch implements float16 on the CPU). The states are then cast to the output
projection's dtype when there is one (``proj_out``, a Linear, when the T5 width differs from
``cond_dim`` or ``project_out`` is set); otherwise they stay float16 and become float32 when
multiplied by the float mask. Padding positions are zeroed after the projection.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ...errors import UserError

log = logging.getLogger(__name__)
#: T5 models whose loading was announced in this process.
_ANNOUNCED: set[str] = set()

# Widths of the models the reference knows by name (it accepts no others).
T5_MODEL_DIMS = {
    "t5-small": 512, "t5-base": 768, "t5-large": 1024, "t5-3b": 1024, "t5-11b": 1024,
    "google/t5-v1_1-xl": 2048, "google/t5-v1_1-xxl": 4096,
    "google/flan-t5-small": 512, "google/flan-t5-base": 768, "google/flan-t5-large": 1024,
    "google/flan-t5-xl": 2048, "google/flan-t5-xxl": 4096,
}


def _missing(name: str) -> UserError:
    home = os.environ.get("HF_HOME", "~/.cache/huggingface")
    return UserError(f"T5 model {name!r} is neither a local folder nor in the local Hugging Face cache "
                     f"(HF_HOME={home}); nothing is downloaded.",
                     f"Download it once (e.g. `hf download {name}`) or set t5_model_name to a local folder.")


def t5_width(name: str) -> int:
    """The encoder width (``d_model``) of a known model name or of a local folder's ``config.json``.

    Raises:
        UserError: an unknown name that is not a folder with a readable T5 config.
    """
    if name in T5_MODEL_DIMS:
        return T5_MODEL_DIMS[name]
    config = Path(name) / "config.json"
    try:
        width = json.loads(config.read_text(encoding="utf-8"))["d_model"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UserError(f"t5_model_name {name!r} is neither a T5 model the reference knows "
                        f"({', '.join(T5_MODEL_DIMS)}) nor a local folder with a T5 config.json ({err}).",
                        "Use one of those names or the path of a saved T5 encoder.") from err
    if not isinstance(width, int) or width < 1:
        raise UserError(f"{config}: d_model must be a positive integer, got {width!r}.")
    return width


class T5Conditioner(nn.Module):
    """See the module docstring.

    Args:
        output_dim: ``cond_dim``.
        t5_model_name: a name known to the reference (in the local cache) or a local folder.
        max_length: prompts are truncated and padded to this many tokens.
        project_out: project even when the T5 width equals ``output_dim``.
    """

    _frozen: tuple[Any, Any] | None

    def __init__(self, output_dim: int, t5_model_name: str = "t5-base", max_length: int = 128,
                 project_out: bool = False) -> None:
        super().__init__()
        self.t5_model_name, self.max_length = t5_model_name, max_length
        self.dim, self.output_dim = t5_width(t5_model_name), output_dim
        self.proj_out: nn.Module = (nn.Linear(self.dim, output_dim) if (self.dim != output_dim or project_out)
                                    else nn.Identity())
        self.__dict__["_frozen"] = None  # (tokenizer, encoder): not a submodule, not in the state dict

    def load(self) -> tuple[Any, Any]:
        """Load the tokenizer and the float16 encoder (once); returns them.

        Raises:
            UserError: the model is not available locally, or ``transformers`` is not installed.
        """
        if self._frozen is not None:
            return self._frozen
        try:
            from transformers import AutoTokenizer, T5EncoderModel
        except ImportError as err:
            raise UserError("The t5 conditioner needs the 'transformers' package.",
                            "Install it with: pip install 'preencode[t5]'") from err
        from transformers.utils import logging as hf_logging

        name = self.t5_model_name
        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # a local load: no "Loading weights" bar on stderr
        try:
            tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=True)
            encoder = T5EncoderModel.from_pretrained(name, local_files_only=True)
        except (OSError, ValueError) as err:
            raise _missing(name) from err
        finally:
            if bar:
                hf_logging.enable_progress_bar()
        if encoder.config.d_model != self.dim:
            raise UserError(f"T5 model {name!r} is {encoder.config.d_model} wide, expected {self.dim}.",
                            "Use the T5 model the checkpoint was trained with.")
        encoder = encoder.eval().requires_grad_(False).to(torch.float16)
        self.__dict__["_frozen"] = (tokenizer, encoder)
        if name not in _ANNOUNCED:  # the demo trains then generates: one model, one line
            _ANNOUNCED.add(name)
            log.info("Loaded T5 encoder %s (float16, frozen)", name)
        return tokenizer, encoder

    def forward(self, texts: list[Any], device: torch.device | str) -> tuple[Tensor, Tensor]:
        """Prompts -> ``(embeddings [B, max_length, output_dim], mask bool [B, max_length])``."""
        bad = [t for t in texts if not isinstance(t, str)]
        if bad:
            raise UserError(f"The t5 conditioner needs text prompts, got {bad[0]!r}.",
                            "Give every sample a string prompt in its metadata.")
        tokenizer, encoder = self.load()
        encoder.to(device)
        encoded = tokenizer(texts, truncation=True, max_length=self.max_length, padding="max_length",
                            return_tensors="pt")
        input_ids = encoded["input_ids"].to(device)
        mask = encoded["attention_mask"].to(device).to(torch.bool)
        with torch.no_grad():
            states = encoder(input_ids=input_ids, attention_mask=mask)["last_hidden_state"]
        if not isinstance(self.proj_out, nn.Identity):
            states = states.to(self.proj_out.weight.dtype)
        states = self.proj_out(states)
        return states * mask.unsqueeze(-1).float(), mask
