"""Row-wise Adagrad for the embedding tables, as `dupn train`'s default (native/src/core/train/optimizer.cpp): one
accumulator per row, which adds the mean of the row's squared gradient values at each step that touches the row;
the row moves by lr / (sqrt(accumulator) + eps) times its gradient. Accumulators start at 0, so a row's first step
is a normalised one (FBGEMM's convention). One float per row of state instead of SparseAdam's two per value:
checkpoints are not three times the tables. Tables one value wide keep SparseAdam, as dupn does."""
from __future__ import annotations

import torch


class RowwiseAdagrad(torch.optim.Optimizer):
    def __init__(self, params, lr: float = 0.2, eps: float = 1e-8):
        if not lr > 0:
            raise ValueError(f"lr: must be > 0, got {lr}")
        super().__init__(params, dict(lr=lr, eps=eps))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, eps = group["lr"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if not p.grad.is_sparse:
                    raise ValueError("RowwiseAdagrad: the embedding tables' gradients must be sparse")
                g = p.grad.coalesce()  # a row looked up several times in a batch: its gradients summed
                rows, values = g.indices()[0], g.values()
                if rows.numel() == 0:
                    continue
                state = self.state[p]
                if "sum" not in state:
                    state["sum"] = torch.zeros(p.shape[0], dtype=torch.float32)
                acc = state["sum"]
                # The mean square in float64, added in float32, as the native step does.
                acc[rows] += values.double().pow(2).mean(1).float()
                step = lr / (acc[rows].sqrt() + eps)
                p[rows] -= step.unsqueeze(1) * values
        return None
