"""The ``training`` section of a diffusion config, typed and validated (the training loop comes later).

Every key stable-audio-tools' diffusion training wrappers and demo callbacks read is accepted, with
the reference's defaults; a key they do not read is reported with a did-you-mean. Optimizer and
scheduler settings are checked against the signature of the PyTorch class they name (``InverseLR`` is
the reference's own scheduler).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from ...schema import Node, describe

TIMESTEP_SAMPLERS = ("uniform", "logit_normal", "trunc_logit_normal", "log_snr")
INVERSE_LR_KEYS = {"inv_gamma": 1.0, "power": 1.0, "warmup": 0.0, "final_lr": 0.0, "last_epoch": -1}


@dataclass(frozen=True)
class OptimizerConfig:
    """``optimizer_configs.diffusion``: a ``torch.optim`` class and its keyword arguments, plus an
    optional scheduler (``InverseLR`` or a ``torch.optim.lr_scheduler`` class)."""

    type: str = "Adam"
    config: dict[str, Any] = field(default_factory=dict)
    scheduler_type: str | None = None
    scheduler_config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoConfig:
    demo_every: int = 2000
    demo_steps: int = 250
    num_demos: int = 8
    demo_cfg_scales: tuple[float, ...] = (3, 5, 7)
    demo_cond: tuple[dict[str, Any], ...] = ()
    demo_cond_from_batch: bool = False
    display_audio_cond: bool = False
    cond_display_configs: tuple[dict[str, Any], ...] | None = None


@dataclass(frozen=True)
class TrainingConfig:
    """The reference's ``DiffusionCondTrainingWrapper`` settings (defaults are its own)."""

    optimizer: OptimizerConfig
    learning_rate: float | None = None
    use_ema: bool = True
    log_loss_info: bool = False
    pre_encoded: bool = False
    cfg_dropout_prob: float = 0.1
    timestep_sampler: str = "uniform"
    mean_logsnr: float = -1.2  # timestep_sampler_options of log_snr
    std_logsnr: float = 2.0
    mask_padding: bool = False
    mask_padding_dropout: float = 0.0
    p_one_shot: float = 0.0
    demo: DemoConfig | None = None  # None: no ``demo`` section, no demos during training


def parse_training_config(node: Node, conditional: bool = True) -> TrainingConfig:
    """Read ``training``; ``conditional`` is False for ``diffusion_uncond`` (fewer keys)."""
    lr = node.number("learning_rate", None)
    if lr is not None and lr <= 0:
        node.problem("learning_rate", f"expected a positive number, got {describe(lr)}")
    for key in ("arc", "inpainting"):
        if node.has(key):
            node.raw(key)
            node.problem(key, "is not implemented (ARC post-training and inpainting are not supported); remove it")
    opt_node = node.obj("optimizer_configs", required=False) if conditional else None
    optimizer = _optimizer(opt_node, lr)
    if conditional and lr is None and opt_node is None:
        node.problem(None, "set training.learning_rate or training.optimizer_configs (the reference requires one)")
    if not conditional and lr is None:
        node.problem("learning_rate", "is required for a diffusion_uncond model")
    demo = _demo(node.obj("demo", required=False), conditional)
    if not conditional:
        cfg = TrainingConfig(optimizer=optimizer, learning_rate=lr, use_ema=True,
                             pre_encoded=node.bool("pre_encoded", False), demo=demo)
        node.check_unknown()
        return cfg
    sampler = node.choice("timestep_sampler", TIMESTEP_SAMPLERS, "uniform", what="timestep_sampler") or "uniform"
    options = node.obj("timestep_sampler_options", required=False) or Node({}, node.key_path(
        "timestep_sampler_options"), node.problems)
    mean_logsnr, std_logsnr = -1.2, 2.0
    if sampler == "log_snr":
        mean_logsnr = options.number("mean_logsnr", mean_logsnr)
        std_logsnr = options.number("std_logsnr", std_logsnr)
        if std_logsnr <= 0:
            options.problem("std_logsnr", f"expected a positive number, got {describe(std_logsnr)}")
        options.check_unknown()
    elif options.data:
        options.problem(None, f"the {sampler!r} timestep sampler takes no options (only 'log_snr' does); remove them")
    cfg = TrainingConfig(
        optimizer=optimizer, learning_rate=lr, use_ema=node.bool("use_ema", True),
        log_loss_info=node.bool("log_loss_info", False), pre_encoded=node.bool("pre_encoded", False),
        cfg_dropout_prob=_probability(node, "cfg_dropout_prob", 0.1), timestep_sampler=sampler,
        mean_logsnr=mean_logsnr, std_logsnr=std_logsnr, mask_padding=node.bool("mask_padding", False),
        mask_padding_dropout=_probability(node, "mask_padding_dropout", 0.0),
        p_one_shot=_probability(node, "p_one_shot", 0.0), demo=demo)
    node.check_unknown()
    return cfg


