"""Keys a config sets that MindFormers does not declare (most likely typos), found in the sections the console
reads, each with the closest key it knows.

A key is known when the dialect's table (model.config.DIALECT_FIELDS) reads it or MindFormers declares it for
that section (model/mindformers_keys.py). Sections whose children are free-form (callbacks, datasets,
processor, optimizer...) are not checked.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping

from model import mindformers_keys as declared
from model.spec import Dialect, UnknownKey
from model.yamlsource import FieldPath, LocatedDocument, Problem, dotted

_GRAPH_CHECKED = ("", "parallel_config", "parallel", "parallel.parallel_optimizer_config", "model",
                  "model.model_config", "runner_config", "recompute_config", "context")
CHECKED_SECTIONS: Mapping[Dialect, tuple[str, ...]] = {
    Dialect.RESEARCH: (*_GRAPH_CHECKED, "moe_config"),
    Dialect.MCORE: _GRAPH_CHECKED,  # a top-level moe_config is said as a whole (MCORE_MOE_CONFIG)
    Dialect.PYNATIVE: ("", "parallelism", "training", "recompute", "context", "model"),
}
"""The sections each dialect's keys are checked in, by dotted path ('' is the top level)."""

REFUSING_SECTIONS: Mapping[Dialect, frozenset[str]] = {
    # mindformers/tools/register/template.py (r1.4.0 on): MindFormerConfig applies ConfigTemplate to a file,
    # and these sections' classes raise KeyError "gets an unexpected key"; the others keep or drop the key
    Dialect.RESEARCH: frozenset({"parallel_config", "recompute_config", "runner_config", "moe_config"}),
    # mcore model.model_config: 1.6 to 1.8 raise RuntimeError "Unexpected Keys" for a key the conversion to
    # TransformerConfig does not map (parallel_core/transformer_config_utils.py), 1.9 on only log "Unmapped
    # Keys" (parallel_core/config_converter.py): said to be ignored, as the current release does
    Dialect.MCORE: frozenset({"parallel_config", "recompute_config", "runner_config"}),
    # mindformers/pynative/config/config.py: BaseConfig.from_dict raises ValueError "Unknown configuration
    # keys" for every section class without allow_extra
    Dialect.PYNATIVE: frozenset({"parallelism", "training", "recompute", "context"}),
}
"""Sections where MindFormers refuses the file for a key it does not declare, instead of ignoring the key."""

TRAIN_ONLY_SECTIONS = frozenset({"recompute_config"})
"""Template sections MindFormers applies only to a file that trains (mindformers/tools/register/
template.py: train_configs); a predict or eval file, or one without run_mode, drops them unread."""
TRAINING_RUN_MODES = frozenset({"train", "finetune"})


def run_mode_of(doc: LocatedDocument) -> str | None:
    """The file's `run_mode`, None when it sets none (MindFormers then applies only the general sections)."""
    value = doc.data.get("run_mode") if isinstance(doc.data, dict) else None
    return value if isinstance(value, str) else None


MCORE_ALIASES: Mapping[str, str] = {
    # mindformers/models/deepseek3/config_converter_deepseek_v3.py (r1.9.0 on; transformer_config_utils.py's
    # mapping before): TransformerConfig's name -> the Hugging Face name DeepseekV3Config always sets
    "num_layers": "num_hidden_layers", "layernorm_epsilon": "rms_norm_eps",
    "ffn_hidden_size": "intermediate_size",
    "mtp_num_layers": "num_nextn_predict_layers", "moe_router_num_groups": "n_group",
    "num_moe_experts": "n_routed_experts", "moe_router_group_topk": "topk_group",
    "shared_expert_num": "n_shared_experts", "moe_router_topk": "num_experts_per_tok",
    "moe_ffn_hidden_size": "moe_intermediate_size", "moe_router_topk_scaling_factor": "routed_scaling_factor",
    "rotary_base": "rope_theta", "qk_head_dim": "qk_nope_head_dim", "qk_pos_emb_head_dim": "qk_rope_head_dim",
}
"""An mcore model_config key under its TransformerConfig name is not read by the console, and MindFormers
refuses it: DeepseekV3Config sets the Hugging Face name too (its class default when the file does not), and
two names of one field are 'Mapping Conflicts' (1.9 on) or 'Multiple Config' (up to 1.8)."""
_MCORE_MODEL_CONFIG = "model.model_config"
MCORE_MOE_CONFIG = "moe_config"
"""An mcore file's top-level moe_config is not dropped: MindFormers keeps it (core/parallel_config.py) and
build_model.py passes its keys over model_config's and config.json's. The console reads the architecture
from model_config only, so the section is named, to be moved there."""

_CLOSE_TO_READ = 0.75
"""How alike (difflib ratio) a key must be to a key the console reads to be called its typo."""
_CLOSE_TO_DECLARED = 0.8
"""The same for the other keys MindFormers declares: stricter, as there are hundreds."""


