"""dupn's model files (docs/format.md): safetensors with float32 tensors and the config in the metadata.

Written with the standard library and torch only, so the twin needs no extra package. Files are untrusted: every
offset, shape and dtype is checked before a byte is read as a tensor.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from typing import Dict, Optional, Tuple

import torch

# Header cap, as in dupn's reader: a hostile length must not make us allocate gigabytes.
MAX_HEADER = 100 * 1024 * 1024
CHECKSUM_KEY = "tensors_sha256"


ROWS_SUFFIX = "#rows"
"""The suffix of the row keys of a table stored by its nonzero rows (docs/format.md, Sparse tables)."""


def expand_sparse(tensors: Dict[str, torch.Tensor], specs: Dict[str, tuple], path: str) -> Dict[str, torch.Tensor]:
    """`tensors` with every table stored by its rows (`<table>` + `<table>#rows`) expanded to all its rows."""
    out = {k: v for k, v in tensors.items() if not k.endswith(ROWS_SUFFIX)}
    for name, keys in tensors.items():
        if not name.endswith(ROWS_SUFFIX):
            continue
        table = name[: -len(ROWS_SUFFIX)]
        shape = specs.get(table)
        values = out.get(table)
        if shape is None or len(shape) != 2 or values is None or not is_hashed_table(table):
            raise ModelFileError(f'{path}: tensor "{name}": only a hashed embedding table (item, profile or query field) can be stored by its rows')
        rows, dim = shape
        k = keys.long()
        if keys.dim() != 1 or tuple(values.shape) != (k.numel(), dim):
            raise ModelFileError(f'{path}: tensor "{table}": shape {list(values.shape)}, expected [{k.numel()}, {dim}] (one row per key)')
        if k.numel() and (int(k.min()) < 0 or int(k.max()) >= rows or not bool((k[1:] > k[:-1]).all())):
            raise ModelFileError(f'{path}: tensor "{name}": keys must be strictly increasing row ids below {rows}')
        full = torch.zeros(rows, dim, dtype=values.dtype)
        full[k] = values
        out[table] = full
    return out


def is_hashed_table(name: str) -> bool:
    """An item, profile or query field's table (lib/network/tensors.ts isHashedTable)."""
    return name.startswith("emb.item.") or name.startswith("emb.profile.") or name == "emb.query"


def sparsify(tensors: Dict[str, torch.Tensor]) -> Tuple[Dict[str, torch.Tensor], bool]:
    """`tensors` with each hashed table whose nonzero rows are under half its bytes stored by those rows (as
    dupn's saveModelFile does), and whether any is."""
    out: Dict[str, torch.Tensor] = {}
    any_sparse = False
    for name, t in tensors.items():
        if is_hashed_table(name) and t.dim() == 2 and t.shape[1] > 0:
            rows, dim = t.shape
            keys = (t != 0).any(dim=1).nonzero().flatten()
            if 2 * keys.numel() * (dim + 1) <= rows * dim:
                out[name] = t[keys]
                out[name + ROWS_SUFFIX] = keys.to(torch.int32)
                any_sparse = True
                continue
        out[name] = t
    return out, any_sparse


class ModelFileError(ValueError):
    """A file that breaks the format, with the tensor or field named (dupn's E_MODEL_FILE)."""


def read_safetensors(path: str, verify_checksum: bool = True) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """The tensors (name → tensor of the header's shape) and the metadata of a safetensors file: float32, and
    int32 for the row keys of a sparse table (`<table>#rows`, docs/format.md)."""
    with open(path, "rb") as fh:
        data = fh.read()
    if len(data) < 8:
        raise ModelFileError(f"{path}: {len(data)} bytes, too short for a safetensors header")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER or 8 + n > len(data):
        raise ModelFileError(f"{path}: header length {n} does not fit the file ({len(data)} bytes)")
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"{path}: header is not JSON: {e}") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{path}: header is not a JSON object")
    meta = header.pop("__metadata__", {}) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ModelFileError(f"{path}: __metadata__ must map strings to strings")
    body = memoryview(data)[8 + n :]
    spans = []
    tensors: Dict[str, torch.Tensor] = {}
    for name, entry in header.items():
        int_keys = name.endswith(ROWS_SUFFIX)
        if not isinstance(entry, dict) or entry.get("dtype") != ("I32" if int_keys else "F32"):
            raise ModelFileError(f'{path}: tensor "{name}": dtype must be {"I32" if int_keys else "F32"}')
        shape = entry.get("shape")
        offsets = entry.get("data_offsets")
        if (not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape)
                or not isinstance(offsets, list) or len(offsets) != 2 or not all(isinstance(o, int) for o in offsets)):
            raise ModelFileError(f'{path}: tensor "{name}": bad shape or data_offsets')
        begin, end = offsets
        count = 1
        for s in shape:
            count *= s
        if not 0 <= begin <= end <= len(body) or end - begin != 4 * count:
            raise ModelFileError(f'{path}: tensor "{name}": data_offsets [{begin}, {end}] do not hold shape {shape}')
        spans.append((begin, end, name))
        kind = torch.int32 if int_keys else torch.float32
        t = torch.frombuffer(bytearray(body[begin:end]), dtype=kind) if count else torch.zeros(0, dtype=kind)
        tensors[name] = t.reshape(shape)
    spans.sort()
    for (b0, e0, n0), (b1, _, n1) in zip(spans, spans[1:]):
        if b1 < e0:
            raise ModelFileError(f'{path}: tensors "{n0}" and "{n1}" overlap')
    if verify_checksum and CHECKSUM_KEY in meta:
        h = hashlib.sha256()
        for b, e, _ in spans:
            h.update(body[b:e])
        if h.hexdigest() != meta[CHECKSUM_KEY]:
            raise ModelFileError(f"{path}: the tensor data do not match the file's checksum")
    return tensors, meta


def write_safetensors(path: str, tensors: Dict[str, torch.Tensor], metadata: Optional[Dict[str, str]] = None) -> None:
    """Writes float32 tensors (int32 for `#rows` keys) in the given order, header padded to 8 bytes, with the
    tensors' SHA-256, atomically.

    A temporary file in the same folder is written, synced and renamed over `path`, so a killed process leaves
    the previous file whole (and a dupn server watching the file sees one complete replacement).
    """
    header: Dict[str, object] = {}
    blobs = []
    offset = 0
    h = hashlib.sha256()
    for name, t in tensors.items():
        int_keys = name.endswith(ROWS_SUFFIX)
        t = t.detach().to("cpu", torch.int32 if int_keys else torch.float32).contiguous()
        raw = t.numpy().astype("<i4" if int_keys else "<f4", copy=False).tobytes() if t.numel() else b""
        header[name] = {"dtype": "I32" if int_keys else "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        h.update(raw)
        offset += len(raw)
    meta = dict(metadata or {})
    meta[CHECKSUM_KEY] = h.hexdigest()
    header = {"__metadata__": meta, **header}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(struct.pack("<Q", len(text)))
            fh.write(text)
            for raw in blobs:
                fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