def _probability(node: Node, key: str, default: float) -> float:
    value = node.number(key, default)
    if not 0.0 <= value <= 1.0:
        node.problem(key, f"expected a probability in [0, 1], got {describe(value)}")
        return default
    return float(value)


def _optimizer(node: Node | None, lr: float | None) -> OptimizerConfig:
    if node is None:  # the reference's fallback: Adam at learning_rate
        return OptimizerConfig("Adam", {"lr": lr} if lr is not None else {})
    diff = node.obj("diffusion") or Node({}, node.key_path("diffusion"), node.problems)
    node.check_unknown()
    import torch

    opt = diff.obj("optimizer") or Node({}, diff.key_path("optimizer"), node.problems)
    otype = opt.str("type")
    oconfig = opt.obj("config", required=False) or Node({}, opt.key_path("config"), node.problems)
    cls = getattr(torch.optim, otype, None) if isinstance(otype, str) and otype else None
    if isinstance(otype, str) and otype and not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        names = sorted(n for n, c in vars(torch.optim).items() if isinstance(c, type)
                       and issubclass(c, torch.optim.Optimizer) and c is not torch.optim.Optimizer)
        opt.problem("type", f"unknown optimizer {otype!r}; valid: the torch.optim classes ({', '.join(names)})")
    elif cls is not None:
        _check_kwargs(oconfig, cls, skip=("params",))
    opt.check_unknown()
    sched = diff.obj("scheduler", required=False)
    stype: str | None = None
    sconfig: dict[str, Any] = {}
    if sched is not None:
        stype = sched.str("type")
        snode = sched.obj("config", required=False) or Node({}, sched.key_path("config"), node.problems)
        sconfig = dict(snode.data)
        if stype == "InverseLR":
            for key, default in INVERSE_LR_KEYS.items():
                snode.number(key, default)
            warmup = snode.data.get("warmup", 0.0)
            if isinstance(warmup, (int, float)) and not 0.0 <= warmup < 1.0:
                snode.problem("warmup", f"expected 0 <= warmup < 1, got {describe(warmup)}")
            snode.check_unknown()
        elif isinstance(stype, str) and stype:
            scls = getattr(torch.optim.lr_scheduler, stype, None)
            if not isinstance(scls, type):
                sched.problem("type", f"unknown scheduler {stype!r}; valid: InverseLR or a "
                              "torch.optim.lr_scheduler class (e.g. CosineAnnealingLR, LinearLR)")
            else:
                _check_kwargs(snode, scls, skip=("optimizer",))
        sched.check_unknown()
    diff.check_unknown()
    return OptimizerConfig(otype or "Adam", dict(oconfig.data), stype, sconfig)


def _check_kwargs(node: Node, cls: type, skip: tuple[str, ...]) -> None:
    """Report keys of ``node`` that ``cls.__init__`` does not take (with a did-you-mean)."""
    params = inspect.signature(cls).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    node.check_unknown(set(params) - set(skip))


def _demo(node: Node | None, conditional: bool) -> DemoConfig | None:
    d = DemoConfig()
    if node is None:
        return None
    every = node.int("demo_every", d.demo_every, minimum=1)
    steps = node.int("demo_steps", d.demo_steps, minimum=1)
    if not conditional:
        node.check_unknown()
        return DemoConfig(demo_every=every, demo_steps=steps)
    num = node.int("num_demos", minimum=1)  # required by the reference's demo callback
    scales = node.list("demo_cfg_scales")
    if not all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in scales):
        node.problem("demo_cfg_scales", f"expected a list of numbers, got {describe(scales)}")
        scales = []
    cond_raw = node.raw("demo_cond", [])
    if not isinstance(cond_raw, list) or not all(isinstance(c, dict) for c in cond_raw):
        node.problem("demo_cond", f"expected a list of objects (one per demo), got {describe(cond_raw)}")
        cond_raw = []
    from_batch = node.bool("demo_cond_from_batch", False)
    display = node.bool("display_audio_cond", False)
    displays = node.raw("cond_display_configs", None)
    if displays is not None and not (isinstance(displays, list) and all(isinstance(c, dict) for c in displays)):
        node.problem("cond_display_configs", f"expected a list of objects, got {describe(displays)}")
        displays = None
    if not from_batch and isinstance(num, int) and num >= 1 and len(cond_raw) != num:
        node.problem("demo_cond", f"has {len(cond_raw)} entries but num_demos is {num} (the reference draws "
                     "num_demos noises and conditions them on demo_cond); make them equal")
    node.check_unknown()
    return DemoConfig(demo_every=every, demo_steps=steps, num_demos=num or d.num_demos,
                      demo_cfg_scales=tuple(scales), demo_cond=tuple(cond_raw), demo_cond_from_batch=from_batch,
                      display_audio_cond=display,
                      cond_display_configs=tuple(displays) if displays is not None else None)
