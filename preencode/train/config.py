"""Diffusion model configs (stable-audio-tools' ``diffusion_cond``/``diffusion_uncond`` format), typed.

The whole config is checked in one pass; every problem is reported with its JSON path, unknown keys
with a did-you-mean, unknown ``type`` values with the valid ones. Numbers that the reference declares
twice (``io_channels``, the pretransform's ``latent_dim``, ``cond_token_dim`` vs ``cond_dim``,
``global_cond_dim`` vs the global conditioners) are checked against each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..schema import Node, Problems, load_json

MODEL_TYPES = ("diffusion_cond", "diffusion_uncond")
CONDITIONER_TYPES = ("number", "t5")
OBJECTIVES = ("v", "rectified_flow")
TIMESTEP_SAMPLERS = ("uniform", "logit_normal")
OPTIMIZERS = ("AdamW", "Adam", "SGD")
SCHEDULERS = ("InverseLR", "CosineAnnealingLR", "StepLR", "ExponentialLR", "LinearLR", "OneCycleLR")


@dataclass(frozen=True)
class PretransformConfig:
    """``model.pretransform``: a frozen autoencoder; latents are divided by ``scale`` for diffusion."""

    autoencoder: dict  # the full autoencoder config for preencode.models.factory.build_autoencoder
    scale: float = 1.0


@dataclass(frozen=True)
class ConditionerConfig:
    id: str
    type: str
    min_val: float = 0.0  # number
    max_val: float = 1.0  # number
    t5_model_name: str = "t5-base"  # t5: a local folder or a name in the local Hugging Face cache
    max_length: int = 128  # t5
    project_out: bool = False


@dataclass(frozen=True)
class ConditioningConfig:
    configs: tuple[ConditionerConfig, ...]
    cond_dim: int


@dataclass(frozen=True)
class DiTConfig:
    io_channels: int
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 8
    patch_size: int = 1
    cond_token_dim: int = 0
    project_cond_tokens: bool = True
    global_cond_dim: int = 0
    project_global_cond: bool = True
    prepend_cond_dim: int = 0
    global_cond_type: str = "prepend"


@dataclass(frozen=True)
class OptimizerConfig:
    type: str = "AdamW"
    params: dict = field(default_factory=dict)
    scheduler: str | None = None
    scheduler_params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class DemoConfig:
    demo_every: int = 2000
    demo_steps: int = 250
    num_demos: int = 4
    demo_cond: tuple[dict, ...] = ()
    demo_cfg_scales: tuple[float, ...] = (3.0,)


@dataclass(frozen=True)
class TrainingConfig:
    optimizer: OptimizerConfig
    use_ema: bool = True
    ema_beta: float = 0.9999
    diffusion_objective: str = "v"
    timestep_sampler: str = "uniform"
    cfg_dropout_prob: float = 0.1
    pre_encoded: bool = False
    mask_padding: bool = True
    encode_posterior: str = "sample"  # on-the-fly encoding: "sample" (as the reference) or "mean"
    demo: DemoConfig | None = None


@dataclass(frozen=True)
class DiffusionModelConfig:
    model_type: str
    sample_rate: int
    audio_channels: int
    sample_size: int | None
    io_channels: int
    diffusion: DiTConfig
    training: TrainingConfig
    pretransform: PretransformConfig | None = None
    conditioning: ConditioningConfig | None = None
    cross_attention_cond_ids: tuple[str, ...] = ()
    global_cond_ids: tuple[str, ...] = ()
    prepend_cond_ids: tuple[str, ...] = ()
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def downsampling_ratio(self) -> int:
        if self.pretransform is None:
            return 1
        return int(self.pretransform.autoencoder["model"].get("downsampling_ratio", 1))


def parse_model_config(data: Any, source: str = "model config") -> DiffusionModelConfig:
    """Validate a parsed diffusion model config; raises ConfigError listing every problem."""
    problems = Problems()
    root = Node(data, "", problems)
    model_type = root.choice("model_type", MODEL_TYPES, what="model_type")
    sample_rate = root.int("sample_rate", minimum=1)
    audio_channels = root.int("audio_channels", 2, minimum=1)
    sample_size = root.int("sample_size", None, minimum=1)
    model = root.obj("model") or Node({}, "model", problems)
    pretransform = _pretransform(model.obj("pretransform", required=False), sample_rate, audio_channels)
    conditioning = _conditioning(model.obj("conditioning", required=False))
    diff = model.obj("diffusion") or Node({}, "model.diffusion", problems)
    cross_ids = tuple(diff.list("cross_attention_cond_ids", []))
    global_ids = tuple(diff.list("global_cond_ids", []))
    prepend_ids = tuple(diff.list("prepend_cond_ids", []))
    diff.choice("type", ("dit",), what="diffusion type")
    model_objective = diff.choice("diffusion_objective", OBJECTIVES, None, what="diffusion_objective")
    dit = _dit(diff.obj("config") or Node({}, "model.diffusion.config", problems))
    diff.check_unknown()
    io_channels = model.int("io_channels", dit.io_channels, minimum=1)
    model.check_unknown()
    training = _training(root.obj("training", required=False) or Node({}, "training", problems), model_objective)
    root.check_unknown()

    config = DiffusionModelConfig(model_type or "diffusion_cond", sample_rate, audio_channels, sample_size,
                                  io_channels, dit, training, pretransform, conditioning, cross_ids, global_ids,
                                  prepend_ids, data if isinstance(data, dict) else {})
    _cross_checks(config, root)
    problems.raise_if_any(source)
    return config


def load_model_config(path: str | Path) -> DiffusionModelConfig:
    return parse_model_config(load_json(path, "Model config"), source=str(path))


def _pretransform(node: Node | None, sample_rate: int, channels: int) -> PretransformConfig | None:
    if node is None:
        return None
    node.choice("type", ("autoencoder",), what="pretransform type")
    ae = node.obj("config")
    scale = node.number("scale", 1.0)
    if scale == 0:
        node.problem("scale", "must not be 0")
    for key in ("iterate_batch", "model_half", "chunked", "enable_grad"):
        node.raw(key, None)  # reference options without effect here (the encoder is frozen)
    node.check_unknown()
    if ae is None:
        return None
    if not isinstance(ae.data.get("latent_dim"), int):
        ae.problem("latent_dim", "is required and must be an integer")
    full = {"model_type": "autoencoder", "sample_rate": sample_rate, "audio_channels": channels, "model": ae.data}
    return PretransformConfig(full, float(scale or 1.0))


def _conditioning(node: Node | None) -> ConditioningConfig | None:
    if node is None:
        return None
    cond_dim = node.int("cond_dim", minimum=1)
    configs = []
    for i, raw in enumerate(node.list("configs")):
        item = Node(raw, f"{node.path}.configs[{i}]", node.problems)
        cid = item.str("id")
        ctype = item.choice("type", CONDITIONER_TYPES, what="conditioner type")
        cfg = item.obj("config", required=False) or Node({}, item.key_path("config"), node.problems)
        if ctype == "number":
            cc = ConditionerConfig(cid, ctype, min_val=cfg.number("min_val", 0.0), max_val=cfg.number("max_val", 1.0))
            if cc.max_val <= cc.min_val:
                cfg.problem("max_val", f"must be greater than min_val ({cc.min_val}), got {cc.max_val}")
        else:
            cc = ConditionerConfig(cid, ctype or "t5", t5_model_name=cfg.str("t5_model_name", "t5-base"),
                                   max_length=cfg.int("max_length", 128, minimum=1),
                                   project_out=cfg.bool("project_out", False))
            cfg.raw("enable_grad", None)
        cfg.check_unknown()
        item.check_unknown()
        configs.append(cc)
    node.raw("default_keys", None)
    node.check_unknown()
    return ConditioningConfig(tuple(configs), cond_dim)


def _dit(node: Node) -> DiTConfig:
    cfg = DiTConfig(
        io_channels=node.int("io_channels", minimum=1), embed_dim=node.int("embed_dim", 768, minimum=1),
        depth=node.int("depth", 12, minimum=1), num_heads=node.int("num_heads", 8, minimum=1),
        patch_size=node.int("patch_size", 1, minimum=1), cond_token_dim=node.int("cond_token_dim", 0, minimum=0),
        project_cond_tokens=node.bool("project_cond_tokens", True),
        global_cond_dim=node.int("global_cond_dim", 0, minimum=0),
        project_global_cond=node.bool("project_global_cond", True),
        prepend_cond_dim=node.int("prepend_cond_dim", 0, minimum=0),
        global_cond_type=node.choice("global_cond_type", ("prepend", "adaLN"), "prepend", what="global_cond_type"),
    )
    node.choice("transformer_type", ("continuous_transformer",), None, what="transformer_type")
    if cfg.embed_dim % max(cfg.num_heads, 1):
        node.problem("embed_dim", f"must be divisible by num_heads ({cfg.num_heads}), got {cfg.embed_dim}")
    node.check_unknown()
    return cfg


def _training(node: Node, model_objective: str | None) -> TrainingConfig:
    objective = node.choice("diffusion_objective", OBJECTIVES, model_objective or "v", what="diffusion_objective")
    if model_objective and objective != model_objective:
        node.problem("diffusion_objective", f"{objective!r} differs from model.diffusion.diffusion_objective "
                                            f"{model_objective!r}; set it in one place")
    lr = node.number("learning_rate", None)
    optimizer = _optimizer(node.obj("optimizer_configs", required=False), lr)
    if lr is None and not node.has("optimizer_configs"):
        node.problem(None, "set training.learning_rate or training.optimizer_configs")
    demo_node = node.obj("demo", required=False)
    demo = None
    if demo_node is not None:
        demo = DemoConfig(demo_every=demo_node.int("demo_every", 2000, minimum=1),
                          demo_steps=demo_node.int("demo_steps", 250, minimum=1),
                          num_demos=demo_node.int("num_demos", 4, minimum=1),
                          demo_cond=tuple(demo_node.list("demo_cond", [])),
                          demo_cfg_scales=tuple(float(s) for s in demo_node.list("demo_cfg_scales", [3.0])))
        demo_node.check_unknown()
    cfg = TrainingConfig(
        optimizer=optimizer, use_ema=node.bool("use_ema", True), ema_beta=node.number("ema_beta", 0.9999),
        diffusion_objective=objective or "v",
        timestep_sampler=node.choice("timestep_sampler", TIMESTEP_SAMPLERS, "uniform", what="timestep_sampler") or "uniform",
        cfg_dropout_prob=node.number("cfg_dropout_prob", 0.1), pre_encoded=node.bool("pre_encoded", False),
        mask_padding=node.bool("mask_padding", True),
        encode_posterior=node.choice("encode_posterior", ("sample", "mean"), "sample", what="encode_posterior") or "sample",
        demo=demo)
    for key in ("log_loss_info", "mask_padding_dropout"):
        node.raw(key, None)
    node.check_unknown()
    return cfg


def _optimizer(node: Node | None, lr: float | None) -> OptimizerConfig:
    if node is None:
        return OptimizerConfig("AdamW", {"lr": lr if lr is not None else 1e-4})
    diff = node.obj("diffusion") or Node({}, node.key_path("diffusion"), node.problems)
    node.check_unknown()
    opt = diff.obj("optimizer") or Node({}, diff.key_path("optimizer"), node.problems)
    otype = opt.choice("type", OPTIMIZERS, what="optimizer type") or "AdamW"
    params = dict((opt.obj("config", required=False) or Node({}, "", Problems())).data)
    if lr is not None:
        params.setdefault("lr", lr)
    opt.check_unknown()
    sched = diff.obj("scheduler", required=False)
    stype, sparams = None, {}
    if sched is not None:
        stype = sched.choice("type", SCHEDULERS, what="scheduler type")
        sparams = dict((sched.obj("config", required=False) or Node({}, "", Problems())).data)
        sched.check_unknown()
    diff.check_unknown()
    return OptimizerConfig(otype, params, stype, sparams)


def _cross_checks(c: DiffusionModelConfig, root: Node) -> None:
    ids = {cc.id: cc for cc in (c.conditioning.configs if c.conditioning else ())}
    for name, group in (("cross_attention_cond_ids", c.cross_attention_cond_ids),
                        ("global_cond_ids", c.global_cond_ids), ("prepend_cond_ids", c.prepend_cond_ids)):
        for cid in group:
            if cid not in ids:
                root.problem(f"model.diffusion.{name}", f"unknown conditioner id {cid!r}; defined: {', '.join(ids) or 'none'}")
    if c.diffusion.io_channels != c.io_channels:
        root.problem("model.diffusion.config.io_channels", f"is {c.diffusion.io_channels} but model.io_channels is {c.io_channels}")
    if c.pretransform is not None:
        latent_dim = c.pretransform.autoencoder["model"].get("latent_dim")
        if isinstance(latent_dim, int) and latent_dim != c.io_channels:
            root.problem("model.diffusion.config.io_channels",
                         f"is {c.io_channels} but the pretransform's latent_dim is {latent_dim}")
    cond_dim = c.conditioning.cond_dim if c.conditioning else 0
    if c.cross_attention_cond_ids and c.diffusion.cond_token_dim != cond_dim:
        root.problem("model.diffusion.config.cond_token_dim", f"is {c.diffusion.cond_token_dim} but "
                                                              f"model.conditioning.cond_dim is {cond_dim}")
    if c.global_cond_ids and c.diffusion.global_cond_dim != cond_dim * len(c.global_cond_ids):
        root.problem("model.diffusion.config.global_cond_dim",
                     f"is {c.diffusion.global_cond_dim} but {len(c.global_cond_ids)} global conditioner(s) of "
                     f"cond_dim {cond_dim} give {cond_dim * len(c.global_cond_ids)}")
    if c.prepend_cond_ids and c.diffusion.prepend_cond_dim != cond_dim:
        root.problem("model.diffusion.config.prepend_cond_dim", f"is {c.diffusion.prepend_cond_dim} but "
                                                                f"model.conditioning.cond_dim is {cond_dim}")
    if c.training.pre_encoded and c.pretransform is None:
        root.problem("training.pre_encoded", "is true but the model has no pretransform to decode latents with")
    if c.model_type == "diffusion_uncond" and (c.cross_attention_cond_ids or c.global_cond_ids or c.prepend_cond_ids):
        root.problem("model.diffusion", "a diffusion_uncond model takes no conditioning ids")
