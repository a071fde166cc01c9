"""Diffusion model configs in stable-audio-tools' format (``diffusion_cond``, ``diffusion_uncond``), typed.

The whole config is validated before anything is built and every problem is reported at once with
its JSON path: unknown keys with a did-you-mean, unknown ``type`` values with the valid ones, options
that are not implemented by name. Numbers the reference declares twice are checked against each
other: ``model.io_channels``, the DiT's ``io_channels`` and the pretransform's ``latent_dim``;
``cond_token_dim``/``prepend_cond_dim`` and ``conditioning.cond_dim``; ``global_cond_dim`` and the
global conditioners; ``input_concat_dim`` and the input-concat conditioners; ``audio_channels`` and the
pretransform's channels. The pretransform's ``config`` is our autoencoder config
(:mod:`preencode.models.config`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from ...schema import Node, Problems, describe, did_you_mean, load_json
from ..config import AutoencoderConfig, parse_autoencoder_config
from .dit_config import DiTConfig, parse_dit_config
from .t5 import T5_MODEL_DIMS
from .training_config import TrainingConfig, parse_training_config

MODEL_TYPES = ("diffusion_cond", "diffusion_uncond")
DIFFUSION_TYPES = ("dit",)
OBJECTIVES = ("v", "rectified_flow", "rf_denoiser")
CONDITIONER_TYPES = ("t5", "number", "int", "list")
PRETRANSFORM_TYPES = ("autoencoder",)


@dataclass(frozen=True)
class ConditionerConfig:
    """One entry of ``model.conditioning.configs`` (only the fields of its ``type`` matter)."""

    id: str
    type: str
    min_val: float = 0  # number, int
    max_val: float = 1  # number, int
    options: tuple[str, ...] = ()  # list
    t5_model_name: str = "t5-base"  # t5
    max_length: int = 128  # t5
    project_out: bool = False  # t5

    @property
    def tokens(self) -> int:
        """Tokens this conditioner outputs per sample."""
        return self.max_length if self.type == "t5" else 1


@dataclass(frozen=True)
class ConditioningConfig:
    configs: tuple[ConditionerConfig, ...]
    cond_dim: int
    default_keys: dict[str, str] = field(default_factory=dict)
    pre_encoded_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class PretransformConfig:
    """``model.pretransform`` of type ``autoencoder``: diffusion runs on ``encode(audio) / scale``."""

    autoencoder: AutoencoderConfig
    scale: float = 1.0
    model_half: bool = False
    iterate_batch: bool = False


@dataclass(frozen=True)
class DistributionShiftConfig:
    """``model.diffusion.distribution_shift_options`` (the reference's ``DistributionShift``)."""

    base_shift: float = 0.5
    max_shift: float = 1.15
    max_length: int = 4096
    min_length: int = 256
    use_sine: bool = False


@dataclass(frozen=True)
class DiffusionConfig:
    """A validated diffusion model config. ``raw`` keeps the JSON as given (to store beside weights)."""

    model_type: str
    sample_rate: int
    sample_size: int | None
    audio_channels: int | None
    io_channels: int
    dit: DiTConfig
    objective: str = "v"
    pretransform: PretransformConfig | None = None
    conditioning: ConditioningConfig | None = None
    cross_attention_cond_ids: tuple[str, ...] = ()
    global_cond_ids: tuple[str, ...] = ()
    input_concat_ids: tuple[str, ...] = ()
    prepend_cond_ids: tuple[str, ...] = ()
    distribution_shift: DistributionShiftConfig | None = None
    training: TrainingConfig | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def min_input_length(self) -> int:
        """Audio samples per latent frame times the patch size (lengths must be multiples of it)."""
        ratio = self.pretransform.autoencoder.downsampling_ratio if self.pretransform else 1
        return ratio * self.dit.patch_size


def parse_diffusion_config(data: Any, source: str = "model config") -> DiffusionConfig:
    """Validate a parsed diffusion config; raises :class:`ConfigError` listing every problem."""
    problems = Problems()
    root = Node(data, "", problems)
    model_type = root.choice("model_type", MODEL_TYPES, what="model_type")
    if model_type is None:  # another kind of model: the rest would only add noise
        problems.raise_if_any(source)
    conditional = model_type == "diffusion_cond"
    sample_rate = root.int("sample_rate", minimum=1)
    sample_size = root.int("sample_size", None, minimum=1)
    if not conditional and sample_size is None and root.valid("sample_size"):
        root.problem("sample_size", "is required for a diffusion_uncond model")
    audio_channels = root.int("audio_channels", None, minimum=1)
    model = root.obj("model") or Node({}, "model", problems)
    pretransform = _pretransform(model.obj("pretransform", required=False), sample_rate)
    ids: dict[str, tuple[str, ...]] = {}
    conditioning, shift = None, None
    if conditional:
        conditioning = _conditioning(model.obj("conditioning", required=False))
        diff = model.obj("diffusion") or Node({}, "model.diffusion", problems)
        diff.choice("type", DIFFUSION_TYPES, what="diffusion model type")
        for key in ("cross_attention_cond_ids", "global_cond_ids", "input_concat_ids", "prepend_cond_ids"):
            ids[key] = _ids(diff, key)
        objective = diff.choice("diffusion_objective", OBJECTIVES, "v", what="diffusion_objective") or "v"
        shift = _shift(diff.obj("distribution_shift_options", required=False))
        dit, _ = parse_dit_config(diff.obj("config") or Node({}, "model.diffusion.config", problems))
        diff.check_unknown()
        io_channels = model.int("io_channels", minimum=1)
    else:
        model.choice("type", DIFFUSION_TYPES, what="diffusion model type")
        dit, uncond_objective = parse_dit_config(model.obj("config") or Node({}, "model.config", problems),
                                                 io_key="in_channels", objective_allowed=True)
        objective = uncond_objective or "v"
        io_channels = dit.io_channels
    model.check_unknown()
    training_node = root.obj("training", required=False)
    training = parse_training_config(training_node, conditional) if training_node is not None else None
    root.check_unknown()

    config = DiffusionConfig(
        model_type=model_type, sample_rate=sample_rate, sample_size=sample_size, audio_channels=audio_channels,
        io_channels=io_channels, dit=dit, objective=objective, pretransform=pretransform, conditioning=conditioning,
        cross_attention_cond_ids=ids.get("cross_attention_cond_ids", ()),
        global_cond_ids=ids.get("global_cond_ids", ()), input_concat_ids=ids.get("input_concat_ids", ()),
        prepend_cond_ids=ids.get("prepend_cond_ids", ()), distribution_shift=shift, training=training,
        raw=data if isinstance(data, dict) else {})
    _cross_check(config, root)
    problems.raise_if_any(source)
    return config


def load_diffusion_config(path_or_dict: str | Path | dict[str, Any]) -> DiffusionConfig:
    """Parse a diffusion config from a JSON file path or an already parsed dict."""
    if isinstance(path_or_dict, dict):
        return parse_diffusion_config(path_or_dict)
    return parse_diffusion_config(load_json(path_or_dict, "Model config"), source=str(path_or_dict))


def _ids(node: Node, key: str) -> tuple[str, ...]:
    value = node.list(key, [])
    if not all(isinstance(v, str) for v in value):
        node.problem(key, f"expected a list of conditioner ids (strings), got {describe(value)}")
        return ()
    return tuple(value)


def _shift(node: Node | None) -> DistributionShiftConfig | None:
    if node is None:
        return None
    d = DistributionShiftConfig()
    cfg = DistributionShiftConfig(base_shift=node.number("base_shift", d.base_shift),
                                  max_shift=node.number("max_shift", d.max_shift),
                                  max_length=node.int("max_length", d.max_length, minimum=1),
                                  min_length=node.int("min_length", d.min_length, minimum=1),
                                  use_sine=node.bool("use_sine", False))
    if node.valid("max_length") and node.valid("min_length") and cfg.max_length <= cfg.min_length:
        node.problem("max_length", f"must be greater than min_length ({cfg.min_length}), got {cfg.max_length}")
    node.check_unknown()
    return cfg


def _pretransform(node: Node | None, sample_rate: int) -> PretransformConfig | None:
    if node is None:
        return None
    node.choice("type", PRETRANSFORM_TYPES, what="pretransform type")
    scale = node.number("scale", 1.0)
    if scale == 0:
        node.problem("scale", "must not be 0 (latents are divided by it)")
    for key in ("chunked", "enable_grad"):
        if node.bool(key, False):
            node.problem(key, "true is not implemented (the pretransform encodes whole inputs and is frozen); "
                         "set it to false")
    half, iterate = node.bool("model_half", False), node.bool("iterate_batch", False)
    ae_node = node.obj("config")
    node.check_unknown()
    if ae_node is None:
        return None
    full = {"model_type": "autoencoder", "sample_rate": max(sample_rate, 1), "model": ae_node.data}
    try:
        autoencoder = parse_autoencoder_config(full, source="pretransform")
    except ConfigError as err:  # its paths are under "model": re-root them under model.pretransform.config
        node.problems.extend("model.pretransform.config" + p[len("model"):]
                             for p in err.problems if p.startswith("model"))
        return None
    return PretransformConfig(autoencoder, float(scale) or 1.0, half, iterate)


def _conditioning(node: Node | None) -> ConditioningConfig | None:
    if node is None:
        return None
    cond_dim = node.int("cond_dim", minimum=1)
    configs: list[ConditionerConfig] = []
    for i, raw in enumerate(node.list("configs")):
        item = Node(raw, f"{node.path}.configs[{i}]", node.problems)
        cid = item.str("id")
        if any(c.id == cid for c in configs):
            item.problem("id", f"{cid!r} is used by an earlier conditioner")
        ctype = item.choice("type", CONDITIONER_TYPES, what="conditioner type (others are not implemented)")
        cfg = item.obj("config", required=False) or Node({}, item.key_path("config"), node.problems)
        configs.append(_conditioner(cfg, cid, ctype))
        cfg.check_unknown()
        item.check_unknown()
    defaults = node.raw("default_keys", {})
    if not isinstance(defaults, dict) or not all(isinstance(v, str) for v in defaults.values()):
        node.problem("default_keys", f"expected an object of metadata key names, got {describe(defaults)}")
        defaults = {}
    known = [c.id for c in configs]
    for key in defaults:
        if key not in known:
            node.problem(f"default_keys.{key}", f"is not a conditioner id{did_you_mean(key, known)}")
    pre_encoded = _ids(node, "pre_encoded_keys")
    for key in pre_encoded:
        if key not in known:
            node.problem("pre_encoded_keys", f"{key!r} is not a conditioner id{did_you_mean(key, known)}")
    node.check_unknown()
    return ConditioningConfig(tuple(configs), cond_dim, dict(defaults), pre_encoded)


def _conditioner(cfg: Node, cid: str, ctype: str | None) -> ConditionerConfig:
    if ctype == "t5":
        name = cfg.str("t5_model_name", "t5-base")
        if name not in T5_MODEL_DIMS and not (Path(name) / "config.json").is_file():
            cfg.problem("t5_model_name", f"unknown T5 model {name!r}; valid: {', '.join(T5_MODEL_DIMS)} "
                        f"or a local folder with a saved T5 encoder{did_you_mean(name, T5_MODEL_DIMS)}")
        if cfg.bool("enable_grad", False):
            cfg.problem("enable_grad", "true (fine-tuning T5) is not implemented; set it to false")
        return ConditionerConfig(cid, ctype, t5_model_name=name, max_length=cfg.int("max_length", 128, minimum=1),
                                 project_out=cfg.bool("project_out", False))
    if ctype == "number":
        low, high = cfg.number("min_val", 0), cfg.number("max_val", 1)
        if cfg.valid("min_val") and cfg.valid("max_val") and high <= low:
            cfg.problem("max_val", f"must be greater than min_val ({low}), got {high}")
        return ConditionerConfig(cid, ctype, min_val=low, max_val=high)
    if ctype == "int":
        low, high = cfg.int("min_val", 0), cfg.int("max_val", 512)
        if cfg.valid("min_val") and low != 0:
            cfg.problem("min_val", f"must be 0: the reference indexes its table by the value itself, so values "
                        f"above max_val - min_val would fail; got {low}")
        if cfg.valid("max_val") and high < low:
            cfg.problem("max_val", f"must be at least min_val ({low}), got {high}")
        return ConditionerConfig(cid, ctype, min_val=low, max_val=high)
    if ctype == "list":
        options = cfg.list("options")
        if not all(isinstance(o, str) for o in options):
            cfg.problem("options", f"expected a list of strings, got {describe(options)}")
            options = []
        return ConditionerConfig(cid, ctype, options=tuple(options))
    return ConditionerConfig(cid, ctype or "number")


def _clean(root: Node, *paths: str) -> bool:
    """No problem has been found at or under any of ``paths`` (so their values can be compared)."""
    return not any(p.startswith(paths) for p in root.problems)


def _cross_check(c: DiffusionConfig, root: Node) -> None:
    """Numbers declared in two places, conditioner ids, lengths; each check runs when the values it
    compares were read without problems, so that every independent problem is reported at once."""
    dit_path = "model.config" if c.model_type == "diffusion_uncond" else "model.diffusion.config"
    io_key = "in_channels" if c.model_type == "diffusion_uncond" else "io_channels"
    io_paths = (f"{dit_path}.{io_key}", "model.io_channels")
    if _clean(root, *io_paths) and c.dit.io_channels != c.io_channels:
        root.problem(f"{dit_path}.io_channels", f"is {c.dit.io_channels} but model.io_channels is {c.io_channels}")
    if c.pretransform is not None and _clean(root, "model.pretransform"):
        ae = c.pretransform.autoencoder
        if _clean(root, *io_paths) and ae.latent_dim != c.io_channels:
            root.problem(f"{dit_path}.{io_key}", f"is {c.io_channels} but the pretransform's latent_dim is "
                         f"{ae.latent_dim} (the model diffuses the pretransform's latents)")
        if _clean(root, "audio_channels") and c.audio_channels is not None and c.audio_channels != ae.io_channels:
            root.problem("audio_channels", f"is {c.audio_channels} but the pretransform takes {ae.io_channels} "
                         "channels (model.pretransform.config.io_channels)")
    if (_clean(root, "sample_size", "model.pretransform", f"{dit_path}.patch_size") and c.sample_size is not None
            and c.sample_size % c.min_input_length):
        root.problem("sample_size", f"must be a multiple of {c.min_input_length} (the pretransform's "
                     f"downsampling ratio x patch_size), got {c.sample_size}")
    if c.model_type == "diffusion_cond" and _clean(root, "model.conditioning", "model.diffusion.cross_attention",
                                                   "model.diffusion.global", "model.diffusion.input_concat",
                                                   "model.diffusion.prepend"):
        _check_conditioning(c, root)


def _check_conditioning(c: DiffusionConfig, root: Node) -> None:
    configs = {cc.id: cc for cc in (c.conditioning.configs if c.conditioning else ())}
    cond_dim = c.conditioning.cond_dim if c.conditioning else 0
    pre_encoded = set(c.conditioning.pre_encoded_keys) if c.conditioning else set()
    d, path = c.dit, "model.diffusion.config"
    groups = {"cross_attention_cond_ids": c.cross_attention_cond_ids, "global_cond_ids": c.global_cond_ids,
              "input_concat_ids": c.input_concat_ids, "prepend_cond_ids": c.prepend_cond_ids}
    for key, group in groups.items():
        for cid in group:
            if cid not in configs:
                root.problem(f"model.diffusion.{key}", f"unknown conditioner id {cid!r}; defined: "
                             f"{', '.join(configs) or 'none'}{did_you_mean(cid, configs)}")
    if any(cid not in configs for group in groups.values() for cid in group):
        return

    def expect(group: tuple[str, ...], dim_key: str, actual: int, expected: int | None, what: str) -> None:
        if not _clean(root, f"{path}.{dim_key}"):
            return
        if group and actual == 0:
            root.problem(f"{path}.{dim_key}", f"is 0 but model.diffusion has {what} conditioners {list(group)}")
        elif not group and actual:
            root.problem(f"{path}.{dim_key}", f"is {actual} but no conditioner is routed there (the layers would "
                         f"never be used); set it to 0 or add {what} ids")
        elif group and expected is not None and actual != expected:
            root.problem(f"{path}.{dim_key}", f"is {actual} but the {what} conditioners {list(group)} give {expected}")

    def known(group: tuple[str, ...]) -> bool:  # pre-encoded tensors have a width only the data knows
        return not any(cid in pre_encoded for cid in group)

    cross, glob = c.cross_attention_cond_ids, c.global_cond_ids
    expect(cross, "cond_token_dim", d.cond_token_dim, cond_dim if known(cross) else None, "cross-attention")
    expect(glob, "global_cond_dim", d.global_cond_dim, cond_dim * len(glob) if known(glob) else None, "global")
    expect(c.prepend_cond_ids, "prepend_cond_dim", d.prepend_cond_dim,
           cond_dim if known(c.prepend_cond_ids) else None, "prepend")
    concat = c.input_concat_ids
    expect(concat, "input_concat_dim", d.input_concat_dim,
           sum(configs[cid].tokens for cid in concat) if known(concat) else None, "input-concat")
    for cid in glob:
        if configs[cid].tokens != 1 and cid not in pre_encoded:
            root.problem("model.diffusion.global_cond_ids", f"{cid!r} is a {configs[cid].type} conditioner with "
                         f"{configs[cid].tokens} tokens; global conditioning takes one-token conditioners")
    demo = c.training.demo if c.training is not None else None
    if demo is not None and not demo.demo_cond_from_batch and _clean(root, "training.demo"):
        defaults = c.conditioning.default_keys if c.conditioning else {}
        for i, cond in enumerate(demo.demo_cond):
            missing = [cid for cid in configs if cid not in cond and defaults.get(cid) not in cond]
            if missing:
                root.problem(f"training.demo.demo_cond[{i}]", f"lacks {', '.join(map(repr, missing))} "
                             "(every conditioner reads its id from each demo)")
