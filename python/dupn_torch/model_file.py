"""Loading and saving whole dupn models (docs/format.md, `__metadata__`)."""
from __future__ import annotations

import json
from typing import Dict, Optional

import torch

from .config import ConfigError, tensor_specs
from .network import DupnNet
from .safetensors_io import ROWS_SUFFIX, ModelFileError, expand_sparse, read_safetensors, sparsify, write_safetensors


def load_model(path: str, dtype: torch.dtype = torch.float32) -> DupnNet:
    """A dupn model file (or the model part of a training checkpoint) as a DupnNet."""
    tensors, meta = read_safetensors(path)
    if meta.get("format") not in ("dupn", "dupn-checkpoint"):
        raise ModelFileError(f"{path}: __metadata__.format is {meta.get('format')!r}, expected \"dupn\"")
    try:
        config = json.loads(meta["config"])
    except (KeyError, json.JSONDecodeError) as e:
        raise ModelFileError(f"{path}: __metadata__.config is missing or not JSON ({e})") from None
    specs = tensor_specs(config)
    if any(k.endswith(ROWS_SUFFIX) for k in tensors) and meta.get("format_version") != "2":
        raise ModelFileError(f'{path}: a table stored by its rows needs __metadata__.format_version "2"')
    tensors = expand_sparse(tensors, specs, path)
    try:
        return DupnNet(config, {k: v for k, v in tensors.items() if k in specs}, dtype=dtype)
    except ConfigError as e:
        raise ModelFileError(f"{path}: {e}") from None


def save_model(net: DupnNet, path: str, extra_metadata: Optional[dict] = None, replace: Optional[Dict[str, torch.Tensor]] = None) -> None:
    """Writes `net` as a dupn model file (atomically), loadable by `Model.load` and `dupn serve`; `replace`: tensors
    written instead of the net's own (a training run's weight averages)."""
    tensors = net.tensors()
    for name, t in (replace or {}).items():
        tensors[name] = t.detach().to("cpu", torch.float32)
    for name, t in tensors.items():
        if not torch.isfinite(t).all():
            raise ValueError(f'tensor "{name}" holds NaN or Infinity: not written')
    tensors, any_sparse = sparsify(tensors)
    meta = {"format": "dupn", "format_version": "2" if any_sparse else "1", "config": json.dumps(net.config, separators=(",", ":"))}
    meta.update(extra_metadata or {})
    write_safetensors(path, tensors, meta)
