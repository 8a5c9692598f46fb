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


class ModelFileError(ValueError):
    """A file that breaks the format, with the tensor or field named (dupn's E_MODEL_FILE)."""


def read_safetensors(path: str, verify_checksum: bool = True) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """The float32 tensors (name → tensor of the header's shape) and the metadata of a safetensors file."""
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
        if not isinstance(entry, dict) or entry.get("dtype") != "F32":
            raise ModelFileError(f'{path}: tensor "{name}": dtype must be F32')
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
        t = torch.frombuffer(bytearray(body[begin:end]), dtype=torch.float32) if count else torch.zeros(0)
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
    """Writes float32 tensors in the given order, header padded to 8 bytes, with the tensors' SHA-256, atomically.

    A temporary file in the same folder is written, synced and renamed over `path`, so a killed process leaves
    the previous file whole (and a dupn server watching the file sees one complete replacement).
    """
    header: Dict[str, object] = {}
    blobs = []
    offset = 0
    h = hashlib.sha256()
    for name, t in tensors.items():
        t = t.detach().to("cpu", torch.float32).contiguous()
        raw = t.numpy().astype("<f4", copy=False).tobytes() if t.numel() else b""
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
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
