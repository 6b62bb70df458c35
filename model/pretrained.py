"""A Hugging Face `config.json` (the one in an mcore config's `pretrained_model_dir`) read into typed values.

Pure: the console finds and reads the file (on its own host or on a node, console/jobs/pretrained.py); this
module only parses its text. MindFormers merges the file under the YAML's `model.model_config` (the YAML's
keys win; mindformers/models/build_config.py, `merge_model_config`), so the values are kept by their
Hugging Face key, the same name the mcore dialect reads under `model.model_config` (see docs/estimates.md).
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from model.yamlsource import Problem, SourceError
from model.yamlvalues import InvalidValue, as_bool, as_float, as_int, describe

CONFIG_JSON = "config.json"


def _scoring(value: Any) -> str:
    if value in ("sigmoid", "softmax"):
        return str(value)
    raise InvalidValue(f"expected 'sigmoid' or 'softmax', got {describe(value)}")


HF_KEYS: Mapping[str, Callable[[Any], object]] = {
    **{key: as_int for key in (
        "num_hidden_layers", "hidden_size", "num_attention_heads", "vocab_size", "intermediate_size",
        "q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim",
        "n_routed_experts", "n_shared_experts", "num_experts_per_tok", "moe_intermediate_size",
        "first_k_dense_replace", "n_group", "topk_group", "num_nextn_predict_layers",
        "max_position_embeddings")},
    "routed_scaling_factor": as_float,
    "rms_norm_eps": as_float,
    "rope_theta": as_float,
    "norm_topk_prob": as_bool,
    "scoring_func": _scoring,
}
"""The DeepSeek-V3 keys the console reads from config.json, each with its type. Keys it does not read
(`rope_scaling`, `quantization_config`, `torch_dtype`, ...) are left alone, as they are by the estimates."""


QUANT_METHOD = "quantization_config.quant_method"
"""Kept beside the architecture: weights published in fp8 (DeepSeek-V3's own) are refused by MindFormers'
inference ('Invalid quantization method: fp8', parallel_core/inference/quantization) until cast to bf16."""


@dataclass(frozen=True)
class Pretrained:
    """What a config's `pretrained_model_dir` gave: its config.json's values, or why it could not be read."""

    directory: str
    source: str = ""
    """Where config.json was read, as a person would name it (`/models/v3/config.json`, `n0:/models/...`)."""
    values: Mapping[str, object] = field(default_factory=dict)
    """Hugging Face key -> typed value, for the keys of HF_KEYS the file sets."""
    unreadable: str | None = None
    """Why the file could not be read (then `values` is empty and the class defaults stand)."""


def config_json_path(directory: str) -> str:
    return posixpath.join(directory, CONFIG_JSON)


def parse_config_json(text: str, source: str) -> dict[str, object]:
    """The typed values of a config.json's DeepSeek-V3 keys; bad JSON or a wrong type is a SourceError
    naming `source` and the key, every problem at once."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SourceError([Problem(source, exc.lineno, "", f"not valid JSON: {exc.msg} "
                                                            f"(column {exc.colno})")]) from None
    if not isinstance(document, dict):
        raise SourceError([Problem(source, None, "", f"expected a JSON object, got {describe(document)}")])
    values: dict[str, object] = {}
    problems: list[Problem] = []
    for key, parse in HF_KEYS.items():
        if key not in document:
            continue
        try:
            values[key] = parse(document[key])
        except InvalidValue as exc:
            problems.append(Problem(source, None, key, str(exc)))
    if problems:
        raise SourceError(problems)
    quantization = document.get("quantization_config")
    if isinstance(quantization, dict) and isinstance(quantization.get("quant_method"), str):
        values[QUANT_METHOD] = quantization["quant_method"]
    return values


def pretrained_from_text(directory: str, text: str, source: str) -> Pretrained:
    return Pretrained(directory, source, parse_config_json(text, source))
