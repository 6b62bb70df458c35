"""What MindFormers' own classes use for a field a config leaves out, per dialect (docs/estimates.md, "Where
values come from", says where each was read in the MindFormers source and what could not be confirmed).

`ModelSpec()` is DeepSeek-V3 671B as published; the tables list only where a dialect's class differs.
"""

from __future__ import annotations

from collections.abc import Mapping

from model.spec import Dialect

CLASS_DEFAULT = "class default"
"""Source label: the model class's own default (JobSpec.defaulted)."""
CONFIG_JSON = "config.json"
"""Source label: read from pretrained_model_dir's config.json."""
MINDFORMERS_DEFAULT = "MindFormers default"
"""Source label: a parallel, training or serving field the file leaves out, at MindFormers' default."""
UNSET_IN_CLASS = "unset: the class holds None"
"""Source label: the model class has no value for the field; the figure shown is the console's own."""

_MCORE: Mapping[str, object] = {
    # mindformers/models/deepseek3/configuration_deepseek_v3.py: DeepseekV3Config's arguments are the 671B
    # values except max_position_embeddings (HF config.json: 163840)
    "model.max_position_embeddings": 4096,
    # mindformers/parallel_core/transformer_config.py: moe_aux_loss_coeff = 0. (the class registers none)
    "model.aux_loss_factor": 0.0,
}

_RESEARCH: Mapping[str, object] = {
    # research/deepseek3/deepseek3_config.py: DeepseekV3Config
    "model.num_layers": 32,
    "model.hidden_size": 4096,
    "model.num_heads": 32,
    "model.seq_length": 2048,
    "model.max_position_embeddings": 32768,
    "model.mtp_depth": 0,
    "training.params_dtype": "bfloat16",
    # mindformers/modules/transformer/moe.py: MoEConfig (the research model's moe_config)
    "model.n_routed_experts": 1,
    "model.n_shared_experts": 0,
    "model.num_experts_per_tok": 1,
    "model.moe_intermediate_size": 1407,
    "model.first_k_dense_replace": 1,  # True: `layer_id < True` makes layer 0 dense
    "model.n_group": 1,  # None: no group-limited routing, which one group of every expert is
    "model.topk_group": 1,
    "model.routed_scaling_factor": 1.0,
    "model.scoring_func": "softmax",  # use_gating_sigmoid=False
    "model.bias_update_rate": 0.0,
    "model.balance_via_bias": False,
    "model.aux_loss_factor": 0.0,  # aux_loss_factors=None: no auxiliary loss
}

CLASS_DEFAULTS: Mapping[Dialect, Mapping[str, object]] = {
    Dialect.RESEARCH: _RESEARCH,
    Dialect.MCORE: _MCORE,
    # not confirmed: MindFormers ships no pynative DeepSeek-V3 config; its names are mcore's (docs)
    Dialect.PYNATIVE: _MCORE,
}

# mindformers/parallel_core/transformer_config.py: mtp_loss_scaling_factor: Optional[float] = None, which
# the training graph's MTP loss divides by mtp_num_layers (multi_token_prediction.py)
NONE_IN_CLASS: Mapping[Dialect, frozenset[str]] = {
    Dialect.MCORE: frozenset({"model.mtp_loss_factor"}),
}

CLASS_FIELDS = ("training.params_dtype", "training.compute_dtype")
"""Fields outside `model.` that the model class holds (so a left-out one is a class default)."""


def source_of_default(spec_field: str, dialect: Dialect) -> str:
    """The label of a field the file leaves out and no config.json gave."""
    if spec_field in NONE_IN_CLASS.get(dialect, ()):
        return UNSET_IN_CLASS
    if spec_field.startswith("model.") or spec_field in CLASS_FIELDS:
        return CLASS_DEFAULT
    return MINDFORMERS_DEFAULT
