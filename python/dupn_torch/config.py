"""The resolved dupn config (docs/model.md, Configuration) and the tensor layout it calls for (docs/format.md).

The twin reads configs that dupn resolved (every model file and `dupn shards` index holds the full one), so
defaults live in one place, dupn's `resolveConfig`; here a missing key is an error, not a guess.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Tuple

# docs/format.md, Task heads: recency one-hot (8) + log count, successors (3), the log prior.
HISTORY_FEATURES = 10
SUCCESSOR_FEATURES = 3

REQUIRED = ("maxSeqLen", "itemFields", "properties", "query", "profileFields", "hidden", "bidirectional",
            "attentionHidden", "tasks")


class ConfigError(ValueError):
    """A config the twin cannot build (dupn's E_CONFIG)."""


@dataclass(frozen=True)
class Dims:
    dx: int
    dp: int
    dq: int
    du: int
    hidden: int
    directions: int
    dh: int
    attn_in: int
    attention_hidden: int
    user_dim: int


def check_resolved(config: dict) -> dict:
    missing = [k for k in REQUIRED if k not in config]
    if missing:
        raise ConfigError(f"config: missing {', '.join(missing)} (the twin needs the resolved config dupn writes)")
    return config


def dims(c: dict) -> Dims:
    dx = sum(f["dim"] for f in c["itemFields"])
    p = c["properties"]
    dp = p["typeDim"] + p["gapDim"] + p["sceneDim"]
    dq = c["query"]["dim"] if c["query"] else 0
    du = sum(f["dim"] for f in c["profileFields"])
    directions = 2 if c["bidirectional"] else 1
    dh = c["hidden"] * directions
    return Dims(dx, dp, dq, du, c["hidden"], directions, dh, dh + dq + du + dp, c["attentionHidden"], dh + du + dq)


def item_field(c: dict, name: str) -> dict:
    for f in c["itemFields"]:
        if f["name"] == name:
            return f
    raise ConfigError(f"config: no item field {name!r}")


def target_dim(c: dict, task: dict) -> int:
    if task["kind"] == "multiclass":
        return 0
    return sum(item_field(c, n)["dim"] for n in task["target"])


def dense_count(task: dict) -> int:
    if task["kind"] == "retrieval":
        return HISTORY_FEATURES + (SUCCESSOR_FEATURES if task.get("successors") else 0) if task.get("history", True) else 0
    if task["kind"] == "multiclass":
        return 0
    # A rank head's own numbers, then (binary or rank with history) a retrieval head's h without the prior.
    own = task.get("denseFeatures", 0) if task["kind"] == "rank" else 0
    return own + (HISTORY_FEATURES - 1 if task.get("history", False) else 0)


def history_field(task: dict) -> str:
    return "item" if "item" in task["target"] else task["target"][0]


def layer_stacks(c: dict, task: dict) -> List[Tuple[str, List[int]]]:
    """(stem, widths) of a task's layer stacks: one for binary/rank/multiclass, user and item towers for retrieval."""
    d = dims(c)
    name = task["name"]
    if task["kind"] == "retrieval":
        return [(f"head.{name}.user", [d.user_dim, *task["layers"]]),
                (f"head.{name}.item", [target_dim(c, task), *task["layers"]])]
    out = 1 if task["kind"] in ("binary", "rank") else task["classes"]
    return [(f"head.{name}", [d.user_dim + target_dim(c, task) + dense_count(task), *task["layers"], out])]


def tensor_specs(c: dict) -> Dict[str, Tuple[int, ...]]:
    """Every tensor of the config, name → shape, in dupn's canonical order (lib/network/tensors.ts)."""
    d = dims(c)
    H = c["hidden"]
    out: Dict[str, Tuple[int, ...]] = {}
    for f in c["itemFields"]:
        if f["dim"] > 0:
            out[f"emb.item.{f['name']}"] = (f["buckets"], f["dim"])
    p = c["properties"]
    if p["typeDim"] > 0:
        out["emb.prop.type"] = (len(p["types"]) + 1, p["typeDim"])
    if p["gapDim"] > 0:
        out["emb.prop.gap"] = (p["gapBuckets"], p["gapDim"])
    if p["sceneDim"] > 0:
        out["emb.prop.scene"] = (len(p["scenes"]) + 1, p["sceneDim"])
    if c["query"]:
        out["emb.query"] = (c["query"]["buckets"], c["query"]["dim"])
    for f in c["profileFields"]:
        if f["dim"] > 0:
            out[f"emb.profile.{f['name']}"] = (f["buckets"], f["dim"])
    for dir_ in ("fw", "bw")[: d.directions]:
        out[f"lstm.{dir_}.wx"] = (4 * H, d.dx)
        out[f"lstm.{dir_}.wp"] = (3 * H, d.dp)
        out[f"lstm.{dir_}.wh"] = (4 * H, H)
        out[f"lstm.{dir_}.b"] = (4 * H,)
    out["attn.w"] = (d.attention_hidden, d.attn_in)
    out["attn.b"] = (d.attention_hidden,)
    out["attn.v"] = (d.attention_hidden,)
    for t in c["tasks"]:
        for stem, widths in layer_stacks(c, t):
            for k in range(len(widths) - 1):
                out[f"{stem}.{k}.w"] = (widths[k + 1], widths[k])
                out[f"{stem}.{k}.b"] = (widths[k + 1],)
        if t["kind"] == "retrieval" and t.get("history", True):
            out[f"head.{t['name']}.history.w"] = (1, dense_count(t))
            out[f"head.{t['name']}.prior"] = (item_field(c, history_field(t))["buckets"],)
            s = t.get("successors")
            if s:
                out[f"head.{t['name']}.successors.from"] = (s["items"],)
                out[f"head.{t['name']}.successors.to"] = (s["items"], s["perItem"])
                out[f"head.{t['name']}.successors.weight"] = (s["items"], s["perItem"])
    return out


def is_statistic(name: str) -> bool:
    """Priors and successor tables: statistics dupn sets from counts, never moved by gradients."""
    return name.endswith(".prior") or ".successors." in name
