"""Reading the training shards `dupn shards` writes (docs/scale-out.md; lib/io/shards.ts is the writer)."""
from __future__ import annotations

import json
import os
from typing import Dict, Iterator, List, Optional

import torch

FORMAT = "dupn-shards"
VERSION = 1
_DTYPES = {"int32": torch.int32, "float32": torch.float32}


class ShardError(ValueError):
    """A shard folder that breaks the layout, with the file and entry named."""


class Batch:
    """One packed batch: `users` (the six UserColumns arrays) and per head its label arrays (absent: not there)."""

    def __init__(self, examples: int, users: Dict[str, torch.Tensor], heads: List[Dict[str, torch.Tensor]]):
        self.examples = examples
        self.users = users
        self.heads = heads


class Shards:
    """A shard folder: its index and the batches of each shard file."""

    def __init__(self, folder: str):
        self.folder = folder
        path = os.path.join(folder, "index.json")
        try:
            with open(path, "r", encoding="utf-8") as fh:
                self.index = json.load(fh)
        except FileNotFoundError:
            raise ShardError(f"{path}: no index (write the shards with `dupn shards --out {folder}`)") from None
        if self.index.get("format") != FORMAT or self.index.get("version") != VERSION:
            raise ShardError(f"{path}: format {self.index.get('format')!r} version {self.index.get('version')!r}, expected {FORMAT!r} {VERSION}")
        self.config = self.index["config"]
        self.heads = self.index["heads"]
        self.shards = self.index["shards"]

    @property
    def init(self) -> str:
        return os.path.join(self.folder, self.index["init"])

    def rank_shards(self, rank: int, world: int) -> List[int]:
        """The shards rank `rank` of `world` reads: rank, rank + world, … (every shard read by exactly one rank)."""
        return list(range(rank, len(self.shards), world))

    def batch_count(self, shard_ids: List[int]) -> int:
        return sum(self.shards[i]["batches"] for i in shard_ids)

    def batches(self, shard_ids: List[int], order_seed: Optional[int] = None) -> Iterator[Batch]:
        """The batches of the given shards; with `order_seed`, the shards' batches in a seeded random order."""
        entries = []
        for i in shard_ids:
            s = self.shards[i]
            with open(os.path.join(self.folder, s["index"]), "r", encoding="utf-8") as fh:
                meta = json.load(fh)
            if meta.get("byteOrder") != "little":
                raise ShardError(f"{s['index']}: byteOrder must be little")
            entries.extend((i, b) for b in meta["batches"])
        if order_seed is not None:
            g = torch.Generator().manual_seed(order_seed)
            entries = [entries[j] for j in torch.randperm(len(entries), generator=g).tolist()]
        files: Dict[int, object] = {}
        try:
            for i, b in entries:
                if i not in files:
                    files[i] = open(os.path.join(self.folder, self.shards[i]["bin"]), "rb")
                fh = files[i]
                users = {k: _read(fh, v, self.shards[i]["bin"]) for k, v in b["users"].items()}
                heads = [{k: _read(fh, v, self.shards[i]["bin"]) for k, v in h.items()} for h in b["heads"]]
                yield Batch(b["examples"], users, heads)
        finally:
            for fh in files.values():
                fh.close()


def _read(fh, entry, name: str) -> torch.Tensor:
    dtype, offset, count = entry
    if dtype not in _DTYPES or not isinstance(offset, int) or not isinstance(count, int) or offset < 0 or count < 0:
        raise ShardError(f"{name}: bad array entry {entry!r}")
    fh.seek(offset)
    raw = fh.read(4 * count)
    if len(raw) != 4 * count:
        raise ShardError(f"{name}: array at {offset} needs {4 * count} bytes, the file has {len(raw)}")
    if count == 0:
        return torch.zeros(0, dtype=_DTYPES[dtype])
    return torch.frombuffer(bytearray(raw), dtype=_DTYPES[dtype])
