"""Everything checked before any model or data work: configs, flags, checkpoint, the output folder."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ...data.config import DatasetConfig, load_dataset_config
from ...data.input_roots import check_distinct_inputs, input_roots
from ...errors import UserError
from ...models.checkpoint import file_sha256
from ...models.config import AutoencoderConfig, parse_autoencoder_config
from ...schema import load_json
from ...store.details import build_details
from ...store.objects import StorePath, is_s3_url
from .limits import cap_workers, check_window_memory
from .options import EncodeOptions
from .output import check_output_location
from .remote import RemoteOutput, check_remote_location
from .update import check_update_flags

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """A validated encode job."""

    options: EncodeOptions
    model_config: AutoencoderConfig
    dataset_config: DatasetConfig
    output: Path
    details: dict[str, Any]
    out_dtype: str
    resuming: bool = False  # set when the output is claimed (see output.claim_output)
    run_token: str | None = None  # rank 0's lock token, checked by the other ranks
    remote: RemoteOutput | None = None  # an S3 output; ``output`` is then this process's local spool folder

    @property
    def where(self) -> StorePath:
        """Where the output is: the S3 prefix, or the folder."""
        return self.remote.root if self.remote is not None else self.output
    run: int = 0  # this run's number in details.json's runs (set on rank 0 when the output is claimed)


_UNSUPPORTED_STRATEGIES = ("ddp_spawn", "ddp_fork", "ddp_notebook")


def parse_devices(value: str) -> Any:
    """``--devices``: ``auto``, a count >= 1, or a comma-separated list of device indices."""
    text = value.strip()
    if text == "auto":
        return "auto"
    try:
        if "," in text:
            devices = [int(v) for v in text.split(",") if v.strip()]
            if devices and all(d >= 0 for d in devices):
                return devices
        elif int(text) >= 1:
            return int(text)
    except ValueError:
        pass
    raise UserError(f"--devices {value!r} is not valid.", "Use auto, a count such as 2, or indices such as 0,1.")


def check_lightning(opts: EncodeOptions) -> None:
    """Let Lightning check --accelerator, --devices, --num-nodes and --strategy before any work."""
    import lightning.pytorch as L
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    try:
        L.Trainer(accelerator=opts.accelerator, devices=parse_devices(opts.devices), num_nodes=opts.num_nodes,
                  strategy=opts.strategy, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                  enable_model_summary=False)
    except (MisconfigurationException, ValueError, RuntimeError, TypeError, ImportError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(f"--accelerator {opts.accelerator} / --devices {opts.devices} / --strategy {opts.strategy} "
                        f"cannot be used here: {first}", "Check the Lightning options (e.g. --accelerator cpu).") \
            from err


def token_layout(config: AutoencoderConfig) -> tuple[int, int, str]:
    """(num_quantizers, codebook_size, numpy dtype name) of a discrete model, from its config."""
    count, size = config.bottleneck.num_quantizers or 1, config.bottleneck.codebook_size or 1
    dtype = next(d for d in ("uint8", "uint16", "int32", "int64") if size - 1 <= np.iinfo(d).max)
    return count, size, dtype


def autoencoder_config_of(raw: Any, source: str) -> AutoencoderConfig:
    """The autoencoder to encode with: ``raw`` itself, or the ``model.pretransform`` of a full diffusion model
    config (Stable Audio Open's ``model_config.json``), validated whole either way.

    Raises:
        ConfigError: listing every problem of the config.
        UserError: a diffusion config without a pretransform.
    """
    model_type = raw.get("model_type") if isinstance(raw, dict) else None
    if not (isinstance(model_type, str) and model_type.startswith("diffusion")):
        return parse_autoencoder_config(raw, source=source)
    from ...models.diffusion.config import parse_diffusion_config

    diffusion = parse_diffusion_config(raw, source=source)
    if diffusion.pretransform is None:
        raise UserError(f"{source} is a {model_type} config without a pretransform: its latents are the audio itself.",
                        "Pass the autoencoder's config (vae_config.json) or a model config with model.pretransform.")
    log.info("Encoding with the pretransform autoencoder of the %s config %s.", model_type, source)
    return diffusion.pretransform.autoencoder


def nearest_multiples(value: int, step: int) -> tuple[int, int]:
    low = (value // step) * step
    return (low if low > 0 else step), low + step


def validate(opts: EncodeOptions) -> Job:
    """Check the whole job up front, Lightning's flags apart (:func:`check_lightning`, which imports
    Lightning: an output with nothing left to encode is recognised without it); raises :class:`UserError`
    with the fix."""
    if not opts.model_config:
        raise UserError("--model-config is required.", "Pass the autoencoder's config JSON (vae_config.json).")
    if not opts.ckpt_path:
        raise UserError("--ckpt-path is required; refusing to encode with random weights.",
                        "Pass the unwrapped autoencoder checkpoint (vae_model.ckpt).")
    ckpt_path = opts.ckpt_path
    raw_model = load_json(opts.model_config, "Model config")
    model_config = autoencoder_config_of(raw_model, opts.model_config)
    dataset_config = load_dataset_config(opts.dataset_config)
    if dataset_config.dataset_type == "pre_encoded":
        raise UserError(f"{opts.dataset_config} is a pre_encoded dataset config; there is no audio to encode.",
                        "Pass an audio_dir or wds dataset config.")
    check_distinct_inputs(dataset_config)
    ratio = model_config.downsampling_ratio
    if opts.sample_size % ratio:
        low, high = nearest_multiples(opts.sample_size, ratio)
        raise UserError(f"--sample-size {opts.sample_size} is not a multiple of the model's downsampling ratio "
                        f"{ratio}.", f"Use {low} or {high}.")
    check_window_memory(opts, model_config)
    opts = replace(opts, num_workers=cap_workers(opts.num_workers))
    discrete_model = model_config.bottleneck.is_discrete
    if opts.is_discrete and not discrete_model:
        raise UserError(f"--is-discrete was given but the model's bottleneck "
                        f"({model_config.bottleneck.type or 'none'}) is continuous.",
                        "Drop --is-discrete to store continuous latents.")
    if discrete_model and not opts.is_discrete:
        raise UserError(f"The model has a discrete {model_config.bottleneck.type} bottleneck.",
                        "Pass --is-discrete to store its tokens.")
    is_vae = model_config.bottleneck.type == "vae"
    if opts.store_std and not is_vae:
        raise UserError("--store-std needs a vae bottleneck (there is no posterior std to store).",
                        "Drop --store-std.")
    if opts.store_std and opts.posterior == "sample":
        # A stored sample plus its std would make a loader add noise twice.
        log.info("--store-std: storing the posterior mean in each latent and its std beside it, so that a "
                 "loader draws a fresh sample every epoch.")
        opts = replace(opts, posterior="mean")
    check_update_flags(opts.update, opts.prune, opts.overwrite)
    if opts.update and opts.output_path.startswith("s3://"):
        raise UserError("--update is not supported for an s3:// output yet (replacing a changed input's sample "
                        "there would mean rewriting whole shard objects).",
                        "Encode the new inputs into a new --output-path prefix and list both in the training config.")
    if opts.strategy.startswith(_UNSUPPORTED_STRATEGIES):
        raise UserError(f"--strategy {opts.strategy} is not supported for encoding (its processes cannot report "
                        "failures back).", "Use --strategy ddp (or auto), launched directly, by torchrun or SLURM.")
    if opts.output_format != "wds" and (opts.shard_size != 1000 or opts.shard_bytes):
        log.warning("--shard-size/--shard-bytes only apply with --output-format wds; ignored.")
    ckpt = Path(ckpt_path)
    if not ckpt.is_file():
        raise UserError(f"Checkpoint not found: {ckpt}.", "Check --ckpt-path.")
    remote = None
    if is_s3_url(opts.output_path):
        remote = check_remote_location(opts.output_path, opts.output_format, input_roots(dataset_config))
        output = Path(tempfile.gettempdir())  # replaced by the spool folder when the prefix is claimed
    else:
        check_output_location(opts.output_path, input_roots(dataset_config))
        output = Path(opts.output_path)

    out_dtype = "float16" if opts.model_half else "float32"
    latent = {
        "latent_dim": model_config.latent_dim,
        "downsampling_ratio": ratio,
        "sample_rate": model_config.sample_rate,
        "audio_channels": model_config.in_channels,
        "is_discrete": discrete_model,
        "dtype": token_layout(model_config)[2] if discrete_model else out_dtype,
        "num_quantizers": token_layout(model_config)[0] if discrete_model else None,
        "codebook_size": token_layout(model_config)[1] if discrete_model else None,
        "posterior": opts.posterior if is_vae else None,
        "posterior_std_sidecar": opts.store_std,
    }
    mode = {"skip_padding_exact": True, "full_length": opts.full_length, "random_crop": dataset_config.random_crop,
            "seed": opts.seed, "phase_flip": opts.phase_flip, "output_format": opts.output_format,
            "drop_silence": opts.drop_silence}
    details = build_details(model_config=raw_model, dataset_config=dataset_config.raw, sample_size=opts.sample_size,
                            args=opts.to_json(), checkpoint_sha256=file_sha256(ckpt), latent=latent, mode=mode)
    return Job(opts, model_config, dataset_config, output, details, out_dtype, remote=remote)
