"""The exponential moving average of the trained weights that `dupn train` saves (lib/train/weight-average.ts),
kept the same way here so that a model trained in torch is averaged as one trained by dupn: after step n (0-based)
avg ← avg + (1 − d_n)·(w − avg) with d_n = min(d, (1 + n)/(10 + n)), TensorFlow's warm-up.

The dense weights are averaged every step. An embedding table's row changes only in the steps whose batch uses
it, so its average is brought up to date lazily and exactly: steps a..b−1 towards a constant row multiply
(avg − w) by the product of their decays, whose warm-up part telescopes to nine factors. A row's average starts
at its weights the first step that uses it; `at[row]` is the step its average is current at (−1: never used).
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Tuple

import torch


class WeightAverage:
    def __init__(self, dense: List[Tuple[str, torch.Tensor]], tables: List[Tuple[str, torch.Tensor]], decay: float,
                 step: int, state: Optional[dict] = None):
        if not 0 < decay < 1:
            raise ValueError(f"average decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.step = step
        warm = max(0, math.ceil((10 * decay - 1) / (1 - decay)) - 2)
        while (1 + warm) / (10 + warm) < decay:
            warm += 1
        self.warm = warm  # the first step whose warm-up decay reaches d
        self.dense = dense
        self.tables = tables
        given = state["avg"] if state is not None else {}
        self.avg: Dict[str, torch.Tensor] = {}
        for name, w in dense + tables:
            a = given.get(name)
            if a is not None and tuple(a.shape) != tuple(w.shape):
                raise ValueError(f'checkpoint average "{name}": shape {tuple(a.shape)}, the weights have {tuple(w.shape)}')
            self.avg[name] = a.clone() if a is not None else w.detach().clone()
        self.at: Dict[str, torch.Tensor] = {}
        for name, w in tables:
            a = state["at"].get(name) if state is not None else None
            if a is None and name in given:
                raise ValueError(f'checkpoint average "{name}" without the step of each row ("at")')
            self.at[name] = a.clone() if a is not None else torch.full((w.shape[0],), -1, dtype=torch.int64)
        self._used: Dict[str, torch.Tensor] = {}

    def rate(self, n: int) -> float:
        return 1.0 - min(self.decay, (1 + n) / (10 + n))

    def _decay_over(self, a: torch.Tensor, b: int) -> torch.Tensor:
        """Per row, the product of the decays of steps a..b−1 (a: float64 tensor of start steps)."""
        p = torch.ones_like(a)
        c = min(b, self.warm)
        early = a < c
        if bool(early.any()):
            f = torch.ones_like(a)
            for i in range(1, 10):
                f = f * (a + i) / (c + i)
            p = torch.where(early, f, p)
        start = torch.clamp(a, min=self.warm)
        return p * torch.pow(torch.tensor(self.decay, dtype=torch.float64), torch.clamp(b - start, min=0))

    def _bring_up(self, name: str, w: torch.Tensor, avg: torch.Tensor, rows: torch.Tensor, t: int) -> None:
        """Rows `rows` of `avg` (the table's average or a copy) brought to step t."""
        at = self.at[name][rows]
        new = at < 0
        if bool(new.any()):
            avg[rows[new]] = w[rows[new]]
        old = (at >= 0) & (at != t)
        if bool(old.any()):
            r = rows[old]
            f = self._decay_over(at[old].to(torch.float64), t).unsqueeze(1)
            wr = w[r].to(torch.float64)
            avg[r] = (wr + f * (avg[r].to(torch.float64) - wr)).to(avg.dtype)

    @torch.no_grad()
    def before_step(self) -> None:
        """After backward, before the optimizer: the rows this step's sparse gradients touch (the rows its batch
        looked up) brought up to date, and kept for after_step."""
        self._used = {}
        for name, w in self.tables:
            if w.grad is None:
                continue
            rows = torch.unique(w.grad.coalesce().indices()[0])
            self._bring_up(name, w.detach(), self.avg[name], rows, self.step)
            self.at[name][rows] = self.step
            self._used[name] = rows

    @torch.no_grad()
    def after_step(self) -> None:
        """After the optimizer: every dense average and the touched rows' averages move towards the new weights,
        in double as dupn computes them."""
        a = self.rate(self.step)
        self.step += 1
        for name, w in self.dense:
            avg = self.avg[name].double()
            self.avg[name].copy_(avg + a * (w.detach().double() - avg))
        for name, w in self.tables:
            rows = self._used.get(name)
            if rows is None:
                continue
            avg = self.avg[name][rows].double()
            self.avg[name][rows] = (avg + a * (w.detach()[rows].double() - avg)).to(self.avg[name].dtype)
            self.at[name][rows] = self.step
        self._used = {}

    @torch.no_grad()
    def current(self) -> Dict[str, torch.Tensor]:
        """Every average as of now (tables as brought-up copies; the state is not changed)."""
        out = {name: self.avg[name].clone() for name, _ in self.dense}
        for name, w in self.tables:
            avg = self.avg[name].clone()
            rows = torch.nonzero(self.at[name] != self.step).flatten()
            self._bring_up(name, w.detach(), avg, rows, self.step)
            out[name] = avg
        return out

    def state(self) -> dict:
        return {"avg": {k: v.clone() for k, v in self.avg.items()}, "at": {k: v.clone() for k, v in self.at.items()}}

