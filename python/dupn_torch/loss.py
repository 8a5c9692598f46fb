"""The multi-task training loss of docs/model.md, Training loss (lib/reference/loss.ts is its float64 twin).

loss = Σ_k λ_k · loss_k over heads with labels in the batch; loss_k is a weighted mean over what carries a label.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F

from .config import dense_count, layer_stacks
from .network import DupnNet
from .shards import Batch

# Point-wise weight of rank grades 0..4 (none, click, fav, cart, buy): GRADE_WEIGHTS of lib/reference/loss.ts.
GRADE_WEIGHTS = (1.0, 1.0, 2.0, 3.0, 5.0)


def head_loss(net: DupnNet, task: dict, lab: Dict[str, torch.Tensor], U: torch.Tensor, pairwise: bool) -> Optional[torch.Tensor]:
    """loss_k of one head on a batch, or None when the batch has no label for it."""
    name = task["name"]
    if task["kind"] == "multiclass":
        classes = lab["classes"].long()
        m = classes >= 0
        w = lab["classWeight"].to(U.dtype)[m]
        if not bool(m.any()) or float(w.sum()) <= 0:
            return None
        (stem, widths), = layer_stacks(net.config, task)
        z = net._mlp(stem, len(widths) - 1, U[m])
        return (w * F.cross_entropy(z, classes[m], reduction="none")).sum() / w.sum()
    owner = lab["owner"].long()
    if owner.numel() == 0:
        return None
    nF = len(net.config["itemFields"])
    items = lab["items"].long().view(-1, nF)
    D = dense_count(task)
    dense = lab["dense"].to(U.dtype).view(-1, D) if D else None
    z = net.logits(name, U[owner], items, dense)
    y = lab["label"].to(U.dtype)
    w = lab["weight"].to(U.dtype)
    if task["kind"] == "retrieval":
        # Sampled softmax per user over its candidates, each logit less the log of its sampling probability.
        if "offset" in lab:
            z = z - lab["offset"].to(U.dtype)
        B = U.shape[0]
        m = torch.full((B,), float("-inf"), dtype=z.dtype).scatter_reduce(0, owner, z.detach(), reduce="amax")
        s = torch.zeros(B, dtype=z.dtype).index_add(0, owner, torch.exp(z - m[owner]))
        lse = m[owner] + torch.log(s[owner])
        wy = w * y
        total = wy.sum()
        return (wy * (lse - z)).sum() / total if float(total) > 0 else None
    pw_base = w
    if task["kind"] == "rank":
        w = w * torch.tensor(GRADE_WEIGHTS, dtype=w.dtype)[y.long()]
        target = (y > 0).to(z.dtype)
    else:
        target = y
    total = w.sum()
    if float(total) <= 0:
        return None
    out = (w * (F.softplus(z) - target * z)).sum() / total
    if task["kind"] == "rank" and pairwise:
        pairs = (owner[:, None] == owner[None, :]) & (y[:, None] > y[None, :])
        if bool(pairs.any()):
            pw = 0.5 * (pw_base[:, None] + pw_base[None, :])
            out = out + (pw * F.softplus(-(z[:, None] - z[None, :])))[pairs].sum() / pw[pairs].sum()
    return out


class LossModule(torch.nn.Module):
    """The network and the loss in one forward (what DistributedDataParallel wraps)."""

    def __init__(self, net: DupnNet, heads: List[dict]):
        super().__init__()
        self.net = net
        self.plans = heads

    def forward(self, batch: Batch) -> Tuple[torch.Tensor, Dict[str, float]]:
        U, _ = self.net.encode(batch.users)
        total = U.new_zeros(())
        parts: Dict[str, float] = {}
        for task, plan, lab in zip(self.net.config["tasks"], self.plans, batch.heads):
            if plan["lambda"] == 0:
                continue
            lk = head_loss(self.net, task, lab, U, plan["pairwise"])
            if lk is not None:
                total = total + plan["lambda"] * lk
                parts[task["name"]] = float(lk)
        # Heads without labels in this batch still take part in the graph (at zero), so every rank's
        # gradients cover the same parameters.
        return total + 0.0 * U.sum(), parts
