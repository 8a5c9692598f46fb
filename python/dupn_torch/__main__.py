"""Command line of the twin: `python3 -m dupn_torch <command> …` (docs/scale-out.md)."""
from __future__ import annotations

import argparse
import json
import os
import sys

import torch

from .model_file import load_model, save_model
from .network import COLUMN_NAMES


def _read_json(path: str) -> dict:
    with open(path, "r", encoding="utf-8") as fh:
        return json.load(fh)


def _write_json(path: str, value: dict) -> None:
    text = json.dumps(value, separators=(",", ":"))
    if path == "-":
        sys.stdout.write(text + "\n")
    else:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)


def _columns(path: str) -> dict:
    raw = _read_json(path)
    missing = [k for k in COLUMN_NAMES if k not in raw]
    if missing:
        raise SystemExit(f"{path}: missing column {missing[0]!r} (need {', '.join(COLUMN_NAMES)})")
    return {k: torch.tensor(raw[k], dtype=torch.long) for k in COLUMN_NAMES}


def _dtype(name: str) -> torch.dtype:
    return torch.float64 if name == "float64" else torch.float32


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m dupn_torch", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)

    def command(name: str, help: str, out: str, task: bool = False):
        p = sub.add_parser(name, help=help)
        p.add_argument("--model", required=True, help="a dupn model file (.safetensors)")
        p.add_argument("--columns", required=True, help="JSON: the six UserColumns arrays as lists of integers")
        if task:
            p.add_argument("--task", required=True)
        p.add_argument("--out", required=True, help=f"JSON {out} (\"-\": stdout)")
        p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
        return p

    command("encode", "user vectors U (and attention weights) of users given as dupn columns",
            '{ "U": [[…]…], "attention": [[…]…] }')
    command("score", "a head's scores of every user against every candidate", '{ "scores": [[C]…B] }', task=True) \
        .add_argument("--candidates", required=True, help='JSON { "items": [C × F ids], "dense": [C × D numbers] }')
    command("predict", "a multiclass head's probabilities", '{ "probabilities": [[K]…B] }', task=True)

    tr = sub.add_parser("train", help="train on `dupn shards` output (one process, or DDP under torchrun)")
    tr.add_argument("--shards", required=True, help="the folder `dupn shards --out` wrote")
    tr.add_argument("--init", help="starting model (default: the shards' init.safetensors)")
    tr.add_argument("--out", required=True, help="model file to write (.safetensors), by rank 0 after every epoch")
    tr.add_argument("--epochs", type=int, default=1)
    tr.add_argument("--lr", type=float, default=0.005, help="Adam learning rate of the dense weights")
    tr.add_argument("--embedding-optimizer", choices=["rowwise-adagrad", "adam"], default="rowwise-adagrad",
                    help="optimizer of the embedding tables, as dupn train's (row-wise Adagrad; adam: lazy Adam, SparseAdam)")
    tr.add_argument("--embedding-lr", type=float, help="learning rate of the embedding rows (default 0.2 for row-wise Adagrad, 0.05 for Adam, as dupn train)")
    tr.add_argument("--clip-norm", type=float, default=5.0)
    tr.add_argument("--seed", type=int, default=1, help="seed of the batch order")
    tr.add_argument("--checkpoint", help="checkpoint file (default <out>.ckpt)")
    tr.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    tr.add_argument("--threads", type=int, help="torch threads per rank (default: cores / local ranks)")
    tr.add_argument("--max-steps", type=int)
    tr.add_argument("--average-decay", type=float, default=0.999,
                    help="write the exponential moving average of the weights with this decay per step, as dupn train (0: the last step's weights)")
    tr.add_argument("--report", help="write the per-epoch report (examples, seconds, users/s, loss) as JSON here")

    cp = sub.add_parser("copy", help="read a model file into the torch module and write it back (a round trip)")
    cp.add_argument("--model", required=True)
    cp.add_argument("--out", required=True)

    args = ap.parse_args(argv)
    if args.command == "train":
        from .train import train
        report = train(args.shards, args.out, init=args.init, epochs=args.epochs, lr=args.lr, embedding_lr=args.embedding_lr,
                       clip_norm=args.clip_norm, seed=args.seed, checkpoint=args.checkpoint, resume=args.resume,
                       threads=args.threads, max_steps=args.max_steps, average_decay=args.average_decay,
                       embedding_optimizer=args.embedding_optimizer,
                       log=lambda line: print(line, flush=True))
        if args.report and int(os.environ.get("RANK", "0")) == 0:
            _write_json(args.report, report)
        return 0
    if args.command == "copy":
        save_model(load_model(args.model), args.out)
        return 0
    net = load_model(args.model, dtype=_dtype(args.dtype))
    with torch.no_grad():
        U, attention = net.encode(_columns(args.columns))
        if args.command == "encode":
            _write_json(args.out, {"U": U.tolist(), "attention": attention.tolist()})
        elif args.command == "score":
            cands = _read_json(args.candidates)
            nF = len(net.config["itemFields"])
            items = torch.tensor(cands["items"], dtype=torch.long).view(-1, nF)
            dense = torch.tensor(cands.get("dense", []), dtype=U.dtype).view(items.shape[0], -1)
            _write_json(args.out, {"scores": net.score(args.task, U, items, dense).tolist()})
        else:
            _write_json(args.out, {"probabilities": net.predict(args.task, U).tolist()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
