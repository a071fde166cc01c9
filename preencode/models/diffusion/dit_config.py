"""The ``dit`` network's settings (``model.diffusion.config``), typed and validated.

Every keyword the reference's ``DiffusionTransformer`` and ``ContinuousTransformer`` accept from a
config is here, with the reference's default. The transformer's options sit flat in the same object,
with ``attn_kwargs``, ``ff_kwargs`` and ``norm_kwargs`` as nested objects, exactly as the reference
passes them on. An option that is not implemented (``causal``, ``sliding_window``) is a problem naming
it, never silently dropped; so is a combination the reference would crash on (too few features per
head for its rotary embeddings, a context width that is not a whole number of heads...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...schema import Node, describe
from .attention import QK_NORMS

TRANSFORMER_TYPES = ("continuous_transformer",)
GLOBAL_COND_TYPES = ("prepend", "adaLN")
TIMESTEP_COND_TYPES = ("global", "input_concat")
ROTARY_MIN_HEAD_DIM = 32  # the reference rotates max(dim_heads // 2, 32) features of each head


@dataclass(frozen=True)
class TransformerOptions:
    """The reference's keyword options of ``ContinuousTransformer`` / ``TransformerBlock``."""

    rotary_pos_emb: bool = True
    final_cross_attn_ix: int = -1
    zero_init_branch_outputs: bool = True
    conformer: bool = False
    use_sinusoidal_emb: bool = False
    use_abs_pos_emb: bool = False
    abs_pos_emb_max_length: int = 10000
    num_memory_tokens: int = 0
    remove_norms: bool = False
    add_rope: bool = False
    layer_scale: bool = False
    qk_norm: str = "none"  # attn_kwargs
    differential: bool = False  # attn_kwargs
    feat_scale: bool = False  # attn_kwargs
    ff_mult: float = 4  # ff_kwargs.mult
    ff_no_bias: bool = False
    ff_glu: bool = True
    ff_use_conv: bool = False
    ff_conv_kernel_size: int = 3
    norm_bias: bool = False  # norm_kwargs.bias
    norm_fix_scale: bool = False
    norm_force_fp32: bool = False
    norm_eps: float = 1e-5

    def norm_kwargs(self) -> dict[str, Any]:
        return {"bias": self.norm_bias, "fix_scale": self.norm_fix_scale, "force_fp32": self.norm_force_fp32,
                "eps": self.norm_eps}

    def ff_kwargs(self) -> dict[str, Any]:
        return {"mult": self.ff_mult, "no_bias": self.ff_no_bias, "glu": self.ff_glu, "use_conv": self.ff_use_conv,
                "conv_kernel_size": self.ff_conv_kernel_size}


@dataclass(frozen=True)
class DiTConfig:
    """``model.diffusion.config`` of a ``dit`` model (defaults are the reference's)."""

    io_channels: int = 32
    patch_size: int = 1
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 8
    cond_token_dim: int = 0
    project_cond_tokens: bool = True
    global_cond_dim: int = 0
    project_global_cond: bool = True
    input_concat_dim: int = 0
    prepend_cond_dim: int = 0
    transformer_type: str = "continuous_transformer"
    global_cond_type: str = "prepend"
    timestep_cond_type: str = "global"
    timestep_embed_dim: int | None = None
    transformer: TransformerOptions = field(default_factory=TransformerOptions)

    @property
    def dim_heads(self) -> int:
        return self.embed_dim // self.num_heads

    @property
    def cond_embed_dim(self) -> int:
        """Width of the cross-attention context after ``to_cond_embed`` (0 without cross-attention)."""
        if not self.cond_token_dim:
            return 0
        return self.embed_dim if self.project_cond_tokens else self.cond_token_dim

    @property
    def timestep_dim(self) -> int:
        """Width of the timestep embedding."""
        if self.timestep_cond_type == "global":
            return self.embed_dim
        return self.timestep_embed_dim or 0

    @property
    def dim_in(self) -> int:
        """Channels entering the network: latents, input-concat conditioning, timestep channels."""
        extra = self.timestep_dim if self.timestep_cond_type == "input_concat" else 0
        return self.io_channels + self.input_concat_dim + extra