def unknown_keys(doc: LocatedDocument, dialect: Dialect) -> tuple[UnknownKey, ...]:
    """Every unknown key of `doc`'s read sections, in file order."""
    found: list[UnknownKey] = []
    if dialect is Dialect.MCORE and isinstance(doc.data, dict) and MCORE_MOE_CONFIG in doc.data:
        found.append(UnknownKey(MCORE_MOE_CONFIG, doc.lines.get((MCORE_MOE_CONFIG,)), _MCORE_MODEL_CONFIG))
    known, read = known_keys(dialect), read_keys(dialect)
    for section in CHECKED_SECTIONS[dialect]:
        path: FieldPath = tuple(section.split(".")) if section else ()
        node = _section(doc.data, path)
        for key in node:
            name = str(key)
            if _is_alias(dialect, section, name):
                found.append(UnknownKey(path=dotted((*path, name)), line=doc.lines.get((*path, name)),
                                        suggestion=dotted((*path, MCORE_ALIASES[name]))))
                continue
            if name in known[section]:
                continue
            match = _closest(name, read.get(section, frozenset()), known[section])
            found.append(UnknownKey(path=dotted((*path, name)), line=doc.lines.get((*path, name)),
                                    suggestion=dotted((*path, match)) if match else None))
    return tuple(sorted(found, key=lambda k: k.line or 0))


def unknown_key_problems(doc: LocatedDocument, dialect: Dialect) -> list[Problem]:
    """The unknown keys as problems of the file, for a file that cannot be read into a spec: the error that
    stops it may be the typo's doing (num_hidden_layer leaves 61 layers for a 3-layer stage plan)."""
    return [Problem(doc.source, key.line, key.path, describe(key, dialect, run_mode_of(doc)))
            for key in unknown_keys(doc, dialect)]


def describe(key: UnknownKey, dialect: Dialect, run_mode: str | None) -> str:
    """What MindFormers does with `key`, and the key it most likely meant."""
    section, _, name = key.path.rpartition(".")
    if dialect is Dialect.MCORE and key.path == MCORE_MOE_CONFIG:
        return ("MindFormers passes an mcore config's moe_config over model_config and config.json "
                "(build_model.py), but the console reads the architecture from model_config only: move these "
                "keys under model.model_config, by their Hugging Face names")
    if _is_alias(dialect, section, name):
        field = MCORE_ALIASES[name]
        return (f"{name} is TransformerConfig's name for {field}, which DeepseekV3Config always sets: "
                f"MindFormers refuses the two names of one field ('Mapping Conflicts'); write {field}")
    fate = "MindFormers ignores it"
    if dialect is Dialect.MCORE and section == "model.model_config":
        fate = "MindFormers 1.9 on ignores it; 1.6 to 1.8 refuse the file: 'Unexpected Keys'"
    if refused(key, dialect, run_mode):
        fate = f"MindFormers refuses the file: {section} takes only the keys it declares"
    if key.suggestion is None:
        return f"unknown key {name} ({fate}); no key MindFormers knows there is close to it"
    return f"unknown key {name} ({fate}): did you mean {key.suggestion.rpartition('.')[2]}?"


def refused(key: UnknownKey, dialect: Dialect, run_mode: str | None) -> bool:
    """Whether MindFormers refuses the file for `key` (rather than ignoring the key), the file's
    `run_mode` being what it is."""
    section, _, name = key.path.rpartition(".")
    trains = run_mode in TRAINING_RUN_MODES
    if dialect is not Dialect.PYNATIVE and section in TRAIN_ONLY_SECTIONS and not trains:
        return False
    return section in REFUSING_SECTIONS[dialect] or _is_alias(dialect, section, name)


def _is_alias(dialect: Dialect, section: str, name: str) -> bool:
    return dialect is Dialect.MCORE and section == _MCORE_MODEL_CONFIG and name in MCORE_ALIASES


@functools.cache
def read_keys(dialect: Dialect) -> Mapping[str, frozenset[str]]:
    """Section -> the keys of it the dialect's table reads."""
    from model.config import DIALECT_FIELDS  # model.config calls unknown_keys: import when first needed

    sections: dict[str, set[str]] = {}
    for spec_field in DIALECT_FIELDS[dialect]:
        names = [str(part) for part in spec_field.path]
        for depth in range(len(names)):
            sections.setdefault(".".join(names[:depth]), set()).add(names[depth])
    return {section: frozenset(names) for section, names in sections.items()}


@functools.cache
def known_keys(dialect: Dialect) -> Mapping[str, frozenset[str]]:
    """Section -> every key of it the dialect's table reads or MindFormers declares."""
    tables = _declared_tables(dialect)
    read = read_keys(dialect)
    return {section: frozenset().union(read.get(section, frozenset()),
                                       *(d.keys for d in tables.get(section, ())))
            for section in CHECKED_SECTIONS[dialect]}


def _declared_tables(dialect: Dialect) -> Mapping[str, tuple[declared.Declared, ...]]:
    if dialect is Dialect.PYNATIVE:
        sections = dict(declared.PYNATIVE_SECTIONS)
        sections["model"] = (*sections["model"], *declared.MCORE_MODEL_CONFIG["model.model_config"])
        return sections
    model_config = declared.MCORE_MODEL_CONFIG if dialect is Dialect.MCORE else declared.RESEARCH_MODEL_CONFIG
    return {**declared.GRAPH_SECTIONS, **model_config}


def _section(data: object, path: FieldPath) -> dict[object, object]:
    node = data
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def _closest(name: str, read: frozenset[str], known: frozenset[str]) -> str | None:
    """The key the console reads that `name` most likely misspells, else the closest declared one."""
    for candidates, cutoff in ((read, _CLOSE_TO_READ), (known, _CLOSE_TO_DECLARED)):
        matches = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=cutoff)
        if matches:
            return matches[0]
    return None
