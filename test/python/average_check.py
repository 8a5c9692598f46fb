"""Test driver of test/torch-twin.test.ts for the twin's weight average (python/dupn_torch/average.py): a dense
tensor and a table moved over many steps, rows touched at random, averaged lazily, against the plain per-step
average of every value; and a state saved midway and resumed, which must end bit-identical. Prints JSON."""
import json

import torch

from dupn_torch.average import WeightAverage


def run(decay: float, steps: int, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    dense = torch.randn(7, 5, generator=g)
    table = torch.randn(40, 3, generator=g)
    moves = []
    for n in range(steps):
        rows = torch.unique(torch.randint(0, 40, (int(torch.randint(0, 6, (1,), generator=g)),), generator=g))
        moves.append((rows, torch.randn(7, 5, generator=g) * 0.1, torch.randn(len(rows), 3, generator=g) * 0.1))

    def train(stop: int, state=None, start: int = 0, w=None):
        # The table as training holds it: a leaf whose sparse gradient names the rows a step's batch looked up.
        d, t = (dense.clone(), torch.nn.Parameter(table.clone())) if w is None else w
        avg = WeightAverage([("d", d)], [("t", t)], decay, start, state)
        for n in range(start, stop):
            rows, dd, dt = moves[n]
            t.grad = torch.sparse_coo_tensor(rows.unsqueeze(0), torch.zeros(len(rows), 3), t.shape) if len(rows) else None
            avg.before_step()
            with torch.no_grad():
                d += dd
                t[rows] += dt
            avg.after_step()
        return avg, (d, t)

    # The eager reference: every value of both tensors averaged every step, in float64. A table row's average
    # starts at its weights when a step first uses it; a row never used is its weights.
    d, t = dense.double().clone(), table.double().clone()
    ad, at = d.clone(), t.clone()
    first = torch.full((40,), -1)
    for n in range(steps):
        rows, dd, dt = moves[n]
        for r in rows.tolist():
            if first[r] < 0:
                first[r] = n
                at[r] = t[r]
        d += dd.double()
        t[rows] += dt.double()
        a = 1 - min(decay, (1 + n) / (10 + n))
        ad += a * (d - ad)
        seen = first >= 0
        at[seen] += a * (t[seen] - at[seen])
    at[first < 0] = t[first < 0]

    whole, _ = train(steps)
    got = whole.current()
    err = max(float(((got["d"].double() - ad).abs() / (1e-3 + ad.abs())).max()), float(((got["t"].double() - at).abs() / (1e-3 + at.abs())).max()))
    # Stopped midway, its state copied (a checkpoint), continued from there: the same bits.
    half, w = train(steps // 2)
    resumed, _ = train(steps, half.state(), steps // 2, w)
    again = resumed.current()
    same = all(torch.equal(again[k], got[k]) for k in got)
    # current() leaves the state as it was.
    snapshot = whole.state()
    whole.current()
    untouched = all(torch.equal(snapshot["avg"][k], whole.state()["avg"][k]) for k in snapshot["avg"])
    moved = int((got["t"] != table).any(1).sum())
    return {"decay": decay, "relative_error": err, "resumed_identical": same, "current_is_pure": untouched, "rows_moved": moved}


print(json.dumps([run(0.55, 30, 1), run(0.3, 25, 2), run(0.999, 40, 3)]))