def parse_dit_config(node: Node, io_key: str = "io_channels", objective_allowed: bool = False
                     ) -> tuple[DiTConfig, str | None]:
    """Read a ``dit`` config; returns it and its ``diffusion_objective`` (allowed here only for
    ``diffusion_uncond``, whose wrapper passes the whole object to the network)."""
    d = DiTConfig()
    before = len(node.problems)
    objective = node.choice("diffusion_objective", ("v", "rectified_flow", "rf_denoiser"), None,
                            what="diffusion_objective") if objective_allowed else None
    cfg = DiTConfig(
        io_channels=node.int(io_key, d.io_channels, minimum=1),
        patch_size=node.int("patch_size", d.patch_size, minimum=1),
        embed_dim=node.int("embed_dim", d.embed_dim, minimum=1),
        depth=node.int("depth", d.depth, minimum=1),
        num_heads=node.int("num_heads", d.num_heads, minimum=1),
        cond_token_dim=node.int("cond_token_dim", 0, minimum=0),
        project_cond_tokens=node.bool("project_cond_tokens", True),
        global_cond_dim=node.int("global_cond_dim", 0, minimum=0),
        project_global_cond=node.bool("project_global_cond", True),
        input_concat_dim=node.int("input_concat_dim", 0, minimum=0),
        prepend_cond_dim=node.int("prepend_cond_dim", 0, minimum=0),
        transformer_type=node.choice("transformer_type", TRANSFORMER_TYPES, d.transformer_type,
                                     what="transformer_type") or d.transformer_type,
        global_cond_type=node.choice("global_cond_type", GLOBAL_COND_TYPES, d.global_cond_type,
                                     what="global_cond_type") or d.global_cond_type,
        timestep_cond_type=node.choice("timestep_cond_type", TIMESTEP_COND_TYPES, d.timestep_cond_type,
                                       what="timestep_cond_type") or d.timestep_cond_type,
        timestep_embed_dim=node.int("timestep_embed_dim", None, minimum=1),
        transformer=_transformer_options(node),
    )
    if not objective_allowed and node.has("diffusion_objective"):
        node.raw("diffusion_objective")
        node.problem("diffusion_objective", "belongs in model.diffusion (the reference passes it to the "
                     "network itself); move it there")
    node.check_unknown()
    if len(node.problems) == before:
        _check(node, cfg)
    return cfg, objective


