"""Test driver of test/torch-twin.test.ts for the twin's row-wise Adagrad (python/dupn_torch/rowwise.py): a table
moved over many steps by sparse gradients that name rows at random (some twice in one step, as a batch that looks
a row up twice), against the formula in float64 (dupn's native step: per touched row, the accumulator adds the mean
of the row's summed squared gradient, the row moves by lr / (sqrt(accumulator) + eps) times it); and a state saved
midway and resumed, which must end bit-identical. Prints JSON."""
import io
import json

import torch

from dupn_torch.rowwise import RowwiseAdagrad

ROWS, DIM, LR, EPS = 30, 5, 0.2, 1e-8


def moves(steps: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(steps):
        n = int(torch.randint(0, 7, (1,), generator=g))
        rows = torch.randint(0, ROWS, (n,), generator=g)
        out.append((rows, torch.randn(n, DIM, generator=g) * 0.3))
    return out


def run(table, steps, start=0, stop=None, state=None):
    p = torch.nn.Parameter(table.clone())
    opt = RowwiseAdagrad([p], lr=LR, eps=EPS)
    if state is not None:
        opt.load_state_dict(torch.load(io.BytesIO(state)))
    for rows, grad in steps[start:stop]:
        # Uncoalesced, as an embedding's backward gives it: a row named twice carries two gradients.
        p.grad = torch.sparse_coo_tensor(rows.unsqueeze(0), grad, p.shape) if len(rows) else None
        opt.step()
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    return p.detach(), buf.getvalue()


def main() -> None:
    table = torch.randn(ROWS, DIM, generator=torch.Generator().manual_seed(3))
    steps = moves(200, 4)
    got, _ = run(table, steps)

    w, acc = table.double().clone(), torch.zeros(ROWS, dtype=torch.float64)
    repeated = 0
    for rows, grad in steps:
        summed = {}
        for r, gr in zip(rows.tolist(), grad.double()):
            summed[r] = summed.get(r, 0) + gr
        repeated += len(rows) - len(summed)
        for r, gr in summed.items():
            acc[r] += (gr ** 2).mean()
            w[r] -= LR / (acc[r].sqrt() + EPS) * gr
    moved = int((got != table).any(1).sum())
    error = float(((got.double() - w).abs() / w.abs().clamp_min(1e-3)).max())

    half, state = run(table, steps, stop=100)
    resumed, _ = run(half, steps, start=100, state=state)
    print(json.dumps({"relative_error": error, "rows_moved": moved, "repeated": repeated,
                      "resumed_identical": bool(torch.equal(resumed, got))}))


if __name__ == "__main__":
    main()