def _transformer_options(node: Node) -> TransformerOptions:
    d = TransformerOptions()
    for key, allowed in (("causal", False), ("sliding_window", None)):
        value = node.raw(key, allowed)
        if value != allowed:
            node.problem(key, f"{describe(value)} is not implemented (only {describe(allowed)}); remove it")
    attn = node.obj("attn_kwargs", required=False) or Node({}, node.key_path("attn_kwargs"), node.problems)
    ff = node.obj("ff_kwargs", required=False) or Node({}, node.key_path("ff_kwargs"), node.problems)
    norm = node.obj("norm_kwargs", required=False) or Node({}, node.key_path("norm_kwargs"), node.problems)
    opts = TransformerOptions(
        rotary_pos_emb=node.bool("rotary_pos_emb", d.rotary_pos_emb),
        final_cross_attn_ix=node.int("final_cross_attn_ix", d.final_cross_attn_ix, minimum=-1),
        zero_init_branch_outputs=node.bool("zero_init_branch_outputs", True),
        conformer=node.bool("conformer", False),
        use_sinusoidal_emb=node.bool("use_sinusoidal_emb", False),
        use_abs_pos_emb=node.bool("use_abs_pos_emb", False),
        abs_pos_emb_max_length=node.int("abs_pos_emb_max_length", d.abs_pos_emb_max_length, minimum=1),
        num_memory_tokens=node.int("num_memory_tokens", 0, minimum=0),
        remove_norms=node.bool("remove_norms", False),
        add_rope=node.bool("add_rope", False),
        layer_scale=node.bool("layer_scale", False),
        qk_norm=attn.choice("qk_norm", QK_NORMS, "none", what="qk_norm") or "none",
        differential=attn.bool("differential", False),
        feat_scale=attn.bool("feat_scale", False),
        ff_mult=ff.number("mult", d.ff_mult),
        ff_no_bias=ff.bool("no_bias", False),
        ff_glu=ff.bool("glu", True),
        ff_use_conv=ff.bool("use_conv", False),
        ff_conv_kernel_size=ff.int("conv_kernel_size", d.ff_conv_kernel_size, minimum=1),
        norm_bias=norm.bool("bias", False),
        norm_fix_scale=norm.bool("fix_scale", False),
        norm_force_fp32=norm.bool("force_fp32", False),
        norm_eps=norm.number("eps", d.norm_eps),
    )
    ff.int("dim_out", None, minimum=1)  # checked against embed_dim in _check
    if opts.ff_mult <= 0:
        ff.problem("mult", f"expected a positive number, got {describe(opts.ff_mult)}")
    if opts.ff_use_conv and opts.ff_conv_kernel_size % 2 == 0:
        ff.problem("conv_kernel_size", f"expected an odd kernel size (an even one changes the length), "
                   f"got {opts.ff_conv_kernel_size}")
    if opts.norm_eps <= 0:
        norm.problem("eps", f"expected a positive number, got {describe(opts.norm_eps)}")
    for child in (attn, ff, norm):
        child.check_unknown()
    return opts


def _check(node: Node, c: DiTConfig) -> None:
    """Combinations the reference would build but crash on at the first forward."""
    if c.embed_dim % c.num_heads:
        node.problem("num_heads", f"embed_dim {c.embed_dim} is not a multiple of num_heads {c.num_heads}")
        return
    dh = c.dim_heads
    if c.transformer.rotary_pos_emb and dh < ROTARY_MIN_HEAD_DIM:
        node.problem("num_heads", f"embed_dim / num_heads = {dh} features per head, but the rotary embeddings "
                     f"(rotary_pos_emb, on by default) rotate {ROTARY_MIN_HEAD_DIM}; use at most "
                     f"{c.embed_dim // ROTARY_MIN_HEAD_DIM} heads or set rotary_pos_emb to false")
    ctx = c.cond_embed_dim
    if ctx and (ctx % dh or c.num_heads % (ctx // dh)):
        node.problem("cond_token_dim", f"the cross-attention context ({ctx} wide) must be a whole number of "
                     f"{dh}-wide heads that divides num_heads {c.num_heads}; set project_cond_tokens to true "
                     "or change cond_token_dim")
    if c.global_cond_dim and not c.project_global_cond and c.global_cond_dim != c.embed_dim:
        node.problem("global_cond_dim", f"must equal embed_dim {c.embed_dim} when project_global_cond is "
                     f"false, got {c.global_cond_dim}")
    if c.timestep_cond_type == "input_concat":
        if c.timestep_embed_dim is None:
            node.problem("timestep_embed_dim", "is required when timestep_cond_type is \"input_concat\"")
        elif c.timestep_embed_dim != 1:
            node.problem("timestep_embed_dim", f"must be 1 with timestep_cond_type \"input_concat\" (the "
                         f"reference broadcasts the embedding as one channel over time), got {c.timestep_embed_dim}")
    elif c.timestep_embed_dim is not None:
        node.problem("timestep_embed_dim", "is only used with timestep_cond_type \"input_concat\" (with \"global\" "
                     "the timestep embedding is embed_dim wide); remove it")
    dim_out = node.data.get("ff_kwargs", {}).get("dim_out") if isinstance(node.data.get("ff_kwargs"), dict) else None
    if isinstance(dim_out, int) and dim_out != c.embed_dim:
        node.problem("ff_kwargs.dim_out", f"must equal embed_dim {c.embed_dim} (the feed-forward is a residual "
                     f"branch), got {dim_out}")
